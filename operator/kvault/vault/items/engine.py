"""The items engine: Azure Key Vault item semantics for any :class:`ItemKind`.

Versions with 32-hex ids, a head row per name, attributes and tags, soft delete with the
vault's retention, recover, purge (refused under purge protection), backup and restore
blobs, paged listings. Every operation checks its input before touching storage, authorises
its caller, writes with compare-and-set in one atomic commit (one bounded retry), and is
audited (never with a value).
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Generic, TypeVar

from kvault.barrier.context import Context
from kvault.barrier.retry import cas_retry
from kvault.barrier.view import ABSENT
from kvault.errors import (
    BadParameter,
    Conflict,
    DeletedButRecoverable,
    IntegrityError,
    ItemDisabled,
    NotFound,
    PurgeProtected,
    StorageConflict,
)
from kvault.vault import names
from kvault.vault.access import authorize
from kvault.vault.core import LOCAL, Caller, Core
from kvault.vault.items import paging
from kvault.vault.items.kind import ItemKind
from kvault.vault.items.records import HeadRecord, ItemMeta, VersionRecord
from kvault.vault.model import Page, VaultInfo

M = TypeVar("M", bound=ItemMeta)
V = TypeVar("V")
P = TypeVar("P")
I = TypeVar("I")  # noqa: E741
D = TypeVar("D")
T = TypeVar("T")
_DAY = 86400
#: The caller of scheduled work (purge of expired deleted items).
SCHEDULER = Caller("kvault")
UNSET: Any = object()


class Items(Generic[M, V, P, I, D]):
    """All operations on the items of one kind, in every vault."""

    def __init__(self, core: Core, kind: ItemKind[M, V, P, I, D]) -> None:
        self._core = core
        self.kind = kind
        self._rows = kind.layout
        self._codec = kind.codec
        ops = kind.operations
        self._set, self._get, self._list = ops["Set"], ops["Get"], ops["List"]
        self._versions, self._update, self._delete = (
            ops["ListVersions"],
            ops["Update"],
            ops["Delete"],
        )
        self._get_deleted, self._list_deleted = ops["GetDeleted"], ops["ListDeleted"]
        self._recover, self._purge = ops["Recover"], ops["Purge"]
        self._backup, self._restore = ops["Backup"], ops["Restore"]

    # -- messages -------------------------------------------------------------------------

    def _not_found(self, name: str) -> NotFound:
        return NotFound(
            f"A {self.kind.name} with (name/id) {name} was not found in this key vault."
        )

    def _deleted_not_found(self, name: str) -> NotFound:
        return NotFound(f"Deleted {self.kind.name} {name} was not found in this key vault.")

    # -- reading rows -----------------------------------------------------------------------

    def _lname(self, name: str) -> str:
        return names.item_name(name, self.kind.name)

    def _authorize(
        self, caller: Caller, vault: VaultInfo, operation: str, name: str | None
    ) -> None:
        authorize(caller, vault, operation, self.kind.plural, name)

    async def _head(self, vault: VaultInfo, lname: str) -> tuple[int, HeadRecord[M]] | None:
        key, ctx = self._rows.head_row(vault.id, lname)
        found = await self._core.read(key, ctx)
        return None if found is None else (found[0], self._codec.decode_head(found[1]))

    async def _deleted(self, vault: VaultInfo, lname: str) -> tuple[int, HeadRecord[M]] | None:
        key, ctx = self._rows.deleted_row(vault.id, lname)
        found = await self._core.read(key, ctx)
        return None if found is None else (found[0], self._codec.decode_head(found[1]))

    async def _version(
        self, vault: VaultInfo, lname: str, version: str
    ) -> tuple[int, VersionRecord[M, V]] | None:
        key, ctx = self._rows.version_row(vault.id, lname, version)
        found = await self._core.read(key, ctx)
        return None if found is None else (found[0], self._codec.decode_version(found[1]))

    def _deleted_view(self, vault: VaultInfo, head: HeadRecord[M]) -> D:
        return self.kind.deleted(
            self.kind.properties(head.meta, vault),
            head.deleted_date or 0,
            head.scheduled_purge_date or 0,
        )

    async def _retry(self, attempt: Callable[[], Awaitable[T]]) -> T:
        return await cas_retry(attempt, f"the {self.kind.name}")

    async def _page(
        self,
        prefix: str,
        size: int,
        token: str | None,
        check: Callable[[str], str],
        context: Callable[[str], Context],
        view: Callable[[bytes], T],
    ) -> Page[T]:
        """One page of the rows under ``prefix``; the token is the last key part returned."""
        start = paging.start_after(token, check)
        rows, more = await self._core.store.page(prefix, context, start_after=start, size=size)
        items = [view(row.plaintext) for row in rows]
        return Page(items, paging.token(rows[-1].suffix) if more else None)

    # -- operations -----------------------------------------------------------------------

    async def set_version(
        self,
        vault_name: str,
        name: str,
        value: V,
        *,
        attributes: Mapping[str, Any],
        tags: Mapping[str, str] | None = None,
        enabled: bool = True,
        not_before: int | None = None,
        expires: int | None = None,
        caller: Caller = LOCAL,
    ) -> I:
        """Add a new version; it becomes the current one. ``attributes`` are the kind's own
        metadata fields (validated by the kind)."""
        core, kind = self._core, self.kind
        with core.audited(caller, vault_name, self._set, name) as outcome:
            lname = self._lname(name)
            kind.check_value(value, core.max_value_bytes)
            if not isinstance(enabled, bool):
                raise BadParameter("enabled must be true or false")
            now = core.now()
            meta = self._codec.meta(
                name=name,
                version=uuid.uuid4().hex,
                enabled=enabled,
                created=now,
                updated=now,
                not_before=names.timestamp("nbf", not_before),
                expires=names.timestamp("exp", expires),
                **kind.attributes(attributes),
                tags=names.tags(tags) or {},
            )
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._set, name)

            async def attempt() -> None:
                head = await self._head(vault, lname)
                vkey, vctx = self._rows.version_row(vault.id, lname, meta.version)
                hkey, hctx = self._rows.head_row(vault.id, lname)
                dkey, _ = self._rows.deleted_row(vault.id, lname)
                if head is None and await self._deleted(vault, lname) is not None:
                    raise DeletedButRecoverable(
                        f"{kind.title} {name} is currently in a deleted but recoverable state, "
                        f"and its name cannot be reused; in this state, the {kind.name} can only "
                        "be recovered or purged."
                    )
                txn = core.store.txn()
                txn.check(dkey, ABSENT)
                version = self._codec.encode_version(VersionRecord(meta, value))
                await txn.put(vkey, vctx, version, ABSENT)
                head_row = self._codec.encode_head(HeadRecord(meta))
                await txn.put(hkey, hctx, head_row, head[0] if head else ABSENT)
                await core.store.commit(txn)

            await self._retry(attempt)
            outcome.version = meta.version
            return kind.item(kind.properties(meta, vault), value)

    async def get(
        self, vault_name: str, name: str, version: str = "", *, caller: Caller = LOCAL
    ) -> I:
        """The value and metadata of ``version`` (empty: the current version)."""
        core = self._core
        with core.audited(caller, vault_name, self._get, name) as outcome:
            lname = self._lname(name)
            if version:
                names.version(version)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._get, name)
            head = await self._head(vault, lname)
            if head is None:
                raise self._not_found(name)
            version = version or head[1].meta.version
            outcome.version = version
            found = await self._version(vault, lname, version)
            if found is None:
                raise self._not_found(f"{name}/{version}")
            record = found[1]
            if not record.meta.enabled:
                raise ItemDisabled(
                    f"Operation get is not allowed on a disabled {self.kind.name}.",
                    self.kind.disabled_code,
                )
            return self.kind.item(self.kind.properties(record.meta, vault), record.value)

    async def list(
        self,
        vault_name: str,
        *,
        max_results: int | None = None,
        token: str | None = None,
        caller: Caller = LOCAL,
    ) -> Page[P]:
        """Current versions' metadata, by name."""
        core, kind = self._core, self.kind
        with core.audited(caller, vault_name, self._list):
            size = paging.page_size(max_results)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._list, None)
            return await self._page(
                self._rows.heads(vault.id),
                size,
                token,
                self._lname,
                lambda lname: self._rows.head_context(vault.id, lname),
                lambda raw: kind.properties(self._codec.decode_head(raw).meta, vault),
            )

    async def list_versions(
        self,
        vault_name: str,
        name: str,
        *,
        max_results: int | None = None,
        token: str | None = None,
        caller: Caller = LOCAL,
    ) -> Page[P]:
        core, kind = self._core, self.kind
        with core.audited(caller, vault_name, self._versions, name):
            lname = self._lname(name)
            size = paging.page_size(max_results)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._versions, name)
            if await self._head(vault, lname) is None:
                raise self._not_found(name)
            return await self._page(
                self._rows.versions(vault.id, lname),
                size,
                token,
                names.version,
                lambda v: self._rows.version_context(vault.id, lname, v),
                lambda raw: kind.properties(self._codec.decode_version(raw).meta, vault),
            )

    async def update_version(
        self,
        vault_name: str,
        name: str,
        version: str = "",
        *,
        attributes: Mapping[str, Any],
        enabled: bool | None = None,
        not_before: int | None = UNSET,
        expires: int | None = UNSET,
        tags: Mapping[str, str] | None = None,
        caller: Caller = LOCAL,
    ) -> P:
        """Change a version's attributes (omitted ones are kept; ``tags`` replaces all tags).
        ``attributes`` holds only the kind's own fields that change."""
        core = self._core
        with core.audited(caller, vault_name, self._update, name) as outcome:
            lname = self._lname(name)
            if version:
                names.version(version)
            changes: dict[str, Any] = {}
            if enabled is not None:
                if not isinstance(enabled, bool):
                    raise BadParameter("enabled must be true or false")
                changes["enabled"] = enabled
            if not_before is not UNSET:
                changes["not_before"] = names.timestamp("nbf", not_before)
            if expires is not UNSET:
                changes["expires"] = names.timestamp("exp", expires)
            changes.update(self.kind.attributes(attributes))
            if tags is not None:
                changes["tags"] = names.tags(tags)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._update, name)

            async def attempt() -> M:
                head = await self._head(vault, lname)
                if head is None:
                    raise self._not_found(name)
                target = version or head[1].meta.version
                outcome.version = target
                found = await self._version(vault, lname, target)
                if found is None:
                    raise self._not_found(f"{name}/{target}")
                meta = replace(found[1].meta, updated=core.now(), **changes)
                vkey, vctx = self._rows.version_row(vault.id, lname, target)
                txn = core.store.txn()
                record = self._codec.encode_version(VersionRecord(meta, found[1].value))
                await txn.put(vkey, vctx, record, found[0])
                hkey, hctx = self._rows.head_row(vault.id, lname)
                if head[1].meta.version == target:
                    await txn.put(hkey, hctx, self._codec.encode_head(HeadRecord(meta)), head[0])
                else:
                    txn.check(hkey, head[0])
                await core.store.commit(txn)
                return meta

            return self.kind.properties(await self._retry(attempt), vault)

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
                    scheduled_purge_date=now + vault.retention_days * _DAY,
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
