"""Rows of a shared store kept in memory, for as long as the store's notices say they hold.

A point read from PostgreSQL is a network round trip; a secret GET makes two (head and
version). A replica that hears every other replica's commits (:mod:`.pg_listen`) can keep
what it read, as ciphertext, and forget a row when a commit touches it: its own commits
synchronously (keeping what they wrote once they return), the others' when their notice
arrives (within a millisecond on one host).
While the listening connection is down nothing is served from memory, and it starts empty
again once listening resumes.

A read that races an invalidation of its row is not kept: every invalidation moves
:attr:`epoch` and marks the keys it touched with the new value; a read keeps its row only if
the row's key was not marked after the epoch the read started under. Marks are per key, so
the many commits of other rows that run meanwhile under load do not stop a row being kept
(a global epoch did: with 32 writers almost no commit kept what it wrote). The marks are
bounded (:data:`MARKS`): the oldest are dropped and the epoch of the last one dropped
becomes a floor below which nothing is kept, which only refuses more.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from kvault.storage.base import Row

#: Default bound on the bytes of values kept (least recently used beyond it).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Keys whose last invalidation is remembered (a read under way while more keys than this
#: were invalidated is not kept).
MARKS = 4096


class RowCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._rows: OrderedDict[str, Row] = OrderedDict()
        self._bytes = 0
        self.epoch = 0
        #: key -> the epoch of its last invalidation, oldest first (at most :data:`MARKS`).
        self._marks: OrderedDict[str, int] = OrderedDict()
        #: Nothing read under an epoch below this is kept (a wide invalidation, or marks
        #: dropped for the bound).
        self._floor = 0
        #: Rows are kept only while this is true (the store's notices reach us).
        self.active = False
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: str) -> Row | None:
        """The kept row, or ``None`` when it must be read from the store."""
        row = self._rows.get(key)
        if row is None:
            self.misses += 1
            return None
        self._rows.move_to_end(key)
        self.hits += 1
        return row

    def keep(self, row: Row, epoch: int) -> bool:
        """Keep ``row``, read under ``epoch``, unless its key was invalidated since; whether
        it was kept."""
        if not self._fresh(row.key, epoch):
            return False
        self._store(row)
        return True

    def put(self, row: Row, epoch: int) -> None:
        """A row this process has just written in a commit that started under ``epoch``:
        kept (and reads that started before it never replace it), unless another change of
        its key was heard meanwhile, then forgotten."""
        fresh = self._fresh(row.key, epoch)
        self._mark(row.key)
        if fresh:
            self._store(row)
        else:
            self._drop(row.key)

    def forget(self, keys: Iterable[str] = (), prefixes: Iterable[str] = ()) -> None:
        """Rows that changed (or may have)."""
        for key in keys:
            self._mark(key)
            self._drop(key)
        for prefix in prefixes:
            self.epoch += 1
            self._floor = self.epoch
            for key in [k for k in self._rows if k.startswith(prefix)]:
                self._drop(key)

    def _fresh(self, key: str, epoch: int) -> bool:
        return self.active and epoch >= self._floor and self._marks.get(key, 0) <= epoch

    def _mark(self, key: str) -> None:
        self.epoch += 1
        marks = self._marks
        marks.pop(key, None)
        marks[key] = self.epoch
        if len(marks) > MARKS:
            self._floor = max(self._floor, marks.popitem(last=False)[1])

    def _store(self, row: Row) -> None:
        self._drop(row.key)
        if len(row.value) > self.max_bytes // 16:
            return
        self._rows[row.key] = row
        self._bytes += len(row.value)
        while self._bytes > self.max_bytes:
            _, dropped = self._rows.popitem(last=False)
            self._bytes -= len(dropped.value)

    def _drop(self, key: str) -> None:
        row = self._rows.pop(key, None)
        if row is not None:
            self._bytes -= len(row.value)

    def clear(self) -> None:
        self.epoch += 1
        self._floor = self.epoch
        self._marks.clear()
        self._rows.clear()
        self._bytes = 0

    def suspend(self) -> None:
        """Notices may be missed from now on: serve nothing from memory."""
        self.active = False
        self.clear()

    def resume(self) -> None:
        """Listening (again): keep rows from now on."""
        self.clear()
        self.active = True
