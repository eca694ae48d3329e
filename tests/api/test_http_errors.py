"""Requests that are not HTTP kvault accepts, over a raw TLS socket to a real
``kvault server --dev``: Azure's error shape with a request id, nothing of the input echoed,
one log line without it and no traceback; a declared body over the limit refused before it
is read; a client that leaves mid-request is one INFO line (issue 12, findings 3, 5, 7)."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.rawhttp import (
    Reply,
    Target,
    connect,
    exchange,
    parse,
    read_until_closed,
    request,
    wait_for,
)
from tests.fixtures.devserver import ROOT, DevServer, start_dev_server, stop

MARK = "zq7marker"  # planted in what the server must not repeat


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A server of this module's own, so that its log holds only what these tests caused.
    Default deadlines: an answer that comes quickly did not wait for one."""
    srv = start_dev_server(tmp_path_factory.mktemp("http-errors") / "data")
    yield srv
    stop(srv)


@pytest.fixture
def target(server: DevServer) -> Target:
    return Target.of(server)


def _lines(server: DevServer, since: int) -> list[str]:
    return server.output[since:]


def _refused(server: DevServer, target: Target, data: bytes, status: int, code: str) -> Reply:
    """Send ``data``; expect one ``status`` answer in Azure's shape, then the connection
    closed, nothing of ``data`` in the answer, and exactly one log line about it."""
    since = len(server.output)
    raw, closed = exchange(target, data, timeout=10)
    assert closed, "the server kept the connection of a refused request open"
    (reply,) = parse(raw)
    assert reply.status == status, raw[:300]
    assert reply.headers["content-type"].startswith("application/json")
    error = json.loads(reply.body)["error"]
    assert error["code"] == code
    assert error["message"]
    rid = reply.headers["x-ms-request-id"]
    assert len(rid) == 36
    for secret in (MARK, target.token):
        assert secret.encode() not in raw
    wait_for(lambda: any(rid in line for line in _lines(server, since)), 10, "the log line")
    lines = _lines(server, since)
    (about,) = (line for line in lines if rid in line)
    assert " INFO " in about and str(status) in about
    text = "".join(lines)
    assert "Traceback" not in text and " ERROR " not in text
    assert MARK not in text and target.token not in text
    return reply


def test_oversized_authorization_header_leaks_nothing(server: DevServer, target: Target) -> None:
    """The issue's reproduction: the root token in a header over 8190 bytes."""
    header = f"Bearer {target.token} {MARK}" + "p" * 9000
    data = request("GET", "/secrets?api-version=7.5", headers=(("Authorization", header),))
    reply = _refused(server, target, data, 431, "RequestHeaderFieldsTooLarge")
    assert b"8190" in reply.body


def test_oversized_url_is_414(server: DevServer, target: Target) -> None:
    path = f"/secrets/{MARK}{'a' * 9000}?api-version=7.5"
    _refused(server, target, request("GET", path, token=target.token), 414, "RequestUriTooLong")


def test_too_many_headers_is_431(server: DevServer, target: Target) -> None:
    headers = tuple((f"X-{MARK}-{i}", "v") for i in range(200))
    data = request("GET", "/secrets", token=target.token, headers=headers)
    _refused(server, target, data, 431, "RequestHeaderFieldsTooLarge")


def test_oversized_head_is_431(server: DevServer, target: Target) -> None:
    """Every line under its limit, 20 of them over the head's 64 KiB together."""
    headers = tuple((f"X-{i}", MARK + "h" * 8000) for i in range(20))
    data = request("GET", "/secrets", token=target.token, headers=headers)
    _refused(server, target, data, 431, "RequestHeaderFieldsTooLarge")


@pytest.mark.parametrize(
    "data",
    [
        b"GET /secrets HTTP/1.1\r\nHost: localhost\r\n" + MARK.encode() + b" no colon\r\n\r\n",
        b"G\x01T /secrets/" + MARK.encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /secrets/" + MARK.encode() + b" HTTP/7.9\r\nHost: localhost\r\n\r\n",
        b"GET /" + MARK.encode() + b"\x00 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"POST /secrets/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz" + MARK.encode() + b"\r\n",
        b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
        + MARK.encode(),
        b"GET /" + MARK.encode() + b"\r\n\r\n",
        b"GET /" + MARK.encode() + b" HTTP/2.0\r\nHost: localhost\r\n\r\n",
        b"GET /" + MARK.encode() + b" HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\n\r\nGET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"CONNECT " + MARK.encode() + b":443 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ],
    ids=["header-without-colon", "control-in-method", "version", "nul-in-target", "chunk-size",
         "duplicate-content-length", "http-0.9", "http-2.0", "websocket-upgrade", "connect"],
)  # fmt: skip
def test_malformed_request_is_400(server: DevServer, target: Target, data: bytes) -> None:
    reply = _refused(server, target, data, 400, "BadRequest")
    assert b"Malformed request" in reply.body


