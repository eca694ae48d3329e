"""PostgreSQL ``LISTEN``: the other replicas' notices (:mod:`kvault.storage.notices`) for one
process, on a connection of its own (a pooled one would drop the subscription on release).

The connection is pinged every :data:`PING` seconds, so a database that froze or vanished
without closing the socket is noticed too; a lost connection is re-established with back-off
and then :attr:`Watcher.reset` is called, because notices sent meanwhile were missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from kvault.storage.notices import Watcher, origin_prefix, parse_note, parse_rows_changed

log = logging.getLogger(__name__)

#: The channel of :func:`~kvault.storage.notices.rows_changed` payloads (sent by commits).
ROWS_CHANNEL = "kvault_rows"
#: The channel of announced notes.
NOTES_CHANNEL = "kvault_notes"
#: Seconds between liveness pings of the listening connection.
PING = 5.0
BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0

Connect = Callable[[], Awaitable["asyncpg.Connection[Any]"]]


class Listener:
    """Delivers notices from other origins to ``watcher`` while it runs; ``lost`` is called
    as soon as the connection is found lost (notices may be missed until ``reset``)."""

    def __init__(
        self,
        connect: Connect,
        origin: str,
        watcher: Watcher,
        timeout: float,
        lost: Callable[[], None] = lambda: None,
    ) -> None:
        self._connect = connect
        self._on_lost = lost
        self._origin = origin
        self._own = origin_prefix(origin)
        self._watcher = watcher
        self._timeout = timeout
        self._conn: asyncpg.Connection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    async def start(self) -> None:
        """Listen now (raising what connecting raises), then keep listening in the background."""
        await self._listen()
        self._task = asyncio.get_running_loop().create_task(self._keep())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop()

    async def _listen(self) -> None:
        conn = await self._connect()
        try:
            await conn.add_listener(ROWS_CHANNEL, self._on_rows)
            await conn.add_listener(NOTES_CHANNEL, self._on_note)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._on_terminated)
        self._lost.clear()
        self._conn = conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.remove_termination_listener(self._on_terminated)
            conn.terminate()

    async def _keep(self) -> None:
        """Ping; on loss, reconnect with back-off, then tell the watcher to forget."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), PING)
            conn = self._conn
            if not self._lost.is_set() and conn is not None:
                try:
                    await conn.fetchval("SELECT 1", timeout=self._timeout)
                    continue
                except Exception as exc:  # any failure: listen anew
                    log.warning(
                        "storage notices: listening connection lost (%s)", type(exc).__name__
                    )
            self._on_lost()
            await self._drop()
            await self._relisten()
            self._watcher.reset()

    async def _relisten(self) -> None:
        delay = BACKOFF_MIN
        while True:
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(BACKOFF_MAX, delay * 2)
            try:
                await self._listen()
            except Exception as exc:  # the database is away: again
                log.debug("storage notices: cannot listen yet (%s)", type(exc).__name__)
                continue
            log.warning("storage notices: listening again; caches of other replicas' rows reset")
            return

    def _on_terminated(self, _conn: object) -> None:
        self._lost.set()

    def _on_rows(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        text = str(payload)
        if text.startswith(self._own):
            return
        notice = parse_rows_changed(text)
        if notice.origin != self._origin:
            self._watcher.rows(notice)

    def _on_note(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        text = str(payload)
        if text.startswith(self._own):
            return
        parsed = parse_note(text)
        if parsed is not None and parsed[0] != self._origin:
            self._watcher.note(parsed[1])
