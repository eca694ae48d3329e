"""May the VaultSecret's identity do ``operation``? The domain audits a denial; here it
becomes a Forbidden condition with what is missing."""

from __future__ import annotations

from kvault.controller import metrics
from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import Plan
from kvault.errors import ForbiddenByRbac
from kvault.identity.model import Principal
from kvault.vault.core import Caller
from kvault.vault.model import VaultInfo
from kvault.vault.service import Kvault


def authorize(
    kv: Kvault, plan: Plan, who: Principal, info: VaultInfo, operation: str, item: str | None
) -> None:
    caller = Caller.of(who, f"vaultsecret/{plan.namespace}/{plan.name}")
    try:  # the domain authorises and writes the denial's audit line itself
        kv.authorize(
            caller, info, operation, None if item is None else item.removeprefix("secrets/")
        )
    except ForbiddenByRbac:
        metrics.DENIALS.inc()
        what = f"secret {item.removeprefix('secrets/')!r}" if item else "the list of secrets"
        need = "getSecret" if operation == "SecretGet" else "readMetadata at vault scope"
        raise Refused(
            "Forbidden",
            f"ServiceAccount {plan.namespace}/{plan.sa} may not read {what} of vault "
            f"{plan.vault_ref} ({plan.vault}): no role assignment grants {need} "
            "(e.g. 'Key Vault Secrets User') to this ServiceAccount",
        ) from None
