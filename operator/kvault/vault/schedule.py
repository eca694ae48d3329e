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

__all__ = ["DEFAULT_INTERVAL", "each_vault", "outcome_of", "run_passes"]

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


async def run_passes(
    tick: Callable[[], Awaitable[object]], stop: asyncio.Event, interval: float, what: str
) -> None:
    """``tick`` after ``tick``, ``interval`` seconds apart, until ``stop`` is set (a pass under
    way finishes first). A failed pass (storage trouble) is logged; the next one tries again."""
    while not stop.is_set():
        try:
            await tick()
        except Exception:
            log.exception("%s pass failed", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
