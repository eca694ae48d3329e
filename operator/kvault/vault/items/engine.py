"""The items engine: Azure Key Vault item semantics for any :class:`ItemKind`.

Versions with 32-hex ids, a head row per name, attributes and tags, soft delete with the
vault's retention, recover, purge (refused under purge protection), backup and restore
blobs, paged listings. Every operation checks its input before touching storage, authorises
its caller, writes with compare-and-set in one atomic commit (one bounded retry), and is
audited (never with a value). The operations after a version's life are in
:mod:`.lifecycle`, the shared helpers in :mod:`.base`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from kvault.barrier.view import ABSENT, Txn
from kvault.errors import (
    BadParameter,
    Conflict,
    DeletedButRecoverable,
    ItemDisabled,
)
from kvault.vault import names
from kvault.vault.core import LOCAL, Caller, Outcome
from kvault.vault.items import paging
from kvault.vault.items.base import UNSET, D, I, M, P, V
from kvault.vault.items.lifecycle import Lifecycle
from kvault.vault.items.records import HeadRecord, VersionRecord
from kvault.vault.model import Page, VaultInfo

#: Metadata an owner's update copies to the items it owns.
_MIRRORED = ("enabled", "not_before", "expires")


class Items(Lifecycle[M, V, P, I, D]):
    """All operations on the items of one kind, in every vault."""

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

        async def given(vault: VaultInfo, meta: M) -> V:
            return value

        return await self.add_version(
            vault_name,
            name,
            given,
            operation=self._set,
            check=lambda: self.kind.check_value(value, self._core.max_value_bytes),
            attributes=attributes,
            tags=tags,
            enabled=enabled,
            not_before=not_before,
            expires=expires,
            caller=caller,
        )

    async def add_version(
        self,
        vault_name: str,
        name: str,
        make: Callable[[VaultInfo, M], Awaitable[V]],
        *,
        operation: str,
        check: Callable[[], object] = lambda: None,
        attributes: Mapping[str, Any],
        tags: Mapping[str, str] | None = None,
        enabled: bool = True,
        not_before: int | None = None,
        expires: int | None = None,
        caller: Caller = LOCAL,
        discard: Callable[[V], Awaitable[None]] | None = None,
        derive: Callable[[VaultInfo, str], Awaitable[Mapping[str, Any]]] | None = None,
    ) -> I:
        """Add a new version whose value ``make`` builds once the input is valid and the
        caller authorised (a key generated for its version); audited as ``operation``.
        ``discard`` undoes what ``make`` made outside storage when the write fails;
        ``derive`` reads metadata fields from the current version once the caller is
        authorised (a rotation repeats the key's type and operations)."""
        core, kind = self._core, self.kind
        with core.audited(caller, vault_name, operation, name) as outcome:
            lname = self._lname(name)
            check()
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
            self._authorize(caller, vault, operation, name)
            if derive is not None:
                meta = replace(meta, **await derive(vault, lname))
            if discard is not None and await self._head(vault, lname) is None:
                # make has effects outside storage (an HSM object): refuse before, not after
                await self._refuse_deleted(vault, lname, name)
            value = await make(vault, meta)
            outcome.version = meta.version  # before the commit: its audit line names it

            async def attempt() -> None:
                txn = core.store.txn()
                # a version derived from the current one needs it still there (a rotation
                # that lost to a delete or purge answers as one that came after it)
                await self.stage_version(
                    txn, vault, lname, meta, value, existing=derive is not None
                )
                await core.store.commit(txn)

            try:
                await self._retry(attempt)
            except BaseException:
                if discard is not None:
                    await discard(value)
                raise
            return kind.item(kind.properties(meta, vault), value)

    async def _stage_update(
        self,
        txn: Txn,
        vault: VaultInfo,
        lname: str,
        head: tuple[int, HeadRecord[M]],
        found: tuple[int, VersionRecord[M, V]],
        changes: Mapping[str, Any],
    ) -> M:
        """Stage new metadata for the version ``found`` (and the head when it is current)."""
        target = found[1].meta.version
        meta = replace(found[1].meta, updated=self._core.now(), **changes)
        vkey, vctx = self._rows.version_row(vault.id, lname, target)
        await txn.put(
            vkey, vctx, self._codec.encode_version(VersionRecord(meta, found[1].value)), found[0]
        )
        hkey, hctx = self._rows.head_row(vault.id, lname)
        if head[1].meta.version == target:
            record = HeadRecord(meta)
            await txn.put(
                hkey, hctx, self._codec.encode_head(record), head[0], known=(self._heads, record)
            )
        else:
            txn.check(hkey, head[0])
        return meta

    async def _stage_mirror(
        self, txn: Txn, vault: VaultInfo, lname: str, version: str, changes: Mapping[str, Any]
    ) -> None:
        """Its owner's validity change, on the same version of this (managed) item."""
        head = await self._head(vault, lname)
        found = await self._version(vault, lname, version)
        if head is not None and found is not None:
            await self._stage_update(txn, vault, lname, head, found, changes)

    async def stage_version(
        self,
        txn: Txn,
        vault: VaultInfo,
        lname: str,
        meta: M,
        value: V,
        *,
        owner: bool = False,
        existing: bool = False,
    ) -> None:
        """Stage ``value`` as the new current version of ``lname`` into ``txn``: refused for
        a deleted name, (with ``existing``) for a name without a current version, and
        (unless its ``owner`` writes) for a managed item."""
        head = await self._head(vault, lname)
        if head is None and existing:
            raise self._not_found(meta.name)
        if head is None:
            await self._refuse_deleted(vault, lname, meta.name)
        elif not owner:
            self._refuse_managed(head[1].meta, "set")
        elif not head[1].meta.managed:
            raise Conflict(
                f"a {self.kind.name} named {meta.name} exists in this vault and is not owned by "
                "a certificate; a certificate cannot take its name"
            )
        vkey, vctx = self._rows.version_row(vault.id, lname, meta.version)
        hkey, hctx = self._rows.head_row(vault.id, lname)
        txn.check(self._rows.deleted_row(vault.id, lname)[0], ABSENT)
        await txn.put(vkey, vctx, self._codec.encode_version(VersionRecord(meta, value)), ABSENT)
        record = HeadRecord(meta)
        await txn.put(
            hkey,
            hctx,
            self._codec.encode_head(record),
            head[0] if head else ABSENT,
            known=(self._heads, record),
        )

    async def _refuse_deleted(self, vault: VaultInfo, lname: str, name: str) -> None:
        if await self._deleted(vault, lname) is not None:
            kind = self.kind
            raise DeletedButRecoverable(
                f"{kind.title} {name} is currently in a deleted but recoverable state, "
                f"and its name cannot be reused; in this state, the {kind.name} can only "
                "be recovered or purged."
            )

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
            return await self._read(vault, lname, name, version, outcome)

    async def _read(
        self, vault: VaultInfo, lname: str, name: str, version: str, outcome: Outcome
    ) -> I:
        """``get`` once the caller is authorised (a kind adds what its reads return)."""
        _, (_, record) = await self._pick_version(vault, lname, name, version, outcome)
        if not record.meta.enabled and not self.kind.public:
            raise ItemDisabled(
                f"Operation get is not allowed on a disabled {self.kind.name}.",
                self.kind.disabled_code,
            )
        return self.kind.item(self._properties(record.meta, vault), record.value)

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

            # The items this kind owns mirror the validity attributes (a certificate's key
            # and secret are enabled and valid when it is).
            mirrored = {k: v for k, v in changes.items() if k in _MIRRORED}

            async def attempt() -> M:
                head, found = await self._pick_version(vault, lname, name, version, outcome)
                self._refuse_managed(head[1].meta, "update")
                txn = core.store.txn()
                meta = await self._stage_update(txn, vault, lname, head, found, changes)
                for engine in self.owned:
                    if mirrored:
                        await engine._stage_mirror(txn, vault, lname, meta.version, mirrored)
                await core.store.commit(txn)
                return meta

            return self.kind.properties(await self._retry(attempt), vault)
