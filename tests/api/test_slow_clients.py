"""Slow and greedy clients (slowloris): stalled headers, stalled bodies and idle keep-alive
connections are closed by their deadlines, the memory they held goes back, a normal GET is
answered meanwhile, and connections over the caps are refused as they are accepted (issue 12,
finding 5 and acceptance 4).

The wave test runs a real ``kvault server --dev`` (RSS from /proc); the caps and metrics
tests serve the real app in this process, where the Prometheus registry can be read."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kvault.api.app import build_app
from kvault.api.config import ApiConfig
from kvault.api.limits import ConnectionLimits
from kvault.api.metrics import REGISTRY
from kvault.api.server import serve
from kvault.api.tls import CertificateAuthority, ServerTLS
from kvault.identity.model import Principal
from kvault.identity.static import StaticTokens
from kvault.vault.service import Kvault
from tests.api.rawhttp import (
    Target,
    aconnect,
    aresponse,
    client_context,
    exchange,
    parse,
    request,
    rss_kib,
    until_closed,
)
from tests.fixtures.devserver import ROOT, DevServer, start_dev_server, stop

HEADERS, BODY, IDLE = "partial headers", "partial body", "idle keep-alive"
KINDS = (HEADERS, BODY, IDLE)
#: Client addresses the wave comes from (Linux routes all of 127/8 to loopback), so that the
#: default per-client cap (256) holds 1,000 connections.
SOURCES = tuple(f"127.0.0.{i}" for i in range(1, 9))


@dataclass(frozen=True)
class Deadlines:
    header: float
    body: float
    idle: float

    def of(self, kind: str) -> float:
        return {HEADERS: self.header, BODY: self.body, IDLE: self.idle}[kind]

    def flags(self) -> tuple[str, ...]:
        return (
            *("--header-timeout", str(self.header)),
            *("--body-timeout", str(self.body)),
            *("--idle-timeout", str(self.idle)),
        )


@dataclass(frozen=True)
class Stall:
    kind: str
    closed: bool  # the server closed it (not our patience)
    seconds: float  # from when its deadline started (as the client sees it) to the close


async def _stall(
    target: Target,
    kind: str,
    source: str,
    *,
    gate: asyncio.Semaphore | None = None,
    opened: Callable[[], None] = lambda: None,
    patience: float = 60,
) -> Stall:
    """One stalled connection: part of a request (or a whole one, then nothing), then wait
    for the server to close it. ``gate`` bounds the handshakes under way; ``opened`` is
    called once the stall is in place (or failed to be)."""
    try:
        async with gate or contextlib.nullcontext():
            started = time.monotonic()  # the header deadline runs from the connection's start
            reader, writer = await aconnect(target, source)
            if kind == HEADERS:
                writer.write(b"GET /secrets?api-version=7.5 HTTP/1.1\r\nHost: localhost\r\nX-Sl")
            elif kind == BODY:
                head = request(
                    "PUT",
                    "/secrets/stalled?api-version=7.5",
                    token=target.token,
                    headers=(("Content-Type", "application/json"), ("Content-Length", "1000")),
                )
                writer.write(head + b'{"value": "12345')
                started = time.monotonic()
            else:
                writer.write(request("GET", "/healthz"))
                assert (await aresponse(reader)).status == 200
                started = time.monotonic()
            await writer.drain()
    finally:
        opened()
    try:
        closed = await until_closed(reader, patience)
        return Stall(kind, closed, time.monotonic() - started)
    finally:
        writer.close()


async def _wave(
    target: Target,
    count: int,
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> list[Stall]:
    """``count`` stalled connections, the three kinds in turn, from ``SOURCES`` in turn (32
    handshakes at a time); ``meanwhile`` runs once all are in place."""
    gate = asyncio.Semaphore(32)
    in_place = asyncio.Event()
    opened = 0

    def one_more() -> None:
        nonlocal opened
        opened += 1
        if opened == count:
            in_place.set()

    tasks = [
        asyncio.ensure_future(
            _stall(target, KINDS[i % 3], SOURCES[i % len(SOURCES)], gate=gate, opened=one_more)
        )
        for i in range(count)
    ]
    if meanwhile is not None:
        await asyncio.wait_for(in_place.wait(), 120)
        await meanwhile()
    return await asyncio.gather(*tasks)


async def _get_seconds(target: Target, name: str, rounds: int) -> list[float]:
    """Authenticated secret GETs on one keep-alive connection: each one's round trip."""
    reader, writer = await aconnect(target)
    out = []
    try:
        for _ in range(rounds):
            started = time.monotonic()
            writer.write(request("GET", f"/secrets/{name}?api-version=7.5", token=target.token))
            reply = await aresponse(reader)
            out.append(time.monotonic() - started)
            assert reply.status == 200 and json.loads(reply.body)["value"] == "v"
    finally:
        writer.close()
    return out


