"""A de-duplicating work queue (one reconcile per object at a time, like client-go's), with
per-object timers for the periodic refresh that heals drift and backoff after failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kvault.controller import metrics

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name) of an object
MAX_BACKOFF = 300.0


@dataclass
class WorkQueue:
    """Keys waiting for a reconcile. A key is never handled by two workers at once; a key
    added while it is being handled is handled once more afterwards (no update is lost)."""

    handler: Callable[[Key], Awaitable[None]]
    workers: int = 32
    _queue: asyncio.Queue[Key] = field(default_factory=asyncio.Queue)
    _pending: set[Key] = field(default_factory=set)
    _active: set[Key] = field(default_factory=set)
    _dirty: set[Key] = field(default_factory=set)
    _timers: dict[Key, tuple[float, asyncio.TimerHandle]] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _failures: dict[Key, int] = field(default_factory=dict)

    def add(self, key: Key) -> None:
        if key in self._active:
            self._dirty.add(key)
            return
        if key in self._pending:
            return
        self._pending.add(key)
        self._queue.put_nowait(key)
        metrics.QUEUE_DEPTH.set(len(self._pending))

    def add_after(self, key: Key, delay: float) -> None:
        """Add ``key`` in ``delay`` seconds (an earlier timer for the key wins)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        current = self._timers.get(key)
        if current is not None:
            if current[0] <= due:
                return
            current[1].cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = (due, loop.call_at(due, fire))

    def forget(self, key: Key) -> None:
        self._failures.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer[1].cancel()

    def superseded(self, key: Key) -> bool:
        """Whether ``key`` was added again while it is being handled: what the handler read
        is already out of date, and the queue runs it once more when it returns."""
        return key in self._dirty

    def depth(self) -> int:
        return len(self._pending)

    def idle(self) -> bool:
        return not self._pending and not self._active

    def start(self) -> None:
        for n in range(self.workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"kvault-worker-{n}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._pending.discard(key)
            self._active.add(key)
            metrics.QUEUE_DEPTH.set(len(self._pending))
            try:
                await self.handler(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Retried with exponential backoff (1 s .. 5 min): a transient API error
                # must not leave an object unreconciled (or a finalizer in place) for good.
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                log.exception("reconcile of %s/%s failed (attempt %d)", key[0], key[1], failures)
                self.add_after(key, min(MAX_BACKOFF, 2.0 ** (failures - 1)))
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)
