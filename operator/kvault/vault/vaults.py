"""Vaults: create (with a fresh KEK), settings, soft delete, recover, purge (crypto-shred)."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any

from kvault.barrier.retry import cas_retry
from kvault.barrier.view import ABSENT
from kvault.errors import BadParameter, Conflict, NotFound, PurgeProtected, StorageConflict
from kvault.identity.rbac import role_name
from kvault.vault import layout, names
from kvault.vault.core import LOCAL, Caller, Core
from kvault.vault.model import VAULT_NOT_FOUND, RoleAssignment, VaultInfo
from kvault.vault.records import decode_vault, encode_vault

SKUS = ("standard", "premium")


def _role_assignments(items: Iterable[RoleAssignment]) -> tuple[RoleAssignment, ...]:
    out = []
    for ra in items:
        role = role_name(ra.role)
        if not ra.principal:
            raise BadParameter("a role assignment needs a principal")
        scope = ra.scope or "/"
        if scope != "/":
            parts = scope.strip("/").split("/")
            if len(parts) != 2 or parts[0] not in ("secrets", "keys", "certificates"):
                raise BadParameter(
                    f"invalid scope {ra.scope!r}: use '/' or '/secrets|keys|certificates/NAME'"
                )
            names.item_name(parts[1], parts[0][:-1])
        out.append(RoleAssignment(ra.principal, role, scope))
    return tuple(out)


#: Called before a vault's rows go: returns what to run once they are gone (destroying what
#: lives outside storage, such as the HSM objects of its keys).
Releaser = Callable[[VaultInfo], Awaitable[Callable[[], Awaitable[None]]]]


def _expired(info: VaultInfo, core: Core) -> bool:
    """Past its scheduled purge date: as good as purged (Azure recovers nothing then), even
    if the purge scheduler has not run yet."""
    return info.scheduled_purge_date is not None and core.now() >= info.scheduled_purge_date


class Vaults:
    def __init__(self, core: Core, release: Releaser | None = None) -> None:
        self._core = core
        self._release = release

    async def create(
        self,
        name: str,
        *,
        sku: str = "standard",
        retention_days: int = 90,
        purge_protection: bool = False,
        role_assignments: Iterable[RoleAssignment] = (),
        caller: Caller = LOCAL,
    ) -> VaultInfo:
        core = self._core
        with core.audited(caller, name, "VaultCreate"):
            names.vault_name(name)
            if sku not in SKUS:
                raise BadParameter(f"sku must be one of {', '.join(SKUS)}, got {sku!r}")
            info = VaultInfo(
                name=name,
                id=uuid.uuid4().hex,
                created=core.now(),
                sku=sku,
                retention_days=names.retention_days(retention_days),
                purge_protection=bool(purge_protection),
                role_assignments=_role_assignments(role_assignments),
            )
            existing = await core.vault_row(name)
            if existing is not None:
                raise self._exists(existing[1])
            await core.barrier.create_keyring(info.id)
            key, ctx = layout.vault_row(name)
            txn = core.store.txn()
            await txn.put(key, ctx, encode_vault(info), ABSENT)
            try:
                await core.store.commit(txn)
            except StorageConflict:
                await core.barrier.destroy(info.id)
                core.forget_vault(name)
                existing = await core.vault_row(name)
                raise (
                    self._exists(existing[1])
                    if existing
                    else Conflict(f"vault {name!r} is being created concurrently")
                ) from None
            return info

    @staticmethod
    def _exists(info: VaultInfo) -> Conflict:
        if info.deleted_date is not None:
            return Conflict(
                f"vault {info.name!r} is deleted but recoverable; recover or purge it first"
            )
        return Conflict(f"vault {info.name!r} already exists")

    async def get(self, name: str, *, caller: Caller = LOCAL) -> VaultInfo:
        with self._core.audited(caller, name, "VaultGet"):
            return await self._core.active_vault(names.vault_name(name))

    async def find(self, name: str) -> VaultInfo | None:
        """The vault record, deleted or not, or ``None``; not audited (provisioning asks)."""
        entry = await self._core.vault_row(names.vault_name(name))
        return None if entry is None else entry[1]

    async def list(self, *, deleted: bool = False) -> list[VaultInfo]:
        out = []
        for row in await self._core.store.scan(layout.VAULTS, lambda n: layout.vault_row(n)[1]):
            info = decode_vault(row.plaintext)
            if (info.deleted_date is not None) == deleted:
                out.append(info)
        return out

    async def _write(self, name: str, change: Callable[[VaultInfo], dict[str, Any]]) -> VaultInfo:
        """Apply ``change`` (the fields to replace, decided on the record as it is now; it
        raises when the operation does not fit that record) with compare-and-set. A lost
        race reads the record again and decides again: two deletes do not both succeed."""
        core = self._core
        core.forget_vault(name)  # decide on the stored record, not on a cached copy

        async def attempt() -> VaultInfo:
            entry = await core.vault_row(name)
            if entry is None:
                raise NotFound(f"vault {name!r} was not found", VAULT_NOT_FOUND)
            revision, info = entry
            updates = change(info)
            if not updates:
                return info
            new = replace(info, **updates)
            key, ctx = layout.vault_row(name)
            txn = core.store.txn()
            await txn.put(key, ctx, encode_vault(new), revision)
            await core.store.commit(txn)
            return new

        try:
            return await cas_retry(
                attempt, f"vault {name!r}", on_conflict=lambda: core.forget_vault(name)
            )
        finally:
            core.forget_vault(name)

    @staticmethod
    def _active(info: VaultInfo) -> None:
        """A deleted vault answers as a missing one (as :meth:`Core.active_vault`)."""
        if info.deleted_date is not None:
            raise NotFound(f"vault {info.name!r} was not found", VAULT_NOT_FOUND)

    async def update(
        self,
        name: str,
        *,
        purge_protection: bool | None = None,
        retention_days: int | None = None,
        role_assignments: Iterable[RoleAssignment] | None = None,
        caller: Caller = LOCAL,
    ) -> VaultInfo:
        with self._core.audited(caller, name, "VaultUpdate"):
            names.vault_name(name)
            assignments = None if role_assignments is None else _role_assignments(role_assignments)

            def change(info: VaultInfo) -> dict[str, Any]:
                self._active(info)
                updates: dict[str, Any] = {}
                if purge_protection is not None and purge_protection != info.purge_protection:
                    if not purge_protection:
                        raise BadParameter("purge protection cannot be turned off once enabled")
                    updates["purge_protection"] = True
                if retention_days is not None and retention_days != info.retention_days:
                    raise BadParameter(
                        "softDeleteRetentionInDays cannot be changed after the vault is created"
                    )
                if assignments is not None:
                    updates["role_assignments"] = assignments
                return updates

            return await self._write(name, change)

    async def delete(self, name: str, *, caller: Caller = LOCAL) -> VaultInfo:
        """Soft-delete: items stay, recoverable until ``scheduled_purge_date``."""
        with self._core.audited(caller, name, "VaultDelete"):
            names.vault_name(name)

            def change(info: VaultInfo) -> dict[str, Any]:
                now = self._core.now()
                self._active(info)
                return {"deleted_date": now, "scheduled_purge_date": info.purge_date(now)}

            return await self._write(name, change)

    async def recover(self, name: str, *, caller: Caller = LOCAL) -> VaultInfo:
        with self._core.audited(caller, name, "VaultRecover"):
            names.vault_name(name)

            def change(info: VaultInfo) -> dict[str, Any]:
                if info.deleted_date is None or _expired(info, self._core):
                    raise NotFound(f"deleted vault {name!r} was not found", VAULT_NOT_FOUND)
                return {"deleted_date": None, "scheduled_purge_date": None}

            return await self._write(name, change)

    async def purge(self, name: str, *, caller: Caller = LOCAL) -> None:
        """Destroy a deleted vault's KEK and rows: its data is unrecoverable afterwards."""
        core = self._core
        with core.audited(caller, name, "VaultPurge"):
            names.vault_name(name)

            async def attempt() -> None:  # the cached record may be stale: re-read on conflict
                entry = await core.vault_row(name)
                if entry is None or entry[1].deleted_date is None:
                    raise NotFound(f"deleted vault {name!r} was not found", VAULT_NOT_FOUND)
                info = entry[1]
                if info.purge_protection and core.now() < (info.scheduled_purge_date or 0):
                    raise PurgeProtected(
                        f"vault {name!r} has purge protection; it is purged automatically after "
                        "its retention period"
                    )
                await self._destroy(entry[0], info)

            await cas_retry(attempt, f"vault {name!r}", on_conflict=lambda: core.forget_vault(name))

    async def _destroy(self, revision: int, info: VaultInfo) -> None:
        after = None if self._release is None else await self._release(info)
        txn = self._core.store.txn()
        txn.delete_prefix(layout.vault_prefix(info.id))
        txn.delete(layout.vault_row(info.name)[0], revision)
        await self._core.barrier.destroy(info.id, also=txn)
        self._core.forget_vault(info.name)
        if after is not None:
            await after()

    async def purge_expired(self) -> builtins.list[str]:
        """Purge deleted vaults whose retention has passed; return their names."""
        purged = []
        for info in await self.list(deleted=True):
            if (info.scheduled_purge_date or 0) <= self._core.now():
                entry = await self._core.vault_row(info.name)
                if entry is not None:
                    try:
                        with self._core.audited(Caller("kvault"), info.name, "VaultPurge"):
                            await self._destroy(entry[0], entry[1])
                    except StorageConflict:  # changed meanwhile: the next pass decides again
                        self._core.forget_vault(info.name)
                        continue
                    purged.append(info.name)
        return purged
