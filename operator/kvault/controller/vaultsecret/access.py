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

#: Per operation a projection needs: the kind's word, the permission, a role that grants it.
_NEEDS = {
    "SecretGet": ("secret", "getSecret", "Key Vault Secrets User"),
    "SecretList": ("secret", "readMetadata at vault scope", "Key Vault Secrets User"),
    "KeyGet": ("key", "keys/read", "Key Vault Crypto User"),
    "KeyList": ("key", "keys/read at vault scope", "Key Vault Crypto User"),
    "CertificateGet": ("certificate", "certificates/read", "Key Vault Certificate User"),
}


def authorize(
    kv: Kvault,
    plan: Plan,
    who: Principal,
    info: VaultInfo,
    operation: str,
    item: str | None,
    note: str = "",
) -> None:
    """``item`` is the source's scope (``secrets/<name>``, ``keys/<name>``); ``None``: a
    listing. ``note`` ends a denial's message (why the projection needs this operation)."""
    caller = Caller.of(who, f"vaultsecret/{plan.namespace}/{plan.name}")
    name = None if item is None else item.partition("/")[2]
    try:  # the domain authorises and writes the denial's audit line itself
        kv.authorize(caller, info, operation, name)
    except ForbiddenByRbac:
        metrics.DENIALS.inc()
        word, need, role = _NEEDS.get(operation, ("item", operation, "Key Vault Reader"))
        what = f"{word} {name!r}" if name is not None else f"the list of {word}s"
        raise Refused(
            "Forbidden",
            f"ServiceAccount {plan.namespace}/{plan.sa} may not read {what} of vault "
            f"{plan.vault_ref} ({plan.vault}): no role assignment grants {need} "
            f"(e.g. '{role}') to this ServiceAccount" + (f"; {note}" if note else ""),
        ) from None