def test_declared_body_over_the_limit_is_refused_unread(server: DevServer, target: Target) -> None:
    """The issue's ``Content-Length: 99999999999`` with 13 bytes: 413 at once (the body
    deadline is 30 s here), not a connection held open waiting for the rest."""
    data = request(
        "PUT",
        "/secrets/big?api-version=7.5",
        token=target.token,
        headers=(("Content-Type", "application/json"), ("Content-Length", "99999999999")),
    )
    started = time.monotonic()
    _refused(server, target, data + MARK.encode() + b"abcd", 413, "RequestTooLarge")
    assert time.monotonic() - started < 10


def test_client_leaving_mid_body_is_one_info_line(server: DevServer, target: Target) -> None:
    """A PUT whose client goes away after 10 of 1000 body bytes: one INFO line with the
    route, no ERROR, no traceback."""
    since = len(server.output)
    data = request(
        "PUT",
        f"/secrets/{MARK}?api-version=7.5",
        token=target.token,
        headers=(("Content-Type", "application/json"), ("Content-Length", "1000")),
    )
    with connect(target) as sock:
        sock.sendall(data.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")  # the request is routed
        sock.sendall(b'{"value": ')
        # Gone without a goodbye: a TCP reset, as when a client process dies.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def logged() -> bool:
        return any("PUT /secrets/{name}" in line for line in _lines(server, since))

    wait_for(logged, 10, "the line about the PUT")
    lines = [line for line in _lines(server, since) if "/secrets/" in line]
    assert len(lines) == 1 and " INFO " in lines[0], lines
    text = "".join(_lines(server, since))
    assert "Traceback" not in text and " ERROR " not in text and MARK not in text


def test_long_url_under_the_limit_has_no_traceback(server: DevServer, target: Target) -> None:
    """An over-long item name (but a request line under the limit) is the API's answer, before
    and after authentication, and logs nothing."""
    since = len(server.output)
    path = f"/secrets/{MARK}{'a' * 8000}?api-version=7.5"
    for token in ("", target.token):
        (reply,) = parse(exchange(target, request("GET", path, token=token, close=True))[0])
        assert reply.status in (400, 401, 404), reply
        assert "error" in json.loads(reply.body)
        assert "x-ms-request-id" in reply.headers
    assert parse(exchange(target, request("GET", "/healthz", close=True))[0])[0].status == 200
    text = "".join(_lines(server, since))
    assert "Traceback" not in text and " ERROR " not in text


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--header-timeout", "0"), ("--idle-timeout", "-1"), ("--max-connections-per-client", "0")],
)
def test_bad_listener_flags_are_usage_errors(tmp_path: Path, flag: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", "server", "--dev", "--port", "0", flag, value],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert flag in result.stderr


def test_chunking_broken_mid_body_is_answered(server: DevServer, target: Target) -> None:
    """A chunked body that breaks after its handler began to read it: aiohttp drops such a
    body unfinished (its handler would wait for ever, the connection with it); it is a 400
    for that request, then the connection closes."""
    since = len(server.output)
    head = request(
        "POST",
        "/keys/fuzz/create?api-version=7.5",
        token=target.token,
        headers=(("Transfer-Encoding", "chunked"), ("Expect", "100-continue")),
    )
    with connect(target) as sock:
        sock.sendall(head)
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")  # its handler runs
        sock.sendall(b"e\r\n" + MARK.encode()[:7])
        sock.sendall(MARK.encode()[7:] + b"zzzzz0\r\n\r\n")  # no CRLF after the chunk
        raw, closed = read_until_closed(sock, time.monotonic() + 10)
    assert closed
    (reply,) = parse(raw)
    assert reply.status == 400
    assert json.loads(reply.body)["error"]["code"] == "BadParameter"
    assert MARK.encode() not in raw
    text = "".join(_lines(server, since))
    assert "Traceback" not in text and " ERROR " not in text