async def _put_secret(target: Target, name: str) -> None:
    reader, writer = await aconnect(target)
    try:
        body = json.dumps({"value": "v"}).encode()
        path = f"/secrets/{name}?api-version=7.5"
        writer.write(request("PUT", path, token=target.token, body=body))
        assert (await aresponse(reader)).status == 200
    finally:
        writer.close()


def _check_closed_in_time(stalls: list[Stall], deadlines: Deadlines, slack: float) -> None:
    """Every stall closed by the server, none before half its deadline (so: by that deadline,
    not another), none later than the deadline and ``slack``."""
    for kind in KINDS:
        mine = [s for s in stalls if s.kind == kind]
        assert mine and all(s.closed for s in mine), f"{kind}: a connection was never closed"
        longest = max(s.seconds for s in mine)
        shortest = min(s.seconds for s in mine)
        limit = deadlines.of(kind)
        assert longest <= limit + slack, f"{kind}: closed after {longest:.2f} s (deadline {limit})"
        assert shortest >= limit / 2, f"{kind}: closed after {shortest:.2f} s (deadline {limit})"


@pytest.mark.parametrize(
    ("count", "deadlines", "slack"),
    [
        pytest.param(100, Deadlines(1.5, 2.0, 2.5), 3.0, id="100"),
        pytest.param(1000, Deadlines(8.0, 9.0, 10.0), 8.0, id="1000", marks=pytest.mark.slow),
    ],
)
async def test_stalled_connections_are_closed_and_forgotten(
    tmp_path: Path, count: int, deadlines: Deadlines, slack: float
) -> None:
    """Acceptance 4: ``count`` stalled connections (a mix of the three kinds) each closed by
    its own deadline; a secret GET answers within 100 ms while they are held; the server's
    RSS comes back within 20 % of its idle level.

    Idle is the level of a server that has served requests and once held as many
    connections: the first wave grows Python's small-object arenas, which it keeps while a
    few live objects sit in them (no Python object outlives a wave: see the caps tests), so
    the first wave is held to a looser bound and the second, measured one to 20 %."""
    server = start_dev_server(tmp_path / "data", *deadlines.flags())
    try:
        target = Target.of(server)
        pid = server.process.pid
        await _put_secret(target, "while-stalled")
        await _get_seconds(target, "while-stalled", 5)
        cold = rss_kib(pid)
        _check_closed_in_time(await _wave(target, count), deadlines, slack)
        await _until(lambda: rss_kib(pid) <= cold * 1.35, 30, f"RSS near {cold} KiB (cold)")
        idle = rss_kib(pid)

        gets: list[float] = []

        async def meanwhile() -> None:
            gets.extend(await _get_seconds(target, "while-stalled", 10))

        _check_closed_in_time(await _wave(target, count, meanwhile), deadlines, slack)
        assert statistics.median(gets) <= 0.1, f"GETs took {gets} with {count} stalled"
        assert max(gets) <= 1.0, gets
        await _until(lambda: rss_kib(pid) <= idle * 1.2, 30, f"RSS near {idle} KiB (idle)")
    finally:
        stop(server)
    text = "".join(server.output)
    assert "Traceback" not in text and " ERROR " not in text
    assert text.count(target.token) == 1  # the KVAULT_TOKEN= line


