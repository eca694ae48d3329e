"""Secrets with Azure Key Vault semantics: versions, attributes, soft delete, backup/restore.

Every operation checks its input before touching storage, writes with compare-and-set in one
atomic commit, and is audited (never with a value).
"""

from __future__ import annotations

import base64
import builtins
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

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
from kvault.vault import layout, names
from kvault.vault.access import authorize
from kvault.vault.core import LOCAL, Caller, Core
from kvault.vault.model import DeletedSecret, Page, Secret, SecretProperties, VaultInfo
from kvault.vault.records import HeadRecord, VersionMeta, VersionRecord

T = TypeVar("T")
_DAY = 86400
MAX_PAGE = 25
BACKUP_PURPOSE = "secret-backup"
_UNSET: Any = object()


def _not_found(name: str) -> NotFound:
    return NotFound(f"A secret with (name/id) {name} was not found in this key vault.")


def _deleted_not_found(name: str) -> NotFound:
    return NotFound(f"Deleted secret {name} was not found in this key vault.")


def _page_size(max_results: int | None) -> int:
    if max_results is None:
        return MAX_PAGE
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise BadParameter("maxresults must be an integer")
    if not 1 <= max_results <= MAX_PAGE:
        raise BadParameter(f"maxresults must be 1-{MAX_PAGE}, got {max_results}")
    return max_results


def _token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


