"""The life of an item after its versions: soft delete, recover, purge (also on schedule),
backup and restore blobs."""

from __future__ import annotations

import builtins
import json
from dataclasses import replace

from kvault.barrier.view import ABSENT
from kvault.errors import (
    BadParameter,
    Conflict,
    IntegrityError,
    PurgeProtected,
    StorageConflict,
)
from kvault.vault import names
from kvault.vault.core import LOCAL, Caller
from kvault.vault.items import paging
from kvault.vault.items.base import SCHEDULER, D, I, ItemBase, M, P, V
from kvault.vault.items.records import HeadRecord
from kvault.vault.model import Page, VaultInfo


class Lifecycle(ItemBase[M, V, P, I, D]):
    """Delete, recover, purge, backup and restore for one kind."""

    async def delete(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> D:
        """Soft-delete every version; recoverable until the scheduled purge date."""
        core = self._core
        with core.audited(caller, vault_name, self._delete, name):
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._delete, name)

            async def attempt() -> HeadRecord[M]:
                head = await self._head(vault, lname)
                if head is None:
                    raise self._not_found(name)
                now = core.now()
                gone = replace(
                    head[1],
                    deleted_date=now,
                    scheduled_purge_date=vault.purge_date(now),
                )
                hkey, _ = self._rows.head_row(vault.id, lname)
                dkey, dctx = self._rows.deleted_row(vault.id, lname)
                txn = core.store.txn()
                txn.delete(hkey, head[0])
                await txn.put(dkey, dctx, self._codec.encode_head(gone), ABSENT)
                await core.store.commit(txn)
                return gone

            return self._deleted_view(vault, await self._retry(attempt))

    async def get_deleted(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> D:
        core = self._core
        with core.audited(caller, vault_name, self._get_deleted, name):
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._get_deleted, name)
            found = await self._deleted(vault, lname)
            if found is None:
                raise self._deleted_not_found(name)
            return self._deleted_view(vault, found[1])

    async def list_deleted(
        self,
        vault_name: str,
        *,
        max_results: int | None = None,
        token: str | None = None,
        caller: Caller = LOCAL,
    ) -> Page[D]:
        core = self._core
        with core.audited(caller, vault_name, self._list_deleted):
            size = paging.page_size(max_results)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._list_deleted, None)
            return await self._page(
                self._rows.deleted(vault.id),
                size,
                token,
                self._lname,
                lambda lname: self._rows.deleted_context(vault.id, lname),
                lambda raw: self._deleted_view(vault, self._codec.decode_head(raw)),
            )

    async def recover(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> P:
        core = self._core
        with core.audited(caller, vault_name, self._recover, name):
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._recover, name)

            async def attempt() -> HeadRecord[M]:
                found = await self._deleted(vault, lname)
                if found is None:
                    raise self._deleted_not_found(name)
                head = found[1].undeleted()
                hkey, hctx = self._rows.head_row(vault.id, lname)
                dkey, _ = self._rows.deleted_row(vault.id, lname)
                txn = core.store.txn()
                txn.delete(dkey, found[0])
                await txn.put(hkey, hctx, self._codec.encode_head(head), ABSENT)
                await core.store.commit(txn)
                return head

            return self.kind.properties((await self._retry(attempt)).meta, vault)

    async def purge(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> None:
        """Remove a deleted item for good (refused under purge protection)."""
        core = self._core
        with core.audited(caller, vault_name, self._purge, name):
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._purge, name)

            async def attempt() -> None:  # a concurrent recover or purge: read again
                found = await self._deleted(vault, lname)
                if found is None:
                    raise self._deleted_not_found(name)
                if vault.purge_protection and core.now() < (found[1].scheduled_purge_date or 0):
                    raise PurgeProtected(
                        'Operation "purge" is not allowed because purge protection is enabled '
                        "for this vault. Key Vault service will automatically purge it after the "
                        "retention period has passed."
                    )
                await self._purge_rows(vault, lname, found[0])

            await self._retry(attempt)

    async def _purge_rows(self, vault: VaultInfo, lname: str, revision: int) -> None:
        txn = self._core.store.txn()
        txn.delete(self._rows.deleted_row(vault.id, lname)[0], revision)
        txn.delete_prefix(self._rows.versions(vault.id, lname))
        await self._core.store.commit(txn)

    async def purge_expired(self, vault_name: str) -> builtins.list[str]:
        """Purge deleted items whose scheduled purge date has passed; return their names."""
        core = self._core
        vault = await core.active_vault(vault_name)
        purged = []
        rows = await core.store.scan(
            self._rows.deleted(vault.id), lambda lname: self._rows.deleted_context(vault.id, lname)
        )
        for row in rows:
            head = self._codec.decode_head(row.plaintext)
            if (head.scheduled_purge_date or 0) <= core.now():
                try:
                    with core.audited(SCHEDULER, vault_name, self._purge, head.meta.name):
                        await self._purge_rows(vault, row.suffix, row.revision)
                except StorageConflict:  # recovered meanwhile: the next pass decides again
                    continue
                purged.append(head.meta.name)
        return purged

    async def backup(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> bytes:
        """All versions in one blob, encrypted under the HSM root: restorable only under it."""
        core = self._core
        with core.audited(caller, vault_name, self._backup, name):
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._backup, name)
            head = await self._head(vault, lname)
            if head is None:
                raise self._not_found(name)
            rows = await core.store.scan(
                self._rows.versions(vault.id, lname),
                lambda v: self._rows.version_context(vault.id, lname, v),
            )
            doc = {
                "kind": self.kind.name,
                "head": json.loads(self._codec.encode_head(head[1])),
                "versions": [json.loads(row.plaintext) for row in rows],
            }
            return await core.barrier.seal_portable(
                self.kind.backup_purpose, json.dumps(doc, separators=(",", ":")).encode()
            )

    async def restore(self, vault_name: str, blob: bytes, *, caller: Caller = LOCAL) -> P:
        """Recreate a backed-up item with all its versions; refused if the name is taken."""
        core, codec = self._core, self._codec
        with core.audited(caller, vault_name, self._restore) as outcome:
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._restore, None)
            if not isinstance(blob, bytes | bytearray) or not blob:
                raise BadParameter("the backup blob is empty")
            raw = await core.barrier.open_portable(self.kind.backup_purpose, bytes(blob))
            try:
                doc = json.loads(raw)
                head = codec.decode_head(json.dumps(doc["head"]).encode()).undeleted()
                versions = [codec.decode_version(json.dumps(v).encode()) for v in doc["versions"]]
            except (ValueError, KeyError, TypeError):
                raise IntegrityError("the backup blob's content is malformed") from None
            lname = self._lname(head.meta.name)
            outcome.item, outcome.version = head.meta.name, head.meta.version
            hkey, hctx = self._rows.head_row(vault.id, lname)
            dkey, _ = self._rows.deleted_row(vault.id, lname)
            txn = core.store.txn()
            txn.check(dkey, ABSENT)
            for v in versions:
                vkey, vctx = self._rows.version_row(vault.id, lname, names.version(v.meta.version))
                await txn.put(vkey, vctx, codec.encode_version(v), ABSENT)
            await txn.put(hkey, hctx, codec.encode_head(head), ABSENT)
            try:
                await core.store.commit(txn)
            except StorageConflict:
                raise Conflict(
                    f"{self.kind.title} {head.meta.name} already exists (or is deleted and "
                    "recoverable) in this vault; restore refuses to overwrite it"
                ) from None
            return self.kind.properties(head.meta, vault)
