"""The data plane on uvloop, the loop ``kvault server`` and ``kvault operator`` run on when it
is installed (:mod:`kvault.app.eventloop`, issue 14).

uvloop starts reading a socket as soon as its first protocol's ``connection_made`` returns,
whatever that protocol asked: a ClientHello read before TLS took the socket over was lost and
its handshake hung (most connections of a burst did). Each test runs the real listener in a
loop of its own: uvloop's, and asyncio's for comparison."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kvault.api.app import build_app
from kvault.api.config import ApiConfig
from kvault.api.limits import ConnectionLimits
from kvault.api.server import serve
from kvault.api.tls import CertificateAuthority, ServerTLS
from kvault.app import eventloop
from kvault.app.backends import open_kvault
from kvault.hsm.registry import load
from kvault.identity.model import Principal
from kvault.identity.static import StaticTokens
from tests.api.rawhttp import Target, aconnect, aresponse, client_context, request

uvloop = pytest.importorskip("uvloop")

TOKEN = "loop-token"
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}
#: Connections opened at once, each with one request: a burst like a load generator's.
BURST = 64


async def _burst(tmp_path: Path) -> list[int]:
    """Serve the app over TLS in this loop and answer :data:`BURST` new connections."""
    kv = await open_kvault(
        tmp_path / "data", load("software", {"key_file": str(tmp_path / "hsm.key")})
    )
    try:
        await kv.vaults.create("dev", sku="standard", retention_days=7)
        tls = ServerTLS(CertificateAuthority.load_or_create(tmp_path / "tls"), tmp_path / "tls")
        config = ApiConfig(
            kv, StaticTokens({TOKEN: Principal("kvault:root", superuser=True)}), default_vault="dev"
        )
        bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        server = asyncio.create_task(
            serve(
                build_app(config),
                host="127.0.0.1",
                port=0,
                ssl_context=tls.context,
                on_ready=bound.set_result,
                stop=stop,
                # A hung handshake would be cut off by the header deadline: longer than the
                # test's patience, so that it fails instead.
                connections=ConnectionLimits(header_timeout=60),
            )
        )
        try:
            target = Target(await asyncio.wait_for(bound, 10), client_context(tls.ca.cert_file))

            async def one() -> int:
                reader, writer = await aconnect(target)
                try:
                    writer.write(request("GET", "/healthz/noop", token=TOKEN, close=True))
                    return (await aresponse(reader)).status
                finally:
                    writer.close()

            async with asyncio.timeout(20):
                return list(await asyncio.gather(*(one() for _ in range(BURST))))
        finally:
            stop.set()
            await server
    finally:
        await kv.close()


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_every_connection_of_a_burst_is_served(tmp_path: Path, loop: str) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        assert runner.run(_burst(tmp_path)) == [200] * BURST


def test_the_processes_run_on_uvloop_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(eventloop.ENV, raising=False)
    assert eventloop.loop_factory() is uvloop.new_event_loop
    assert eventloop.run(_loop_name()) == "uvloop"
    monkeypatch.setenv(eventloop.ENV, "asyncio")
    assert eventloop.loop_factory() is None
    assert eventloop.run(_loop_name()) == "asyncio"


def test_without_uvloop_the_standard_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV, raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert eventloop.loop_factory() is None
    assert eventloop.run(_loop_name()) == "asyncio"


async def _loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]
