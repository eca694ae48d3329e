"""What the lifetime schedulers share (key rotation, certificate renewal): passes until a stop,
one vault at a time, a vault whose schedule does not read skipped (logged) for this pass.

Each scheduler keeps its own per-item logic; this module is only the loop around it, so the
two cannot drift apart in how they stop, wait or isolate a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from kvault.errors import KvaultError
from kvault.vault.model import VaultInfo
from kvault.vault.service import Kvault

__all__ = ["DEFAULT_INTERVAL", "MIN_WAIT", "each_vault", "outcome_of", "run_passes"]

log = logging.getLogger(__name__)
#: Seconds between two passes of a scheduler.
DEFAULT_INTERVAL = 60.0
T = TypeVar("T")


async def each_vault(
    kv: Kvault, read: Callable[[str], Awaitable[list[T]]], what: str
) -> AsyncIterator[tuple[VaultInfo, list[T]]]:
    """Every active vault with what ``read`` (the scheduler's own, unaudited read) finds in it.
    A vault deleted meanwhile, or one whose rows do not open, is logged and left out."""
    for vault in await kv.vaults.list():
        try:
            found = await read(vault.name)
        except KvaultError as exc:
            log.warning("%s of vault %s not read: %s", what, vault.name, exc.outcome)
            continue
        yield vault, found


def outcome_of(exc: BaseException) -> str:
    """The outcome an action that raised ``exc`` reports: its error code, else its type."""
    return exc.outcome if isinstance(exc, KvaultError) else type(exc).__name__


#: The shortest wait between two passes, however soon the next action falls due.
MIN_WAIT = 1.0


async def run_passes(
    tick: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    interval: float,
    what: str,
    *,
    wait: Callable[[], float | None] | None = None,
) -> None:
    """``tick`` after ``tick``, ``interval`` seconds apart, until ``stop`` is set (a pass under
    way finishes first). A failed pass (storage trouble) is logged; the next one tries again.
    ``wait``, asked after each pass, may shorten the wait to when the next action falls due
    (seconds from now; ``None``: nothing sooner), never below :data:`MIN_WAIT`."""
    while not stop.is_set():
        try:
            await tick()
        except Exception:
            log.exception("%s pass failed", what)
        delay = interval
        sooner = wait() if wait is not None else None
        if sooner is not None:
            delay = max(MIN_WAIT, min(interval, sooner))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