# -- in process: caps and metrics ------------------------------------------------------------

TOKEN = "caps-token"
SUPERUSER = Principal("kvault:root", superuser=True)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _closed(reason: str) -> float:
    return _sample("kvault_http_connections_closed_total", reason=reason)


def _open() -> float:
    return _sample("kvault_http_connections_open")


@pytest.fixture
async def guarded(
    tmp_path: Path, domain: Kvault
) -> AsyncIterator[Callable[[ConnectionLimits], Awaitable[Target]]]:
    """``await guarded(limits)``: the real app over TLS in this loop, with ``limits``."""
    await domain.vaults.create("dev", sku="standard", retention_days=7)
    stops: list[asyncio.Event] = []
    tasks: list[asyncio.Task[None]] = []

    async def start(limits: ConnectionLimits) -> Target:
        tls = ServerTLS(CertificateAuthority.load_or_create(tmp_path / "tls"), tmp_path / "tls")
        config = ApiConfig(domain, StaticTokens({TOKEN: SUPERUSER}), default_vault="dev")
        bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        stop_event = asyncio.Event()
        tasks.append(
            asyncio.create_task(
                serve(
                    build_app(config),
                    host="127.0.0.1",
                    port=0,
                    ssl_context=tls.context,
                    on_ready=bound.set_result,
                    stop=stop_event,
                    connections=limits,
                )
            )
        )
        stops.append(stop_event)
        port = await asyncio.wait_for(asyncio.shield(bound), 10)
        return Target(port, client_context(tls.ca.cert_file), TOKEN)

    yield start
    for stop_event in stops:
        stop_event.set()
    await asyncio.gather(*tasks)


async def _refused(target: Target, source: str) -> bool:
    """Whether a new connection from ``source`` is closed before its TLS handshake ends."""
    try:
        _, writer = await asyncio.wait_for(aconnect(target, source), 10)
    except (OSError, ssl.SSLError):
        return True
    writer.close()
    return False


async def _until(
    condition: Callable[[], Awaitable[bool] | bool], seconds: float, what: str
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.02)


async def test_connections_over_the_caps_are_refused_at_once(
    guarded: Callable[[ConnectionLimits], Awaitable[Target]],
) -> None:
    target = await guarded(ConnectionLimits(max_connections=6, max_connections_per_client=4))
    opened, by_client, by_total = _open(), _closed("client_limit"), _closed("total_limit")
    held = [await aconnect(target, "127.0.0.1") for _ in range(4)]
    await _until(lambda: _open() == opened + 4, 5, "4 open connections")

    started = time.monotonic()
    assert await _refused(target, "127.0.0.1")  # a fifth from one address
    assert time.monotonic() - started < 5
    assert _closed("client_limit") == by_client + 1

    held += [await aconnect(target, "127.0.0.2") for _ in range(2)]
    assert await _refused(target, "127.0.0.3")  # a seventh in all
    assert _closed("total_limit") == by_total + 1
    assert _open() == opened + 6

    # Those admitted work; one closing makes room for another.
    reader, writer = held[0]
    writer.write(request("GET", "/healthz"))
    assert (await aresponse(reader)).status == 200
    writer.close()
    await _until(lambda: _open() == opened + 5, 5, "the closed connection to be released")
    reader, writer = await aconnect(target, "127.0.0.3")
    writer.write(request("GET", "/healthz", close=True))
    assert (await aresponse(reader)).status == 200
    for _, w in [*held[1:], (reader, writer)]:
        w.close()
    await _until(lambda: _open() == opened, 5, "every connection to be released")


