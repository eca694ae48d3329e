"""The life of an item after its versions: soft delete, recover, purge (also on schedule),
backup and restore blobs."""

from __future__ import annotations

import builtins
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kvault.barrier.view import ABSENT, Txn
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

if TYPE_CHECKING:
    from kvault.vault.items.engine import Items

#: Work to run once a purge committed (destroying what lives outside storage).
After = Callable[[], Awaitable[None]]


class Lifecycle(ItemBase[M, V, P, I, D]):
    """Delete, recover, purge, backup and restore for one kind. Each change is staged into
    one transaction together with the same change of every item this kind owns
    (:attr:`owned`), so a certificate never loses its key or secret halfway."""

    #: The engines of the kinds this one owns (``kind.links``), wired by the façade: their
    #: same-named items move with this kind's, in the same commit.
    owned: tuple[Items[Any, Any, Any, Any, Any], ...] = ()

    # -- delete -------------------------------------------------------------------------

    async def _stage_delete(
        self, txn: Txn, vault: VaultInfo, lname: str, name: str, now: int, owner: bool = False
    ) -> HeadRecord[M] | None:
        head = await self._head(vault, lname)
        if head is None:
            if owner:
                return None
            raise self._not_found(name)
        if not owner:
            self._refuse_managed(head[1].meta, "delete")
        gone = replace(head[1], deleted_date=now, scheduled_purge_date=vault.purge_date(now))
        dkey, dctx = self._rows.deleted_row(vault.id, lname)
        txn.delete(self._rows.head_row(vault.id, lname)[0], head[0])
        await txn.put(dkey, dctx, self._codec.encode_head(gone), ABSENT)
        return gone

    async def delete(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> D:
        """Soft-delete every version; recoverable until the scheduled purge date."""
        core = self._core
        with core.audited(caller, vault_name, self._delete, name):
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._delete, name)

            async def attempt() -> HeadRecord[M]:
                now = core.now()
                txn = core.store.txn()
                gone = await self._stage_delete(txn, vault, lname, name, now)
                assert gone is not None
                for engine in self.owned:
                    await engine._stage_delete(txn, vault, lname, name, now, owner=True)
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

    # -- recover ------------------------------------------------------------------------

    async def _stage_recover(
        self, txn: Txn, vault: VaultInfo, lname: str, name: str, owner: bool = False
    ) -> HeadRecord[M] | None:
        found = await self._deleted(vault, lname)
        purge_date = None if found is None else found[1].scheduled_purge_date
        if purge_date is not None and self._core.now() >= purge_date:
            found = None  # past its retention: as good as purged, whether or not it ran yet
        if found is None:
            if owner:
                return None
            raise self._deleted_not_found(name)
        if not owner:
            self._refuse_managed(found[1].meta, "recover")
        head = found[1].undeleted()
        hkey, hctx = self._rows.head_row(vault.id, lname)
        txn.delete(self._rows.deleted_row(vault.id, lname)[0], found[0])
        await txn.put(hkey, hctx, self._codec.encode_head(head), ABSENT)
        return head

    async def recover(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> P:
        core = self._core
        with core.audited(caller, vault_name, self._recover, name):
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._recover, name)

            async def attempt() -> HeadRecord[M]:
                txn = core.store.txn()
                head = await self._stage_recover(txn, vault, lname, name)
                assert head is not None
                for engine in self.owned:
                    await engine._stage_recover(txn, vault, lname, name, owner=True)
                await core.store.commit(txn)
                return head

            return self.kind.properties((await self._retry(attempt)).meta, vault)

    # -- purge --------------------------------------------------------------------------

    async def _stage_purge(
        self, txn: Txn, vault: VaultInfo, lname: str, revision: int | None
    ) -> After | None:
        """Stage removing the deleted item ``lname`` for good (``revision`` of its deleted
        row; ``None``: whatever is there, as its owner purges it). Returns what to run after
        the commit (a kind with material outside storage destroys it then)."""
        if revision is None:
            found = await self._deleted(vault, lname)
            if found is None:
                return None
            revision = found[0]
        txn.delete(self._rows.deleted_row(vault.id, lname)[0], revision)
        txn.delete_prefix(self._rows.versions(vault.id, lname))
        return None

    async def _purge_all(self, vault: VaultInfo, lname: str, revision: int) -> None:
        """Purge ``lname`` and the items it owns in one commit, then run their after-work."""
        txn = self._core.store.txn()
        afters = [await self._stage_purge(txn, vault, lname, revision)]
        for engine in self.owned:
            afters.append(await engine._stage_purge(txn, vault, lname, None))
        await self._core.store.commit(txn)
        for after in afters:
            if after is not None:
                await after()

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
                self._refuse_managed(found[1].meta, "purge")
                if vault.purge_protection and core.now() < (found[1].scheduled_purge_date or 0):
                    raise PurgeProtected(
                        'Operation "purge" is not allowed because purge protection is enabled '
                        "for this vault. Key Vault service will automatically purge it after the "
                        "retention period has passed."
                    )
                await self._purge_all(vault, lname, found[0])

            await self._retry(attempt)

    async def purge_expired(self, vault_name: str) -> builtins.list[str]:
        """Purge deleted items whose scheduled purge date has passed; return their names.
        Managed items are left to their owner's purge."""
        core = self._core
        vault = await core.active_vault(vault_name)
        purged = []
        rows = await core.store.scan(
            self._rows.deleted(vault.id), lambda lname: self._rows.deleted_context(vault.id, lname)
        )
        for row in rows:
            head = self._codec.decode_head(row.plaintext)
            if head.meta.managed:
                continue
            if (head.scheduled_purge_date or 0) <= core.now():
                try:
                    with core.audited(SCHEDULER, vault_name, self._purge, head.meta.name):
                        await self._purge_all(vault, row.suffix, row.revision)
                except StorageConflict:  # recovered meanwhile: the next pass decides again
                    continue
                purged.append(head.meta.name)
        return purged

    # -- backup and restore -------------------------------------------------------------

    async def _backup_doc(
        self, vault: VaultInfo, lname: str
    ) -> tuple[HeadRecord[M], dict[str, Any]] | None:
        head = await self._head(vault, lname)
        if head is None:
            return None
        rows = await self._core.store.scan(
            self._rows.versions(vault.id, lname),
            lambda v: self._rows.version_context(vault.id, lname, v),
        )
        return head[1], {
            "head": json.loads(self._codec.encode_head(head[1])),
            "versions": [json.loads(row.plaintext) for row in rows],
        }

    async def backup(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> bytes:
        """All versions in one blob (with the items this kind owns), encrypted under the HSM
        root: restorable only under it."""
        core = self._core
        with core.audited(caller, vault_name, self._backup, name):
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._backup, name)
            found = await self._backup_doc(vault, lname)
            if found is None:
                raise self._not_found(name)
            head, doc = found
            self._refuse_managed(head.meta, "backup")
            doc["kind"] = self.kind.name
            linked = {}
            for engine in self.owned:
                part = await engine._backup_doc(vault, lname)
                if part is not None:
                    linked[engine.kind.name] = part[1]
            if linked:
                doc["linked"] = linked
            return await core.barrier.seal_portable(
                self.kind.backup_purpose, json.dumps(doc, separators=(",", ":")).encode()
            )

    async def _stage_restore(self, txn: Txn, vault: VaultInfo, part: Any) -> HeadRecord[M]:
        codec = self._codec
        try:
            head = codec.decode_head(json.dumps(part["head"]).encode()).undeleted()
            versions = [codec.decode_version(json.dumps(v).encode()) for v in part["versions"]]
        except (ValueError, KeyError, TypeError):
            raise IntegrityError("the backup blob's content is malformed") from None
        lname = self._lname(head.meta.name)
        hkey, hctx = self._rows.head_row(vault.id, lname)
        txn.check(self._rows.deleted_row(vault.id, lname)[0], ABSENT)
        for v in versions:
            vkey, vctx = self._rows.version_row(vault.id, lname, names.version(v.meta.version))
            await txn.put(vkey, vctx, codec.encode_version(v), ABSENT)
        await txn.put(hkey, hctx, codec.encode_head(head), ABSENT)
        return head

    async def restore(self, vault_name: str, blob: bytes, *, caller: Caller = LOCAL) -> P:
        """Recreate a backed-up item with all its versions (and the items it owns); refused
        if a name is taken."""
        core = self._core
        with core.audited(caller, vault_name, self._restore) as outcome:
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._restore, None)
            if not isinstance(blob, bytes | bytearray) or not blob:
                raise BadParameter("the backup blob is empty")
            raw = await core.barrier.open_portable(self.kind.backup_purpose, bytes(blob))
            try:
                doc = json.loads(raw)
                if not isinstance(doc, dict):
                    raise TypeError
                linked = doc.get("linked") or {}
                if not isinstance(linked, dict):
                    raise TypeError
            except (ValueError, TypeError):
                raise IntegrityError("the backup blob's content is malformed") from None
            txn = core.store.txn()
            head = await self._stage_restore(txn, vault, doc)
            outcome.item, outcome.version = head.meta.name, head.meta.version
            for engine in self.owned:
                if engine.kind.name in linked:
                    await engine._stage_restore(txn, vault, linked[engine.kind.name])
            try:
                await core.store.commit(txn)
            except StorageConflict:
                raise Conflict(
                    f"{self.kind.title} {head.meta.name} already exists (or is deleted and "
                    "recoverable) in this vault; restore refuses to overwrite it"
                ) from None
            return self.kind.properties(head.meta, vault)
