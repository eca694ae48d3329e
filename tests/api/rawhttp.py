"""HTTP/1.1 over a raw TLS socket, for tests that send what no client library would: bytes as
they are, answers as they come, and the moment the server closes."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.devserver import DevServer


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-cased names; the last of repeated ones
    body: bytes


@dataclass(frozen=True)
class Target:
    """Where a server listens and how to trust it."""

    port: int
    ctx: ssl.SSLContext
    token: str = ""
    host: str = "127.0.0.1"

    @classmethod
    def of(cls, server: DevServer) -> Target:
        port = int(server.endpoint.rsplit(":", 1)[1])
        return cls(port, client_context(server.env["KVAULT_CA_FILE"]), server.env["KVAULT_TOKEN"])


def client_context(ca_file: str | Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def connect(target: Target, *, timeout: float = 10.0, source: str | None = None) -> ssl.SSLSocket:
    """A TLS connection (handshake done) to ``target``, from ``source`` (a 127/8 address)."""
    raw = socket.create_connection(
        (target.host, target.port),
        timeout=timeout,
        source_address=(source, 0) if source else None,
    )
    try:
        return target.ctx.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def read_until_closed(sock: ssl.SSLSocket, deadline: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (``True``) or ``deadline`` passes."""
    out = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(out), False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return bytes(out), False
        except (ConnectionError, ssl.SSLError):
            return bytes(out), True
        if not chunk:
            return bytes(out), True
        out += chunk


def exchange(target: Target, data: bytes, *, timeout: float = 10.0) -> tuple[bytes, bool]:
    """Send ``data`` on a new connection; what came back until the server closed it (or
    ``timeout``), and whether it did close."""
    deadline = time.monotonic() + timeout
    with connect(target, timeout=timeout) as sock:
        # The server may close before it took all of it: read what it said anyway.
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            sock.sendall(data)
        return read_until_closed(sock, deadline)


_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) [^\r\n]*\r\n")


def parse(raw: bytes) -> list[Reply]:
    """The responses in ``raw``, in order (bodies by Content-Length; a truncated one ends the
    list)."""
    out = []
    rest = raw
    while rest:
        head, sep, after = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        status, headers = parse_head(head)
        length = int(headers.get("content-length", "0"))
        if len(after) < length:
            break
        out.append(Reply(status, headers, after[:length]))
        rest = after[length:]
    return out


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and headers (lower-cased names) of a response head."""
    match = _STATUS.match(head + b"\r\n")
    if match is None:
        raise AssertionError(f"not an HTTP response: {head[:80]!r}")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(match.group(1)), headers


def request(
    method: str,
    path: str,
    *,
    token: str = "",
    body: bytes | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    close: bool = False,
) -> bytes:
    """One well-formed request's bytes."""
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if close:
        lines.append("Connection: close")
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


async def aconnect(
    target: Target, source: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS connection (handshake done) from ``source`` (a 127/8 address)."""
    return await asyncio.open_connection(
        target.host,
        target.port,
        ssl=target.ctx,
        server_hostname="localhost",
        local_addr=(source, 0) if source else None,
    )


async def aresponse(reader: asyncio.StreamReader) -> Reply:
    """Read one response (its body by Content-Length)."""
    status, headers = parse_head((await reader.readuntil(b"\r\n\r\n"))[:-4])
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Reply(status, headers, body)


async def until_closed(reader: asyncio.StreamReader, patience: float) -> bool:
    """Read and drop what the server sends until it closes (``True``) or ``patience``
    seconds pass."""
    try:
        async with asyncio.timeout(patience):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except (ConnectionError, ssl.SSLError):
        pass
    return True


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid`` in KiB (``VmRSS`` of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")
