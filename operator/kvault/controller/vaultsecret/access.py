"""May the VaultSecret's identity do ``operation``? A denial is audited and refused."""

from __future__ import annotations

from kvault.audit.event import AuditEvent
from kvault.controller import metrics
from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import Plan
from kvault.errors import ForbiddenByRbac
from kvault.identity.model import Principal
from kvault.identity.rbac import authorize as rbac_authorize
from kvault.vault.model import VaultInfo
from kvault.vault.service import Kvault


def authorize(
    kv: Kvault, plan: Plan, who: Principal, info: VaultInfo, operation: str, item: str | None
) -> None:
    try:
        rbac_authorize(who, info.role_assignments, operation, vault=plan.vault, item=item)
    except ForbiddenByRbac:
        kv.core.auditor.record(
            AuditEvent(
                who.name,
                plan.vault,
                operation,
                "ForbiddenByRbac",
                (item or "").removeprefix("secrets/"),
                "",
                f"vaultsecret/{plan.namespace}/{plan.name}",
            )
        )
        metrics.DENIALS.inc()
        what = f"secret {item.removeprefix('secrets/')!r}" if item else "the list of secrets"
        need = "getSecret" if operation == "SecretGet" else "readMetadata at vault scope"
        raise Refused(
            "Forbidden",
            f"ServiceAccount {plan.namespace}/{plan.sa} may not read {what} of vault "
            f"{plan.vault_ref} ({plan.vault}): no role assignment grants {need} "
            "(e.g. 'Key Vault Secrets User') to this ServiceAccount",
        ) from None
