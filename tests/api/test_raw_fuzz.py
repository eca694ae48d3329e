"""Malformed HTTP over raw TLS sockets against a real ``kvault server --dev``: request
smuggling shapes (Content-Length against Transfer-Encoding, duplicate lengths, bad chunking,
chunk extensions, obs-fold, CR/LF and NUL injection), invalid methods, HTTP/0.9, the HTTP/2
preface, absurd versions, pipelines with lengths that lie, and random mutations of valid
requests (issue 12, "Fuzzing beyond the schema").

Every case carries a marker of its own. Whatever the server makes of a case: no 5xx, the
connection closed within the server's deadlines (no hang), and the marker nowhere in what
came back. After the run the server still answers, and its log has no ERROR and no
traceback. The seed is printed (``KVAULT_FUZZ_SEED=N`` replays a run)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import secrets
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.rawhttp import Reply, Target, aconnect, parse, request
from tests.fixtures.devserver import DevServer, start_dev_server, stop

#: The server's deadlines here: small, so that a stalled case costs a second at most.
DEADLINES = ("--header-timeout", "1", "--body-timeout", "1", "--idle-timeout", "0.3")
#: How long a case may take before it counts as a hang (deadlines and a loaded machine).
PATIENCE = 10.0
CONCURRENCY = 24


@dataclass(frozen=True)
class Case:
    family: str
    marker: str
    segments: tuple[bytes, ...]  # sent in this order, each on its own write

    @property
    def data(self) -> bytes:
        return b"".join(self.segments)


Builder = Callable[[random.Random, str, str], bytes]

_CRLF = b"\r\n"


def _req(
    method: str = "GET",
    target: str = "/healthz",
    *,
    version: str = "HTTP/1.1",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    sep: bytes = _CRLF,
) -> bytes:
    lines = [f"{method} {target} {version}".encode(), b"Host: localhost"]
    lines += [name + b": " + value for name, value in headers or []]
    return sep.join(lines) + sep + sep + body


def _auth(token: str) -> tuple[bytes, bytes]:
    return (b"Authorization", b"Bearer " + token.encode())


def _routes(rng: random.Random) -> str:
    return rng.choice(
        [
            "/secrets/fuzz?api-version=7.5",
            "/secrets?api-version=7.5&maxresults=3",
            "/secrets/fuzz/versions?api-version=7.5",
            "/keys/fuzz/create?api-version=7.5",
            "/deletedsecrets?api-version=7.5",
            "/healthz",
            "/openapi.json",
            "/kvault/oauth2/v2.0/token",
        ]
    )


def _who(rng: random.Random, token: str) -> list[tuple[bytes, bytes]]:
    """Authenticated about half the time, so that cases reach the handlers too."""
    return [_auth(token)] if rng.random() < 0.5 else []


def _bad_json(mark: str) -> bytes:
    """A body that names the marker but is never a valid document (nothing stored, so
    nothing of it can be returned)."""
    return b'{"value": "' + mark.encode() + b'", "tags": {'


# -- families ---------------------------------------------------------------------------------


def cl_te(rng: random.Random, mark: str, token: str) -> bytes:
    """Content-Length and Transfer-Encoding together, the TE spelled many ways."""
    te = rng.choice(
        [b"chunked", b"Chunked", b" chunked", b"chunked ", b"chunked, identity",
         b"identity, chunked", b"xchunked", b"chunked\x0b", b"\tchunked", b"chunk",
         b"gzip, chunked", b"chunked;q=1", b"identity"]
    )  # fmt: skip
    smuggled = _req("GET", f"/admin-{mark}", headers=[(b"X-S", mark.encode())])
    body = rng.choice(
        [
            b"0\r\n\r\n" + smuggled,
            b"5\r\n" + mark.encode()[:5] + b"\r\n0\r\n\r\n",
            smuggled,
            f"{len(smuggled):x}\r\n".encode() + smuggled + b"\r\n0\r\n\r\n",
        ]
    )
    length = rng.choice([len(body), 0, 4, len(body) + 10, len(body) // 2])
    headers = [(b"Content-Length", str(length).encode()), (b"Transfer-Encoding", te)]
    if rng.random() < 0.5:
        headers.reverse()
    if rng.random() < 0.3:
        headers.append((b"Transfer-Encoding", rng.choice([b"chunked", b"identity"])))
    headers += _who(rng, token)
    return _req(rng.choice(["POST", "PUT", "GET"]), _routes(rng), headers=headers, body=body)


def content_lengths(rng: random.Random, mark: str, token: str) -> bytes:
    """Duplicate, signed, hex, spaced, huge or empty Content-Length."""
    body = _bad_json(mark)
    n = len(body)
    values = rng.choice(
        [
            [str(n), str(n)],
            [str(n), str(n + 1)],
            [f"{n}, {n}"],
            [f"+{n}"],
            ["-1"],
            [f"0x{n:x}"],
            [f" {n}"],
            [f"{n} "],
            ["99999999999999999999999"],
            [""],
            [f"{n}\x00"],
            [str(n - 5)],
            [str(n + 50)],
            ["1e3"],
        ]
    )
    headers = [(b"Content-Length", v.encode()) for v in values] + _who(rng, token)
    return _req(rng.choice(["PUT", "POST"]), _routes(rng), headers=headers, body=body)


def chunking(rng: random.Random, mark: str, token: str) -> bytes:
    """Invalid chunk sizes, chunk extensions, bare LF, bad trailers, missing last chunk."""
    data = mark.encode()
    size = f"{len(data):x}".encode()
    body = rng.choice(
        [
            b"zz\r\n" + data + b"\r\n0\r\n\r\n",
            b"-1\r\n" + data + b"\r\n0\r\n\r\n",
            b"0x" + size + b"\r\n" + data + b"\r\n0\r\n\r\n",
            b"ffffffffffffffffffff\r\n" + data + b"\r\n0\r\n\r\n",
            size + b";ext=" + data + b"\r\n" + data + b"\r\n0\r\n\r\n",
            size + b';name="q\\"uoted"\r\n' + data + b"\r\n0\r\n\r\n",
            size + b";\r\n" + data + b"\r\n0\r\n\r\n",
            size + b" \r\n" + data + b"\r\n0\r\n\r\n",
            size + b"\n" + data + b"\n0\n\n",
            size + b"\r\n" + data + b"0\r\n\r\n",
            size + b"\r\n" + data + b"\r\n0\r\nX-Trailer: " + data + b"\r\n\r\n",
            size + b"\r\n" + data + b"\r\n0\r\nContent-Length: 5\r\n\r\n",
            size + b"\r\n" + data + b"\r\n",
            b"1\r\nab\r\n0\r\n\r\n",
            b"0\r\n" + data + b"\r\n\r\n",
        ]
    )
    headers = [(b"Transfer-Encoding", b"chunked"), *_who(rng, token)]
    return _req(rng.choice(["PUT", "POST"]), _routes(rng), headers=headers, body=body)


def folding_and_injection(rng: random.Random, mark: str, token: str) -> bytes:
    """obs-fold continuation lines, CR or LF alone, NUL, spaces before the colon."""
    m = mark.encode()
    bad = rng.choice(
        [
            b"X-Folded: a\r\n " + m,
            b"X-Folded: a\r\n\t" + m,
            b"Authorization: Bearer\r\n " + m,
            b"X-A: b\rX-Injected: " + m,
            b"X-A: b\nX-Injected: " + m,
            b"X-" + m + b"\x00: v",
            b"X-A: " + m + b"\x00tail",
            b"Content-Length : 5",
            b"Transfer-Encoding : chunked",
            b" X-Leading-Space: " + m,
            b"X A: " + m,
            b": " + m,
            b"X-A:" + m + b"\r",
            b"X-\x7f: " + m,
            b"X-A: " + m + bytes(range(1, 32)),
            b"X-Utf8: \xc3\xa9" + m + b"\xff\xfe",
        ]
    )
    head = _req("GET", _routes(rng), headers=_who(rng, token))
    # Put the bad line among the headers (before the blank line).
    return head[:-2] + bad + b"\r\n\r\n"


def request_lines(rng: random.Random, mark: str, token: str) -> bytes:
    """Invalid methods, targets and versions; HTTP/0.9; the HTTP/2 preface; h2c."""
    m = mark.encode()
    choice = rng.randrange(5)
    if choice == 0:
        method = rng.choice(
            [b"G\x01T", b"get", b"GE T", m, b"GET\x00", b"\x16\x03\x01", b"-", b"M" * 300,
             b"CONNECT", b"TRACE", b"PRI", b"\xff\xfe"]
        )  # fmt: skip
        return method + b" /" + m + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    if choice == 1:
        version = rng.choice(
            [b"HTTP/1.2", b"HTTP/9.9", b"HTTP/01.1", b"HTTP/1.1.1", b"HTTP/ 1.1", b"http/1.1",
             b"HTTP/1.10", b"HTTP/-1", b"HTTP/2.0", b"HTTP/1", b"HTTP", b"", b"FTP/1.0",
             b"HTTP/1.1" + m]
        )  # fmt: skip
        return b"GET /" + m + b" " + version + b"\r\nHost: localhost\r\n\r\n"
    if choice == 2:
        return rng.choice([b"GET /" + m + b"\r\n", b"GET /" + m + b"\r\n\r\n", b"\r\n\r\n" + m])
    if choice == 3:
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        frame = b"\x00\x00\x0c\x04\x00\x00\x00\x00\x00" + m[:12]
        return preface + frame * rng.randint(0, 3)
    target = rng.choice(
        [b"*", b"http://evil.example/" + m, b"localhost:443", b"//" + m, b"/%00" + m,
         b"/" + m + b"#frag", b"/..%2f..%2f" + m, b"/secrets/" + m + b"%", b"/?" + m + b"=%zz",
         b"/" + m + b" /x"]
    )  # fmt: skip
    extra = rng.choice(
        [
            b"",
            b"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n",
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n",
        ]
    )
    after = rng.choice([b"", _req("GET", "/healthz"), _req("GET", "/" + mark, version="HTTP/2.0")])
    return b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n" + extra + b"\r\n" + after


def pipelines(rng: random.Random, mark: str, token: str) -> bytes:
    """Two to four requests in one go, some with a Content-Length that lies."""
    out = b""
    for _ in range(rng.randint(2, 4)):
        body = _bad_json(mark) if rng.random() < 0.5 else b""
        declared = len(body) + rng.choice([0, 0, -3, 3, 20])
        headers = [(b"X-Pipe", mark.encode()), *_who(rng, token)]
        if body or rng.random() < 0.3:
            headers.append((b"Content-Length", str(max(declared, 0)).encode()))
        out += _req(rng.choice(["GET", "PUT", "POST"]), _routes(rng), headers=headers, body=body)
    return out


def sizes(rng: random.Random, mark: str, token: str) -> bytes:
    """Long lines, many headers, a big head, a declared body over the limit."""
    m = mark.encode()
    choice = rng.randrange(4)
    if choice == 0:
        return _req("GET", "/" + mark + "a" * rng.choice([8100, 8200, 20000]))
    if choice == 1:
        count = rng.choice([120, 129, 500])
        return _req("GET", _routes(rng), headers=[(b"X-%d" % i, m) for i in range(count)])
    if choice == 2:
        value = m + b"v" * rng.choice([8100, 8200, 30000])
        return _req("GET", _routes(rng), headers=[(b"X-Big", value), *_who(rng, token)])
    headers = [(b"Content-Length", b"%d" % rng.choice([262145, 10**9, 10**15])), _auth(token)]
    return _req("PUT", "/secrets/fuzz?api-version=7.5", headers=headers, body=_bad_json(mark))


def mutations(rng: random.Random, mark: str, token: str) -> bytes:
    """A valid request, then a few random edits: flipped bits, inserted CR, LF, NUL, space,
    tab or colon, a deleted or duplicated span, a truncation."""
    headers = [(b"X-Mark", mark.encode()), (b"Content-Type", b"application/json")]
    body = _bad_json(mark)
    headers.append((b"Content-Length", str(len(body)).encode()))
    method = rng.choice(["PUT", "POST", "GET"])
    headers += _who(rng, token)
    data = bytearray(_req(method, _routes(rng), headers=headers, body=body))
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(data))
        edit = rng.randrange(5)
        if edit == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif edit == 1:
            data[at:at] = rng.choice([b"\r", b"\n", b"\x00", b" ", b"\t", b":", b"\r\n"])
        elif edit == 2:
            del data[at : at + rng.randint(1, 8)]
        elif edit == 3:
            span = bytes(data[at : at + rng.randint(1, 40)])
            data[at:at] = span
        else:
            del data[at:]
            break
    return bytes(data) if data else b"\r\n"


FAMILIES: dict[str, Builder] = {
    "cl-te": cl_te,
    "content-length": content_lengths,
    "chunking": chunking,
    "fold-inject": folding_and_injection,
    "request-line": request_lines,
    "pipeline": pipelines,
    "sizes": sizes,
    "mutation": mutations,
}


def generate(seed: int, count: int, token: str) -> Iterator[Case]:
    """``count`` cases, the same for the same seed: the families in turn, each case's marker
    and bytes from the seeded generator, sent in one to three writes."""
    rng = random.Random(seed)
    names = sorted(FAMILIES)
    for i in range(count):
        family = names[i % len(names)]
        marker = f"zq{rng.getrandbits(48):012x}"
        data = FAMILIES[family](rng, marker, token)
        cuts = sorted(rng.sample(range(1, len(data)), min(rng.randint(0, 2), len(data) - 1)))
        bounds = [0, *cuts, len(data)]
        segments = tuple(data[a:b] for a, b in itertools.pairwise(bounds))
        yield Case(family, marker, segments)


# -- running ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    case: Case
    raw: bytes
    closed: bool
    replies: list[Reply]
    unparsable: str = ""


async def _send(target: Target, case: Case) -> Outcome:
    reader, writer = await aconnect(target)
    raw = bytearray()
    closed = False
    try:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            for segment in case.segments:
                writer.write(segment)
                await writer.drain()
                await asyncio.sleep(0)
        try:
            async with asyncio.timeout(PATIENCE):
                while chunk := await reader.read(65536):
                    raw += chunk
            closed = True
        except (ConnectionError, ssl.SSLError):
            closed = True
        except TimeoutError:
            closed = False
    finally:
        writer.close()
    try:
        replies, unparsable = parse(bytes(raw)), ""
    except AssertionError as exc:
        replies, unparsable = [], str(exc)
    return Outcome(case, bytes(raw), closed, replies, unparsable)


async def _run(target: Target, cases: list[Case]) -> list[Outcome]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(case: Case) -> Outcome:
        async with gate:
            return await _send(target, case)

    return await asyncio.gather(*(one(case) for case in cases))


def _problems(outcome: Outcome) -> list[str]:
    out = []
    if not outcome.closed:
        out.append(f"not closed within {PATIENCE} s")
    if outcome.unparsable:
        out.append(outcome.unparsable)
    out += [f"answered {r.status}" for r in outcome.replies if r.status >= 500]
    if outcome.case.marker.encode() in outcome.raw:
        out.append("its marker came back")
    return out


@pytest.fixture
def fuzz_server(tmp_path: Path) -> Iterator[DevServer]:
    server = start_dev_server(tmp_path / "data", *DEADLINES)
    yield server
    stop(server)


def _seed() -> int:
    return int(os.environ.get("KVAULT_FUZZ_SEED") or secrets.randbits(32))


async def _fuzz(server: DevServer, count: int) -> None:
    seed = _seed()
    print(f"raw HTTP fuzz: seed {seed} (KVAULT_FUZZ_SEED={seed} replays it), {count} cases")
    target = Target.of(server)
    cases = list(generate(seed, count, target.token))
    outcomes = await _run(target, cases)
    failures = [(o, p) for o in outcomes if (p := _problems(o))]
    report = "\n".join(
        f"  {o.case.family} {o.case.data[:200]!r}: {', '.join(p)}" for o, p in failures[:20]
    )
    assert not failures, f"seed {seed}: {len(failures)} of {count} cases failed:\n{report}"
    assert sum(bool(o.replies) for o in outcomes) > count // 4, f"seed {seed}: few answers"

    # Still serving, and nothing went wrong inside.
    reader, writer = await aconnect(target)
    writer.write(request("GET", "/secrets?api-version=7.5", token=target.token, close=True))
    raw = await reader.read()
    writer.close()
    assert parse(raw)[0].status == 200
    lines = list(server.output)
    bad = [i for i, line in enumerate(lines) if " ERROR " in line or "Traceback" in line]
    context = "".join("".join(lines[i : i + 12]) for i in bad[:3])
    assert not bad, f"seed {seed}: {len(bad)} ERROR lines or tracebacks in the log:\n{context}"


async def test_raw_http_fuzz(fuzz_server: DevServer) -> None:
    await _fuzz(fuzz_server, 500)


@pytest.mark.slow
async def test_raw_http_fuzz_long(fuzz_server: DevServer) -> None:
    await _fuzz(fuzz_server, 10_000)


def test_generator_is_deterministic() -> None:
    first = [c.segments for c in generate(1234, 200, "t")]
    assert first == [c.segments for c in generate(1234, 200, "t")]
    assert first != [c.segments for c in generate(1235, 200, "t")]
    assert {c.family for c in generate(1, 16, "t")} == set(FAMILIES)