async def test_each_deadline_closes_and_is_counted(
    guarded: Callable[[ConnectionLimits], Awaitable[Target]],
) -> None:
    """A silent TCP connection (no TLS handshake), stalled headers, a stalled body and an
    idle keep-alive connection: each closed by its deadline and counted by its reason."""
    deadlines = Deadlines(0.5, 0.8, 1.0)
    target = await guarded(ConnectionLimits(header_timeout=0.5, body_timeout=0.8, idle_timeout=1.0))
    reasons = ("tls_handshake_timeout", "header_timeout", "body_timeout", "idle_timeout")
    before = {reason: _closed(reason) for reason in reasons}
    opened = _open()

    silent_reader, silent_writer = await asyncio.open_connection(target.host, target.port)
    started = time.monotonic()
    assert await until_closed(silent_reader, 10)
    assert 0.25 <= time.monotonic() - started <= 5
    silent_writer.close()

    stalls = await asyncio.gather(*(_stall(target, kind, "127.0.0.1") for kind in KINDS))
    _check_closed_in_time(list(stalls), deadlines, 3.0)
    await _until(lambda: _open() == opened, 5, "every connection to be released")
    assert {reason: _closed(reason) - before[reason] for reason in reasons} == {
        reason: 1.0 for reason in reasons
    }


async def test_keep_alive_survives_while_in_use(
    guarded: Callable[[ConnectionLimits], Awaitable[Target]],
) -> None:
    """The deadlines time the client, not kvault: a connection busy with requests for longer
    than all of them together stays open."""
    target = await guarded(ConnectionLimits(header_timeout=0.5, body_timeout=0.5, idle_timeout=0.4))
    reader, writer = await aconnect(target)
    started = time.monotonic()
    try:
        while time.monotonic() - started < 2.0:
            body = json.dumps({"value": "v"}).encode()
            writer.write(request("PUT", "/secrets/busy?api-version=7.5", token=TOKEN, body=body))
            assert (await aresponse(reader)).status == 200
            await asyncio.sleep(0.1)  # a pause shorter than the idle deadline
    finally:
        writer.close()


# -- the open-file limit -----------------------------------------------------------------------

_UNDER_LIMIT = """
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (400, 400))
sys.argv = ["kvault", *sys.argv[1:]]
runpy.run_module("kvault.cli.main", run_name="__main__")
"""


def _start_under_file_limit(data_dir: Path) -> DevServer:
    """``kvault server --dev`` in a process whose open-file limit is 400 (soft and hard)."""
    args = ["server", "--dev", "--port", "0", "--data-dir", str(data_dir)]
    proc = subprocess.Popen(
        [sys.executable, "-c", _UNDER_LIMIT, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("KVAULT_")},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    env: dict[str, str] = {}
    for line in proc.stdout:
        lines.append(line)
        key, _, value = line.strip().partition("=")
        if key.startswith("KVAULT_"):
            env[key] = value
        if "KVAULT_CA_FILE" in env:
            break
    threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()
    return DevServer(env, data_dir, proc, lines)


async def test_open_file_limit_caps_connections(tmp_path: Path) -> None:
    """Under ``ulimit -n 400`` (hard too) the default cap of 10,000 cannot hold: the server
    says so and serves 144 (256 files kept for itself); the rest are refused as over the cap,
    not left to fail in ``accept`` (which asyncio logs as an error)."""
    server = _start_under_file_limit(tmp_path / "data")
    lines = server.output
    try:
        assert any("at most 144 are served" in line for line in lines), lines
        target = Target.of(server)
        held = []
        refused = 0
        for _ in range(150):
            try:
                held.append(await asyncio.wait_for(aconnect(target), 10))
            except (OSError, ssl.SSLError):
                refused += 1
        assert (len(held), refused) == (144, 6)
        for _, writer in held:
            writer.close()
        await _until(lambda: _serves(target), 10, "the server to answer again")
    finally:
        stop(server)
    text = "".join(lines)
    assert " ERROR " not in text and "Traceback" not in text


def _serves(target: Target) -> bool:
    try:
        raw, _ = exchange(target, request("GET", "/healthz", close=True), timeout=5)
    except OSError:
        return False
    return bool(parse(raw)) and parse(raw)[0].status == 200
