"""The one compare-and-set retry: bounded, fair, ending in a Conflict only when it must.

Every read-modify-write in kvault goes through :func:`cas_retry`: its ``attempt`` reads what
it needs, decides (raising the domain's answer: not found, conflict...), stages and commits
with compare-and-set. A lost race (:class:`StorageConflict`) runs the attempt again on a
fresh read, so a purge that lost to a purge answers as the item now is (gone: not found),
and a set that lost to a set adds its version after the winner's.

Writers of one process that lost a race *take turns*: they queue on a lock per ``key`` (per
event loop) and retry one at a time, and a newcomer that finds writers queued joins the
queue instead of racing them. So a storm of N writers on one row costs about N commits
instead of N² attempts, and nobody runs out of attempts to its own neighbours. Only writers
of other processes (replicas sharing a database) can still win against a turn; against
those the turn backs off with jitter, and after :data:`ATTEMPTS` it gives up with a
:class:`Conflict` (HTTP 409) rather than loop without end.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from kvault.errors import Conflict, StorageConflict

T = TypeVar("T")
ATTEMPTS = 20
#: Back-off bounds in seconds: attempt ``n`` waits up to ``min(CAP, BASE * 2**n)``.
BASE = 0.001
CAP = 0.05


@dataclass(slots=True)
class _Turns:
    """The writers of one key in one event loop that lost a race, in line."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0  # holding the lock or waiting for it


_LINES: dict[tuple[asyncio.AbstractEventLoop, Hashable], _Turns] = {}
#: Set while this task holds a turn: a read-modify-write nested in it needs no other (and
#: taking one could deadlock against a writer that holds that one and waits for ours).
_IN_TURN: ContextVar[bool] = ContextVar("kvault_cas_in_turn", default=False)


def _queued(key: Hashable) -> bool:
    line = _LINES.get((asyncio.get_running_loop(), key))
    return line is not None and line.waiting > 0


@asynccontextmanager
async def _turn(key: Hashable) -> AsyncIterator[None]:
    if _IN_TURN.get():
        yield
        return
    slot = (asyncio.get_running_loop(), key)
    line = _LINES.get(slot)
    if line is None:
        line = _LINES[slot] = _Turns()
    line.waiting += 1
    try:
        async with line.lock:
            token = _IN_TURN.set(True)
            try:
                yield
            finally:
                _IN_TURN.reset(token)
    finally:
        line.waiting -= 1
        if not line.waiting:
            del _LINES[slot]


async def cas_retry(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    *,
    on_conflict: Callable[[], None] | None = None,
    attempts: int = ATTEMPTS,
    key: Hashable | None = None,
) -> T:
    """Run ``attempt`` until its compare-and-set holds, at most ``attempts`` times.

    ``attempt`` must read afresh each time (what it read last time lost the race).
    ``on_conflict`` runs after each lost race (e.g. to drop a cached row). Writers that
    lost take turns per ``key`` (default: ``what``). When every attempt loses, raises
    :class:`Conflict` naming ``what`` (no values: it reaches clients).
    """
    key = what if key is None else key
    n = 0
    if not _queued(key):  # nobody in line: try at once (almost every write wins here)
        n = 1
        try:
            return await attempt()
        except StorageConflict:
            if on_conflict is not None:
                on_conflict()
    async with _turn(key):
        first_in_turn = n
        while n < attempts:
            n += 1
            try:
                return await attempt()
            except StorageConflict:
                if on_conflict is not None:
                    on_conflict()
                if n - first_in_turn > 1:  # lost again in its turn: another replica writes
                    await asyncio.sleep(random.uniform(0, min(CAP, BASE * 2**n)))
    raise Conflict(f"{what} is being changed concurrently; retry the request")
