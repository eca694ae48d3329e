"""Serve an application over TLS until told to stop; report the bound port once listening."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from kvault.api.connections import GuardedSite
from kvault.api.limits import ConnectionLimits


def bound_port(site: web.BaseSite) -> int:
    """The port ``site`` listens on (the one the OS chose when asked for port 0)."""
    # asyncio's Server or uvloop's (kvault.app.eventloop): both list their sockets.
    sockets = getattr(site._server, "sockets", None)
    assert sockets, "the site is not listening"
    port: int = sockets[0].getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def listening(
    app: web.Application,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    backlog: int = 128,
    shutdown_timeout: float = 60.0,
    connections: ConnectionLimits | None = None,
) -> AsyncIterator[int]:
    """Listen on ``host:port`` for the block (yields the bound port), then clean up. With
    ``connections`` (the data plane) every connection passes its caps and deadlines and a
    malformed request gets Azure's error shape (:mod:`kvault.api.connections`); without, it is
    aiohttp's plain listener (``/metrics``)."""
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    try:
        site: web.BaseSite
        if connections is None:
            site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=backlog)
        else:
            site = GuardedSite(
                runner, host, port, limits=connections, ssl_context=ssl_context, backlog=backlog
            )
        await site.start()
        yield bound_port(site)
    finally:
        await runner.cleanup()


async def serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext,
    on_ready: Callable[[int], None],
    stop: asyncio.Event | None = None,
    connections: ConnectionLimits | None = None,
) -> None:
    """Listen on ``host:port`` (0: any free port), call ``on_ready(port)``, then serve until
    ``stop`` is set or SIGINT/SIGTERM arrives; in-flight requests get a few seconds.
    ``connections``: the caps and deadlines of each connection (default: the defaults)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with listening(
            app,
            host,
            port,
            ssl_context=ssl_context,
            backlog=1024,
            shutdown_timeout=5.0,
            connections=connections or ConnectionLimits(),
        ) as bound:
            on_ready(bound)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
