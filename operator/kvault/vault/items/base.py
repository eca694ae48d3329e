"""The items engine's common part: a kind's rows read and decoded, listing pages, messages,
the retry and the authorisation step (see :mod:`kvault.vault.items.engine`)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from kvault.barrier.context import Context
from kvault.barrier.memo import Memo
from kvault.barrier.retry import cas_retry
from kvault.errors import Forbidden, NotFound
from kvault.vault import names
from kvault.vault.access import authorize
from kvault.vault.core import Caller, Core, Outcome
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
#: The caller of scheduled work (purge of expired deleted items).
SCHEDULER = Caller("kvault")
#: Head rows kept decoded per kind (:class:`Memo`: by the exact stored bytes, so never stale).
HEAD_MEMO_ROWS = 4096
UNSET: Any = object()

__all__ = ["SCHEDULER", "UNSET", "D", "I", "ItemBase", "M", "P", "T", "V"]


class ItemBase(Generic[M, V, P, I, D]):
    """The rows of one kind, in every vault, and the helpers every operation uses."""

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
        self._memo: Memo[Any] | None = Memo(kind.memo_rows) if kind.memo_rows else None
        #: Head rows decoded (metadata only, never a value: every read of an item reads its
        #: head first), for every kind; the kind's own memo when it keeps all its rows.
        self._heads: Memo[Any] = self._memo or Memo(HEAD_MEMO_ROWS)
        #: The metadata of version rows (not their values, opened and decoded at each read).
        self._metas: Memo[Any] = Memo(HEAD_MEMO_ROWS)
        #: :meth:`_properties` by the identity of the metadata and vault objects they were
        #: built from (both held, so that neither identity can be reused meanwhile).
        self._props: OrderedDict[tuple[int, int], tuple[M, VaultInfo, P]] = OrderedDict()

    # -- messages -------------------------------------------------------------------------

    def _not_found(self, name: str) -> NotFound:
        return NotFound(
            f"A {self.kind.name} with (name/id) {name} was not found in this key vault.",
            self.kind.not_found_code,
        )

    def _deleted_not_found(self, name: str) -> NotFound:
        return NotFound(
            f"Deleted {self.kind.name} {name} was not found in this key vault.",
            self.kind.not_found_code,
        )

    def _refuse_managed(self, meta: ItemMeta, verb: str) -> None:
        """A certificate's key or secret changes only through its certificate (Azure's
        "managed" objects)."""
        if meta.managed:
            raise Forbidden(
                f'Operation "{verb}" is not allowed as this object\'s lifetime is managed by '
                "Key Vault.",
                f"{self.kind.title}ManagedByKeyVault",
            )

    # -- reading rows -----------------------------------------------------------------------

    def _lname(self, name: str) -> str:
        return names.item_name(name, self.kind.name)

    def _authorize(
        self, caller: Caller, vault: VaultInfo, operation: str, name: str | None
    ) -> None:
        authorize(caller, vault, operation, self.kind.plural, name)

    async def _decoded(
        self, key: str, ctx: Context, decode: Callable[[bytes], T]
    ) -> tuple[int, T] | None:
        """A row's revision and ``decode`` of its plaintext (through the kind's memo)."""
        if self._memo is not None:
            return await self._core.store.get_decoded(key, ctx, decode, self._memo)
        found = await self._core.read(key, ctx)
        return None if found is None else (found[0], decode(found[1]))

    async def _head(self, vault: VaultInfo, lname: str) -> tuple[int, HeadRecord[M]] | None:
        key, ctx = self._rows.head_row(vault.id, lname)
        return await self._core.store.get_decoded(key, ctx, self._codec.decode_head, self._heads)

    async def _deleted(self, vault: VaultInfo, lname: str) -> tuple[int, HeadRecord[M]] | None:
        key, ctx = self._rows.deleted_row(vault.id, lname)
        return await self._decoded(key, ctx, self._codec.decode_head)

    async def _version(
        self, vault: VaultInfo, lname: str, version: str
    ) -> tuple[int, VersionRecord[M, V]] | None:
        key, ctx = self._rows.version_row(vault.id, lname, version)
        if self._memo is not None:
            return await self._core.store.get_decoded(
                key, ctx, self._codec.decode_version, self._memo
            )
        return await self._core.store.get_known(
            key, ctx, self._codec.decode_version_known, self._metas
        )

    def _properties(self, meta: M, vault: VaultInfo) -> P:
        """``kind.properties(meta, vault)``, built once for the metadata objects the memos
        hand out again (frozen: shared by the requests that read the same version)."""
        key = (id(meta), id(vault))
        kept = self._props.get(key)
        if kept is not None and kept[0] is meta and kept[1] is vault:
            return kept[2]
        props = self.kind.properties(meta, vault)
        if len(self._props) >= HEAD_MEMO_ROWS:
            self._props.popitem(last=False)  # the oldest (O(1), unlike a dict's first key)
        self._props[key] = (meta, vault, props)
        return props

    async def _pick_version(
        self, vault: VaultInfo, lname: str, name: str, version: str, outcome: Outcome
    ) -> tuple[tuple[int, HeadRecord[M]], tuple[int, VersionRecord[M, V]]]:
        """(head, version) rows of the version asked for, or of the current one; the version
        goes into ``outcome`` before it is read, so a miss is audited with it."""
        head = await self._head(vault, lname)
        if head is None:
            raise self._not_found(name)
        outcome.version = version = version or head[1].meta.version
        found = await self._version(vault, lname, version)
        if found is None:
            raise self._not_found(f"{name}/{version}")
        return head, found

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
