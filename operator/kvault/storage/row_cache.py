"""Rows of a shared store kept in memory, for as long as the store's notices say they hold.

A point read from PostgreSQL is a network round trip; a secret GET makes two (head and
version). A replica that hears every other replica's commits (:mod:`.pg_listen`) can keep
what it read, as ciphertext, and forget a row when a commit touches it: its own commits
synchronously (keeping what they wrote once they return), the others' when their notice
arrives (within a millisecond on one host).
While the listening connection is down nothing is served from memory, and it starts empty
again once listening resumes.

A read that races an invalidation is not kept: every invalidation moves :attr:`epoch`, and a
read keeps its row only if the epoch it started under is still current.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from kvault.storage.base import Row

#: Default bound on the bytes of values kept (least recently used beyond it).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class RowCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._rows: OrderedDict[str, Row] = OrderedDict()
        self._bytes = 0
        self.epoch = 0
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

    def keep(self, row: Row, epoch: int) -> None:
        """Keep ``row``, read under ``epoch``, unless something was invalidated since."""
        if not self.active or epoch != self.epoch or len(row.value) > self.max_bytes // 16:
            return
        old = self._rows.pop(row.key, None)
        if old is not None:
            self._bytes -= len(old.value)
        self._rows[row.key] = row
        self._bytes += len(row.value)
        while self._bytes > self.max_bytes:
            _, dropped = self._rows.popitem(last=False)
            self._bytes -= len(dropped.value)

    def forget(self, keys: Iterable[str] = (), prefixes: Iterable[str] = ()) -> None:
        """Rows that changed (or may have)."""
        self.epoch += 1
        for key in keys:
            row = self._rows.pop(key, None)
            if row is not None:
                self._bytes -= len(row.value)
        for prefix in prefixes:
            for key in [k for k in self._rows if k.startswith(prefix)]:
                self._bytes -= len(self._rows.pop(key).value)

    def clear(self) -> None:
        self.epoch += 1
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