class Secrets:
    def __init__(self, core: Core) -> None:
        self._core = core

    # -- helpers --------------------------------------------------------------------------

    async def _retry(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run a read-modify-write until its compare-and-set holds."""
        return await cas_retry(attempt, "the secret")

    async def _head(self, vault: VaultInfo, lname: str) -> tuple[int, HeadRecord] | None:
        key, ctx = layout.head_row(vault.id, lname)
        found = await self._core.read(key, ctx)
        return None if found is None else (found[0], HeadRecord.decode(found[1]))

    async def _deleted(self, vault: VaultInfo, lname: str) -> tuple[int, HeadRecord] | None:
        key, ctx = layout.deleted_row(vault.id, lname)
        found = await self._core.read(key, ctx)
        return None if found is None else (found[0], HeadRecord.decode(found[1]))

    async def _version(
        self, vault: VaultInfo, lname: str, version: str
    ) -> tuple[int, VersionRecord] | None:
        key, ctx = layout.version_row(vault.id, lname, version)
        found = await self._core.read(key, ctx)
        return None if found is None else (found[0], VersionRecord.decode(found[1]))

    def _deleted_view(self, vault: VaultInfo, head: HeadRecord) -> DeletedSecret:
        return DeletedSecret(
            head.meta.properties(vault), head.deleted_date or 0, head.scheduled_purge_date or 0
        )

    async def _page(
        self,
        prefix: str,
        size: int,
        token: str | None,
        check: Callable[[str], str],
        context: Callable[[str], Context],
        decode: Callable[[str, bytes], T],
    ) -> Page[T]:
        """One page of the rows under ``prefix``; the token is the last key part returned."""
        start = None
        if token:
            try:
                start = check(base64.urlsafe_b64decode(token.encode() + b"==").decode())
            except (ValueError, BadParameter):
                raise BadParameter("the continuation token is not valid") from None
        rows, more = await self._core.store.page(prefix, context, start_after=start, size=size)
        items = [decode(row.suffix, row.plaintext) for row in rows]
        return Page(items, _token(rows[-1].suffix) if more else None)

    # -- operations -----------------------------------------------------------------------

    async def set(
        self,
        vault_name: str,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
        enabled: bool = True,
        not_before: int | None = None,
        expires: int | None = None,
        caller: Caller = LOCAL,
    ) -> Secret:
        """Add a new version; it becomes the current one."""
        core = self._core
        with core.audited(caller, vault_name, "SecretSet", name) as outcome:
            lname = names.item_name(name)
            names.secret_value(value, core.max_value_bytes)
            if not isinstance(enabled, bool):
                raise BadParameter("enabled must be true or false")
            now = core.now()
            meta = VersionMeta(
                name=name,
                version=uuid.uuid4().hex,
                enabled=enabled,
                created=now,
                updated=now,
                not_before=names.timestamp("nbf", not_before),
                expires=names.timestamp("exp", expires),
                content_type=names.content_type(content_type),
                tags=names.tags(tags) or {},
            )
            vault = await core.active_vault(vault_name)
            authorize(caller, vault, "SecretSet", name)

            async def attempt() -> None:
                head = await self._head(vault, lname)
                vkey, vctx = layout.version_row(vault.id, lname, meta.version)
                hkey, hctx = layout.head_row(vault.id, lname)
                dkey, _ = layout.deleted_row(vault.id, lname)
                if head is None and await self._deleted(vault, lname) is not None:
                    raise DeletedButRecoverable(
                        f"Secret {name} is currently in a deleted but recoverable state, and its "
                        "name cannot be reused; in this state, the secret can only be recovered "
                        "or purged."
                    )
                txn = core.store.txn()
                txn.check(dkey, ABSENT)
                await txn.put(vkey, vctx, VersionRecord(meta, value).encode(), ABSENT)
                await txn.put(hkey, hctx, HeadRecord(meta).encode(), head[0] if head else ABSENT)
                await core.store.commit(txn)

            await self._retry(attempt)
            outcome.version = meta.version
            return Secret(meta.properties(vault), value)

    async def get(
        self, vault_name: str, name: str, version: str = "", *, caller: Caller = LOCAL
    ) -> Secret:
        """The value and metadata of ``version`` (empty: the current version)."""
        core = self._core
        with core.audited(caller, vault_name, "SecretGet", name) as outcome:
            lname = names.item_name(name)
            if version:
                names.version(version)
            vault = await core.active_vault(vault_name)
            authorize(caller, vault, "SecretGet", name)
            head = await self._head(vault, lname)
            if head is None:
                raise _not_found(name)
            version = version or head[1].meta.version
            outcome.version = version
            found = await self._version(vault, lname, version)
            if found is None:
                raise _not_found(f"{name}/{version}")
            record = found[1]
            if not record.meta.enabled:
                raise ItemDisabled("Operation get is not allowed on a disabled secret.")
            return Secret(record.meta.properties(vault), record.value)

    async def list(
        self,
        vault_name: str,
        *,
        max_results: int | None = None,
        token: str | None = None,
        caller: Caller = LOCAL,
    ) -> Page[SecretProperties]:
        """Current versions' metadata, by name."""
        core = self._core
        with core.audited(caller, vault_name, "SecretList"):
            size = _page_size(max_results)
            vault = await core.active_vault(vault_name)
            authorize(caller, vault, "SecretList", None)

            def head(lname: str, raw: bytes) -> SecretProperties:
                return HeadRecord.decode(raw).meta.properties(vault)

            return await self._page(
                layout.heads(vault.id),
                size,
                token,
                names.item_name,
                lambda lname: layout.head_row(vault.id, lname)[1],
                head,
            )

    async def list_versions(
        self,
        vault_name: str,
        name: str,
        *,
        max_results: int | None = None,
        token: str | None = None,
        caller: Caller = LOCAL,
    ) -> Page[SecretProperties]:
        core = self._core
        with core.audited(caller, vault_name, "SecretListVersions", name):
            lname = names.item_name(name)
            size = _page_size(max_results)
            vault = await core.active_vault(vault_name)
            authorize(caller, vault, "SecretListVersions", name)
            if await self._head(vault, lname) is None:
                raise _not_found(name)

            def version(_: str, raw: bytes) -> SecretProperties:
                return VersionRecord.decode(raw).meta.properties(vault)

            return await self._page(
                layout.versions(vault.id, lname),
                size,
                token,
                names.version,
                lambda v: layout.version_row(vault.id, lname, v)[1],
                version,
            )

    async def update(
        self,
        vault_name: str,
        name: str,
        version: str = "",
        *,
        enabled: bool | None = None,
        not_before: int | None = _UNSET,
        expires: int | None = _UNSET,
        content_type: str | None = _UNSET,
        tags: Mapping[str, str] | None = None,
        caller: Caller = LOCAL,
    ) -> SecretProperties:
        """Change a version's attributes (omitted ones are kept; ``tags`` replaces all tags)."""
        core = self._core
        with core.audited(caller, vault_name, "SecretUpdate", name) as outcome:
            lname = names.item_name(name)
            if version:
                names.version(version)
            changes: dict[str, Any] = {}
            if enabled is not None:
                if not isinstance(enabled, bool):
                    raise BadParameter("enabled must be true or false")
                changes["enabled"] = enabled
            if not_before is not _UNSET:
                changes["not_before"] = names.timestamp("nbf", not_before)
            if expires is not _UNSET:
                changes["expires"] = names.timestamp("exp", expires)
            if content_type is not _UNSET:
                changes["content_type"] = names.content_type(content_type)
            if tags is not None:
                changes["tags"] = names.tags(tags)
            vault = await core.active_vault(vault_name)
            authorize(caller, vault, "SecretUpdate", name)

            async def attempt() -> VersionMeta:
                head = await self._head(vault, lname)
                if head is None:
                    raise _not_found(name)
                target = version or head[1].meta.version
                outcome.version = target
                found = await self._version(vault, lname, target)
                if found is None:
                    raise _not_found(f"{name}/{target}")
                meta = replace(found[1].meta, updated=core.now(), **changes)
                vkey, vctx = layout.version_row(vault.id, lname, target)
                txn = core.store.txn()
                await txn.put(vkey, vctx, VersionRecord(meta, found[1].value).encode(), found[0])
                hkey, hctx = layout.head_row(vault.id, lname)
                if head[1].meta.version == target:
                    await txn.put(hkey, hctx, HeadRecord(meta).encode(), head[0])
                else:
                    txn.check(hkey, head[0])
                await core.store.commit(txn)
                return meta

            return (await self._retry(attempt)).properties(vault)

    async def delete(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> DeletedSecret:
        """Soft-delete every version; recoverable until the scheduled purge date."""
        core = self._core
        with core.audited(caller, vault_name, "SecretDelete", name):
            lname = names.item_name(name)
            vault = await core.active_vault(vault_name)
            authorize(caller, vault, "SecretDelete", name)

            async def attempt() -> HeadRecord:
                head = await self._head(vault, lname)
                if head is None:
                    raise _not_found(name)
                now = core.now()
                gone = replace(
                    head[1],
                    deleted_date=now,
                    scheduled_purge_date=now + vault.retention_days * _DAY,
                )
                hkey, _ = layout.head_row(vault.id, lname)
                dkey, dctx = layout.deleted_row(vault.id, lname)
                txn = core.store.txn()
                txn.delete(hkey, head[0])
                await txn.put(dkey, dctx, gone.encode(), ABSENT)
                await core.store.commit(txn)
                return gone

            return self._deleted_view(vault, await self._retry(attempt))

    async def get_deleted(
        self, vault_name: str, name: str, *, caller: Caller = LOCAL
    ) -> DeletedSecret:
        core = self._core
        with core.audited(caller, vault_name, "SecretGetDeleted", name):
            lname = names.item_name(name)
            vault = await core.active_vault(vault_name)
            authorize(caller, vault, "SecretGetDeleted", name)
            found = await self._deleted(vault, lname)
            if found is None:
                raise _deleted_not_found(name)
            return self._deleted_view(vault, found[1])

    async def list_deleted(
        self,
        vault_name: str,
        *,
        max_results: int | None = None,
        token: str | None = None,
        caller: Caller = LOCAL,
    ) -> Page[DeletedSecret]:
        core = self._core
        with core.audited(caller, vault_name, "SecretListDeleted"):
            size = _page_size(max_results)
            vault = await core.active_vault(vault_name)
            authorize(caller, vault, "SecretListDeleted", None)

            def gone(lname: str, raw: bytes) -> DeletedSecret:
                return self._deleted_view(vault, HeadRecord.decode(raw))

            return await self._page(
                layout.deleted(vault.id),
                size,
                token,
                names.item_name,
                lambda lname: layout.deleted_row(vault.id, lname)[1],
                gone,
            )

    async def recover(
        self, vault_name: str, name: str, *, caller: Caller = LOCAL
    ) -> SecretProperties:
        core = self._core
        with core.audited(caller, vault_name, "SecretRecover", name):
            lname = names.item_name(name)
            vault = await core.active_vault(vault_name)
            authorize(caller, vault, "SecretRecover", name)

            async def attempt() -> HeadRecord:
                found = await self._deleted(vault, lname)
                if found is None:
                    raise _deleted_not_found(name)
                head = found[1].undeleted()
                hkey, hctx = layout.head_row(vault.id, lname)
                dkey, _ = layout.deleted_row(vault.id, lname)
                txn = core.store.txn()
                txn.delete(dkey, found[0])
                await txn.put(hkey, hctx, head.encode(), ABSENT)
                await core.store.commit(txn)
                return head

            return (await self._retry(attempt)).meta.properties(vault)

    async def purge(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> None:
        """Remove a deleted secret for good (refused under purge protection)."""
        core = self._core
        with core.audited(caller, vault_name, "SecretPurge", name):
            lname = names.item_name(name)
            vault = await core.active_vault(vault_name)
            authorize(caller, vault, "SecretPurge", name)
            found = await self._deleted(vault, lname)
            if found is None:
                raise _deleted_not_found(name)
            if vault.purge_protection and core.now() < (found[1].scheduled_purge_date or 0):
                raise PurgeProtected(
                    'Operation "purge" is not allowed because purge protection is enabled for '
                    "this vault. Key Vault service will automatically purge it after the retention "
                    "period has passed."
                )
            await self._purge_rows(vault, lname, found[0])

    async def _purge_rows(self, vault: VaultInfo, lname: str, revision: int) -> None:
        txn = self._core.store.txn()
        txn.delete(layout.deleted_row(vault.id, lname)[0], revision)
        txn.delete_prefix(layout.versions(vault.id, lname))
        await self._core.store.commit(txn)

    async def purge_expired(self, vault_name: str) -> builtins.list[str]:
        """Purge deleted secrets whose scheduled purge date has passed; return their names."""
        core = self._core
        vault = await core.active_vault(vault_name)
        purged = []
        rows = await core.store.scan(
            layout.deleted(vault.id), lambda lname: layout.deleted_row(vault.id, lname)[1]
        )
        for row in rows:
            head = HeadRecord.decode(row.plaintext)
            if (head.scheduled_purge_date or 0) <= core.now():
                with core.audited(Caller("kvault"), vault_name, "SecretPurge", head.meta.name):
                    await self._purge_rows(vault, row.suffix, row.revision)
                purged.append(head.meta.name)
        return purged

    async def backup(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> bytes:
        """All versions in one blob, encrypted under the HSM root: restorable only under it."""
        core = self._core
        with core.audited(caller, vault_name, "SecretBackup", name):
            lname = names.item_name(name)
            vault = await core.active_vault(vault_name)
            authorize(caller, vault, "SecretBackup", name)
            head = await self._head(vault, lname)
            if head is None:
                raise _not_found(name)
            rows = await core.store.scan(
                layout.versions(vault.id, lname),
                lambda v: layout.version_row(vault.id, lname, v)[1],
            )
            versions = [json.loads(row.plaintext) for row in rows]
            doc = {"kind": "secret", "head": json.loads(head[1].encode()), "versions": versions}
            return await core.barrier.seal_portable(
                BACKUP_PURPOSE, json.dumps(doc, separators=(",", ":")).encode()
            )

    async def restore(
        self, vault_name: str, blob: bytes, *, caller: Caller = LOCAL
    ) -> SecretProperties:
        """Recreate a backed-up secret with all its versions; refused if the name is taken."""
        core = self._core
        with core.audited(caller, vault_name, "SecretRestore") as outcome:
            vault = await core.active_vault(vault_name)
            authorize(caller, vault, "SecretRestore", None)
            if not isinstance(blob, bytes | bytearray) or not blob:
                raise BadParameter("the backup blob is empty")
            raw = await core.barrier.open_portable(BACKUP_PURPOSE, bytes(blob))
            try:
                doc = json.loads(raw)
                head = HeadRecord.decode(json.dumps(doc["head"]).encode()).undeleted()
                versions = [VersionRecord.decode(json.dumps(v).encode()) for v in doc["versions"]]
            except (ValueError, KeyError, TypeError):
                raise IntegrityError("the backup blob's content is malformed") from None
            lname = names.item_name(head.meta.name)
            outcome.item, outcome.version = head.meta.name, head.meta.version
            hkey, hctx = layout.head_row(vault.id, lname)
            dkey, _ = layout.deleted_row(vault.id, lname)
            txn = core.store.txn()
            txn.check(dkey, ABSENT)
            for v in versions:
                vkey, vctx = layout.version_row(vault.id, lname, names.version(v.meta.version))
                await txn.put(vkey, vctx, v.encode(), ABSENT)
            await txn.put(hkey, hctx, head.encode(), ABSENT)
            try:
                await core.store.commit(txn)
            except StorageConflict:
                raise Conflict(
                    f"Secret {head.meta.name} already exists (or is deleted and recoverable) in "
                    "this vault; restore refuses to overwrite it"
                ) from None
            return head.meta.properties(vault)
