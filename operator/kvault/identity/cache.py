"""A bounded map of token digest -> authentication outcome, each with its own deadline.

Both authenticators cache successes (until shortly before the credential expires) and
failures (a few seconds, to blunt floods of the same bad token). Keys are SHA-256 digests,
so the cache never holds a usable credential.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvault.errors import Unauthenticated
from kvault.identity.model import Principal


@dataclass(frozen=True, slots=True)
class Outcome:
    """A principal, or the reason the token was refused."""

    principal: Principal | None
    reason: str = ""
    until: float = 0.0  # the entry is used while now < until
    code: str = "InvalidToken"  # the refusal's :attr:`Unauthenticated.reason`


class OutcomeCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[bytes, Outcome] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes, now: float) -> Outcome | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if now >= hit.until:
            del self._entries[key]
            return None
        return hit

    def recall(self, key: bytes, now: float) -> Principal | None:
        """A cached principal; a cached refusal is raised again; ``None`` when not cached."""
        hit = self.get(key, now)
        if hit is None:
            return None
        if hit.principal is None:
            raise Unauthenticated(hit.reason, hit.code)
        return hit.principal

    def put(self, key: bytes, outcome: Outcome, now: float) -> None:
        if outcome.until <= now:
            return
        if key not in self._entries and len(self._entries) >= self.max_entries:
            self._evict(now)
        self._entries[key] = outcome

    def clear(self) -> None:
        self._entries.clear()

    def _evict(self, now: float) -> None:
        """Drop expired entries; if that frees too little, the oldest tenth (amortised O(1))."""
        live = {k: v for k, v in self._entries.items() if now < v.until}
        if len(live) >= self.max_entries:
            drop = max(1, self.max_entries // 10)
            for k in list(live)[:drop]:
                del live[k]
        self._entries = live
