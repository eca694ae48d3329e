"""The one compare-and-set retry: bounded, with jittered back-off, ending in a Conflict.

Every read-modify-write in kvault goes through :func:`cas_retry`, so a storm of writers on
one row degrades into 409s for the losers instead of a loop that never ends.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kvault.errors import Conflict, StorageConflict

T = TypeVar("T")
ATTEMPTS = 20
#: Back-off bounds in seconds: attempt ``n`` waits up to ``min(CAP, BASE * 2**n)``.
BASE = 0.001
CAP = 0.05


async def cas_retry(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    *,
    on_conflict: Callable[[], None] | None = None,
    attempts: int = ATTEMPTS,
) -> T:
    """Run ``attempt`` until its compare-and-set holds, at most ``attempts`` times.

    ``on_conflict`` runs after each lost race (e.g. to drop a cached row). When every attempt
    loses, raises :class:`Conflict` naming ``what`` (no values: it reaches clients).
    """
    for n in range(attempts):
        try:
            return await attempt()
        except StorageConflict:
            if on_conflict is not None:
                on_conflict()
            if n:  # the first retry is immediate: most races are lost by one write
                await asyncio.sleep(random.uniform(0, min(CAP, BASE * 2**n)))
    raise Conflict(f"{what} is being changed concurrently; retry the request")
