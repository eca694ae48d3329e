"""What rows decoded to, kept by the exact ciphertext they came from.

A row read again unchanged need not be opened and decoded again. The memo is keyed by the
row's key and checked against its stored bytes, not its revision: every write seals with a
fresh nonce, so equal bytes can only be the same write (a row deleted and written again,
whose revision starts over, never matches), and what was decoded from them was
authenticated when it was first opened (or, for a row this process has just committed, is
the record it encoded and sealed: ``Txn.put(..., known=...)``). Nothing stale can come out
of it, on any replica.

A kind opts in when keeping its rows in memory adds nothing that is not there already: a
key's record holds its public JWK and either the HSM's handle or the software key, which the
keys kind keeps parsed in memory to use. Secret values are never memoised: nothing needs them
after the request that reads them. Head rows (an item's current version and metadata, no
value) are memoised for every kind: each read of an item opens its head first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    """A bounded LRU of ``key -> (ciphertext, decoded)``."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a memo holds at least one row, not {size}")
        self._size = size
        self._rows: OrderedDict[str, tuple[bytes, T]] = OrderedDict()
        self._lock = threading.Lock()  # the domain may be called from more than one thread

    def get(self, key: str, stored: bytes) -> T | None:
        """What ``stored`` at ``key`` decoded to, if it was decoded before."""
        with self._lock:
            hit = self._rows.get(key)
            if hit is None or hit[0] != stored:
                return None
            self._rows.move_to_end(key)
            return hit[1]

    def put(self, key: str, stored: bytes, decoded: T) -> None:
        with self._lock:
            self._rows[key] = (stored, decoded)
            self._rows.move_to_end(key)
            if len(self._rows) > self._size:
                self._rows.popitem(last=False)
