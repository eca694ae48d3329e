"""Serve an application over TLS until told to stop; report the bound port once listening."""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Callable

from aiohttp import web


async def serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext,
    on_ready: Callable[[int], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Listen on ``host:port`` (0: any free port), call ``on_ready(port)``, then serve until
    ``stop`` is set or SIGINT/SIGTERM arrives; in-flight requests get a few seconds."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=1024)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        on_ready(server.sockets[0].getsockname()[1])
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
