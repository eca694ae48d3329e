"""The sealed view of storage that the domain uses: it sees plaintext and contexts, never rows.

Reads open what they fetch; writes are collected in a :class:`Txn` whose puts are sealed as
they are added, then committed atomically with their compare-and-set expectations. Nothing
above the barrier builds storage operations, so no write can skip encryption.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from kvault.barrier import envelope
from kvault.barrier.context import Context
from kvault.barrier.memo import Memo
from kvault.storage.base import ABSENT, Check, Delete, DeletePrefix, Op, Put, Storage
from kvault.storage.notices import RowsChanged, Shared, Watcher

if TYPE_CHECKING:
    from kvault.barrier.barrier import Barrier

__all__ = [
    "ABSENT",
    "Memo",
    "Opened",
    "RowsChanged",
    "SealedView",
    "Shared",
    "Storage",
    "Txn",
    "Watcher",
]

T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Opened:
    """A row's plaintext, its key below the listed prefix, and its revision (for CAS)."""

    suffix: str
    revision: int
    plaintext: bytes


class Txn:
    """Operations to commit at once; ``expect`` is the revision a row must have
    (:data:`ABSENT`: must not exist; ``None``: unconditional)."""

    __slots__ = ("_barrier", "known", "ops")

    def __init__(self, barrier: Barrier) -> None:
        self._barrier = barrier
        self.ops: list[Op] = []
        #: ``(memo, key, sealed, decoded)`` to remember once the commit lands.
        self.known: list[tuple[Memo[Any], str, bytes, Any]] = []

    async def put(
        self,
        key: str,
        ctx: Context,
        plaintext: bytes,
        expect: int | None,
        *,
        known: tuple[Memo[T], T] | None = None,
    ) -> None:
        """``known``: a memo and what ``plaintext`` decodes to, so the row's next read (a
        SET reads the head the last one wrote) need not open and decode it again."""
        sealed = await self._barrier.seal(ctx, plaintext)
        self.ops.append(Put(key, sealed, expect))
        if known is not None:
            self.known.append((known[0], key, sealed, known[1]))

    def delete(self, key: str, expect: int | None = None) -> None:
        self.ops.append(Delete(key, expect))

    def delete_prefix(self, prefix: str) -> None:
        self.ops.append(DeletePrefix(prefix))

    def check(self, key: str, expect: int) -> None:
        self.ops.append(Check(key, expect))


class SealedView:
    def __init__(self, storage: Storage, barrier: Barrier) -> None:
        self._storage = storage
        self._barrier = barrier
        #: Awaited before every commit (the domain writes the audit line of the change there).
        self.before_commit: Callable[[], Awaitable[None]] | None = None

    @property
    def shared(self) -> Shared | None:
        """The store's notices of other processes' writes, when it is shared by several."""
        return self._storage if isinstance(self._storage, Shared) else None

    async def get(self, key: str, ctx: Context) -> tuple[int, bytes] | None:
        """The revision and plaintext of ``key``, or ``None`` when absent."""
        row = await self._storage.get(key)
        if row is None:
            return None
        return row.revision, await self._barrier.open(ctx, row.value)

    async def get_decoded(
        self, key: str, ctx: Context, decode: Callable[[bytes], T], memo: Memo[T]
    ) -> tuple[int, T] | None:
        """:meth:`get`, decoded; opened and decoded only when ``memo`` has not seen these
        stored bytes at ``key`` before."""
        row = await self._storage.get(key)
        if row is None:
            return None
        decoded = memo.get(key, row.value)
        if decoded is None:
            decoded = decode(await self._barrier.open(ctx, row.value))
            memo.put(key, row.value, decoded)
        return row.revision, decoded

    async def get_known(
        self,
        key: str,
        ctx: Context,
        decode: Callable[[bytes, K | None], tuple[T, K]],
        memo: Memo[K],
    ) -> tuple[int, T] | None:
        """:meth:`get`, decoded by ``decode(plaintext, known)``, which returns what it decoded
        and the part of it worth keeping (never a value): ``known`` is that part as it was
        for this write of ``key`` before, ``None`` the first time. The row is opened (and so
        authenticated) every time; only the kept part skips decoding. The memo holds the
        ciphertext's :func:`~kvault.barrier.envelope.fingerprint`, not the ciphertext: rows
        read this way carry values (up to 25 KiB each)."""
        row = await self._storage.get(key)
        if row is None:
            return None
        plaintext = await self._barrier.open(ctx, row.value)
        written = envelope.fingerprint(row.value)
        known = memo.get(key, written)
        decoded, keep = decode(plaintext, known)
        if known is None:
            memo.put(key, written, keep)
        return row.revision, decoded

    async def scan(
        self,
        prefix: str,
        context: Callable[[str], Context],
        *,
        start_after: str | None = None,
        limit: int | None = None,
    ) -> list[Opened]:
        """Rows under ``prefix`` in key order, each opened under ``context(suffix)``."""
        return (await self.page(prefix, context, start_after=start_after, size=limit))[0]

    async def page(
        self,
        prefix: str,
        context: Callable[[str], Context],
        *,
        start_after: str | None = None,
        size: int | None = None,
    ) -> tuple[list[Opened], bool]:
        """Up to ``size`` opened rows after the suffix ``start_after``, and whether more
        follow (the look-ahead row is fetched but not decrypted)."""
        start = None if start_after is None else prefix + start_after
        limit = None if size is None else size + 1
        rows = await self._storage.list(prefix, start_after=start, limit=limit)
        more = size is not None and len(rows) > size
        out = []
        for row in rows[:size] if more else rows:
            suffix = row.key[len(prefix) :]
            out.append(
                Opened(suffix, row.revision, await self._barrier.open(context(suffix), row.value))
            )
        return out, more

    async def count(self, prefix: str) -> int:
        """How many rows are under ``prefix`` (nothing is decrypted)."""
        return len(await self._storage.list(prefix))

    def txn(self) -> Txn:
        return Txn(self._barrier)

    async def commit(self, txn: Txn) -> None:
        """Apply ``txn`` atomically; raises :class:`kvault.errors.StorageConflict` when an
        expectation does not hold (nothing is written then)."""
        if self.before_commit is not None:
            await self.before_commit()
        await self._storage.commit(txn.ops)
        for memo, key, sealed, decoded in txn.known:
            memo.put(key, sealed, decoded)
