"""The domain vault ``V.N`` made to match a ``Vault`` spec, and removed with it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kvault.controller.vault.spec import assignments
from kvault.errors import KvaultError, NotFound
from kvault.identity.model import RoleAssignment
from kvault.vault.core import Caller
from kvault.vault.model import VaultInfo
from kvault.vault.service import Kvault

log = logging.getLogger(__name__)
OPERATOR = Caller("kvault:operator")


@dataclass(frozen=True, slots=True)
class Provisioned:
    info: VaultInfo
    action: str  # "created", "recovered", "updated", "unchanged"


async def provision(kv: Kvault, name: str, spec: Mapping[str, Any], ns: str) -> Provisioned:
    """Make the domain vault match the spec (idempotent; safe to repeat after a crash)."""
    roles = assignments(spec, ns)
    retention = int(spec.get("softDeleteRetentionInDays", 90))
    purge_protection = bool(spec.get("purgeProtection", False))
    entry = await kv.vaults.find(name)
    action = "unchanged"
    if entry is None:
        info = await kv.vaults.create(
            name,
            sku=str(spec.get("sku", "standard")),
            retention_days=retention,
            purge_protection=purge_protection,
            role_assignments=roles,
            caller=OPERATOR,
        )
        return Provisioned(info, "created")
    if entry.deleted_date is not None:
        await kv.vaults.recover(name, caller=OPERATOR)
        action = "recovered"
    current = await kv.vault(name)
    changed = tuple(roles) != tuple(
        RoleAssignment(r.principal, r.role, r.scope) for r in current.role_assignments
    ) or (purge_protection and not current.purge_protection)
    if changed:
        current = await kv.vaults.update(
            name,
            role_assignments=roles,
            purge_protection=True if purge_protection else None,
            caller=OPERATOR,
        )
        action = "updated" if action == "unchanged" else action
    return Provisioned(current, action)


async def remove(kv: Kvault, vault: str, spec: Mapping[str, Any]) -> str:
    """Soft-delete (recoverable within retention), or also purge if the spec allows it."""
    with contextlib.suppress(NotFound):
        await kv.vaults.delete(vault, caller=OPERATOR)
    if spec.get("allowPurgeOnDelete"):
        try:
            await kv.vaults.purge(vault, caller=OPERATOR)
        except NotFound:
            return "deleted"
        except KvaultError as exc:  # purge protection: stays soft-deleted
            log.warning("vault %s not purged: %s", vault, exc)
            return "deleted"
        return "purged"
    return "deleted"
