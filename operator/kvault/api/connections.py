"""The data plane's connections: who may open one, how long each part of a request may take,
and what a request that is not HTTP kvault accepts gets back.

aiohttp serves a connection with a :class:`aiohttp.web.RequestHandler` (one protocol object
per connection). It has no header or body read timeout (its keep-alive timeout only fires
once a whole request is parsed), no cap on connections, and answers an unparsable request with
a ``text/plain`` 400 that quotes the offending line (a token, say) after logging it with a
traceback. So a listener here is built of:

- :class:`Guard`: counts open connections in total and per client address; the TCP
  connection over either cap is closed as it is accepted, before any TLS work;
- ``_Gate``: the first protocol of an accepted socket: admits it, then upgrades it to TLS
  (what ``loop.start_tls`` does, at once: before a byte is read, on uvloop too; handshake
  bounded by the header timeout) and hands it to
- ``_Handler``: aiohttp's handler with one deadline per connection: the headers of a request
  within ``header_timeout`` of its first byte (or of the connection's start), its body within
  ``body_timeout`` of its headers, the next request within ``idle_timeout`` of the last
  answer; a declared ``Content-Length`` over the body limit is answered 413 before a byte of
  the body is read; a malformed request gets Azure's error shape (400, 414, 431) with a
  request id, quotes nothing of the input, and is logged as one line;
- ``GuardedSite``: an aiohttp site that listens through the gate.

Timeouts and refusals are counted in ``kvault_http_connections_closed_total`` by reason, and
open connections in ``kvault_http_connections_open`` (:mod:`kvault.api.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import gc
import logging
import resource
import ssl
import time
import traceback
import uuid
from asyncio import sslproto
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web
from aiohttp.http import HttpVersion10, HttpVersion11
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    ContentLengthError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    TransferEncodingError,
)
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import _ErrInfo

from kvault.api import metrics
from kvault.api.errors import error_response
from kvault.api.limits import (
    MAX_BODY,
    MAX_HEAD,
    MAX_HEADER_LINE,
    MAX_HEADERS,
    MAX_URL,
    ConnectionLimits,
)
from kvault.errors import BadParameter

log = logging.getLogger("kvault.api.connections")

#: Reasons of ``kvault_http_connections_closed_total``.
HEADER_TIMEOUT = "header_timeout"
BODY_TIMEOUT = "body_timeout"
IDLE_TIMEOUT = "idle_timeout"
TLS_HANDSHAKE_TIMEOUT = "tls_handshake_timeout"
TLS_HANDSHAKE_FAILED = "tls_handshake_failed"
TOTAL_LIMIT = "total_limit"
CLIENT_LIMIT = "client_limit"
BODY_TOO_LARGE = "body_too_large"
MALFORMED_REQUEST = "malformed_request"
REASONS = (
    HEADER_TIMEOUT,
    BODY_TIMEOUT,
    IDLE_TIMEOUT,
    TLS_HANDSHAKE_TIMEOUT,
    TLS_HANDSHAKE_FAILED,
    TOTAL_LIMIT,
    CLIENT_LIMIT,
    BODY_TOO_LARGE,
    MALFORMED_REQUEST,
)
#: At most one warning per this many seconds while connections are being refused.
REFUSAL_REPORT_SECONDS = 60.0
#: Memory is reclaimed once at least this many connections, and half of the most open at
#: once, have closed; this many seconds after (one reclaim for a wave of closes).
RECLAIM_AFTER = 64
RECLAIM_DELAY = 1.0

_VERSIONS = (HttpVersion10, HttpVersion11)

# What a connection is waiting for (the deadline that runs, if any).
_HEAD = "head"  # the rest of a request's headers (header_timeout)
_BODY = "body"  # the rest of a request's body (body_timeout)
_BUSY = "busy"  # kvault's answer: no deadline, the client waits for us
_IDLE = "idle"  # the next request (idle_timeout)


class RequestTooLarge(BadHttpMessage):
    """A declared ``Content-Length`` over the body limit (answered 413, the body unread)."""

    code = 413

    def __init__(self) -> None:
        super().__init__("declared body too large")


class UnsupportedVersion(BadHttpMessage):
    """A request line of another HTTP version than 1.0 and 1.1 (answered 400)."""

    def __init__(self) -> None:
        super().__init__("unsupported HTTP version")


class UpgradeRefused(BadHttpMessage):
    """A WebSocket upgrade or a CONNECT (answered 400: kvault serves neither)."""

    def __init__(self) -> None:
        super().__init__("upgrade refused")


class HeadTooLarge(BadHttpMessage):
    """A request head over ``MAX_HEAD`` bytes (answered 431)."""

    def __init__(self) -> None:
        super().__init__("request head too large")


class Guard:
    """Open connections of one listener, in total and per client address."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.total = 0
        self.by_client: dict[str, int] = {}
        self._refused = 0
        self._reported = -REFUSAL_REPORT_SECONDS
        self._peak = 0  # most connections open at once since memory was last reclaimed
        self._reclaiming: asyncio.TimerHandle | None = None

    def admit(self, client: str) -> str | None:
        """Count a new connection from ``client``, or say which cap refuses it."""
        if self.total >= self.limits.max_connections:
            return self._refuse(TOTAL_LIMIT)
        held = self.by_client.get(client, 0)
        if held >= self.limits.max_connections_per_client:
            return self._refuse(CLIENT_LIMIT)
        self.total += 1
        self._peak = max(self._peak, self.total)
        self.by_client[client] = held + 1
        metrics.CONNECTIONS_OPEN.inc()
        return None

    def release(self, client: str) -> None:
        self.total -= 1
        held = self.by_client.get(client, 0) - 1
        if held > 0:
            self.by_client[client] = held
        else:
            self.by_client.pop(client, None)
        metrics.CONNECTIONS_OPEN.dec()
        gone = self._peak - self.total
        if gone >= RECLAIM_AFTER and gone * 2 >= self._peak and self._reclaiming is None:
            self._reclaiming = asyncio.get_running_loop().call_later(RECLAIM_DELAY, self._reclaim)

    def _reclaim(self) -> None:
        """Most of a wave of connections (a burst of clients, stalled ones cut off) has
        closed: give the memory they held back to the system. Python keeps freed objects in
        its own pools and the C heap keeps freed pages, so without this a process that once
        held 1,000 connections stays that large."""
        self._reclaiming = None
        self._peak = self.total
        gc.collect()  # connections leave reference cycles (tasks, futures, exceptions)
        _trim_heap()

    def close(self) -> None:
        if self._reclaiming is not None:
            self._reclaiming.cancel()
            self._reclaiming = None

    def _refuse(self, reason: str) -> str:
        metrics.CONNECTIONS_CLOSED.labels(reason).inc()
        self._refused += 1
        now = time.monotonic()
        if now - self._reported >= REFUSAL_REPORT_SECONDS:
            log.warning(
                "refusing connections: %d open (at most %d), %d refused since the last report; "
                "latest over the %s",
                self.total,
                self.limits.max_connections,
                self._refused,
                "total cap" if reason == TOTAL_LIMIT else "per-client cap",
            )
            self._reported = now
            self._refused = 0
        return reason


#: Open files kept for everything but client connections (storage, audit log, Kubernetes
#: client, listening sockets, TLS files).
SPARE_DESCRIPTORS = 256


def fit_descriptors(connections: int) -> int:
    """Raise this process's soft limit on open files (``RLIMIT_NOFILE``) toward
    ``connections`` and the spare ones, within the hard limit (as the Go runtime does);
    return how many connections fit. Over the limit, ``accept`` would fail instead: asyncio
    logs that as an error and stops accepting for a second, real clients included."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft == resource.RLIM_INFINITY or soft >= want:
        return connections
    return max(soft - SPARE_DESCRIPTORS, 1)


def _libc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim  # glibc only
    except (AttributeError, OSError):
        return None
    return trim


_MALLOC_TRIM = _libc_trim()


def _trim_heap() -> None:
    """Return the C heap's free pages to the system (glibc ``malloc_trim``; elsewhere none)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _client_of(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "?"


class _Listener:
    """What the connections of one listening socket share."""

    def __init__(
        self,
        server: web.Server,
        limits: ConnectionLimits,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.server = server
        self.limits = limits
        self.ssl_context = ssl_context
        self.guard = Guard(limits)
        self._handshakes: set[asyncio.Task[None]] = set()

    def protocol(self) -> asyncio.Protocol:
        """The protocol factory given to ``loop.create_server``."""
        return _Gate(self)

    def accept(self, transport: asyncio.Transport) -> _Handler | None:
        """A new TCP connection: refused at once over a cap, else on its way to HTTP."""
        client = _client_of(transport)
        if self.guard.admit(client) is not None:
            transport.abort()
            return None
        handler = _Handler(self, client)
        if self.ssl_context is None:
            transport.set_protocol(handler)
            handler.connection_made(transport)
        else:
            # TLS takes the socket over before its first byte is read: uvloop starts reading
            # once the gate's connection_made returns, whatever it asked, and a ClientHello
            # that reached the gate would be lost (the handshake would hang).
            tls, waiter = _begin_tls(transport, handler, self.ssl_context, self.limits)
            upgrade = self._upgrade(transport, handler, tls, waiter)
            task = asyncio.get_running_loop().create_task(upgrade)
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)
        return handler

    async def _upgrade(
        self,
        transport: asyncio.Transport,
        handler: _Handler,
        tls: _TLS,
        waiter: asyncio.Future[None],
    ) -> None:
        try:
            app_transport = await _finish_tls(transport, tls, waiter)
        except ConnectionAbortedError:  # asyncio's handshake timeout
            metrics.CONNECTIONS_CLOSED.labels(TLS_HANDSHAKE_TIMEOUT).inc()
            handler.release()
            return
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                metrics.CONNECTIONS_CLOSED.labels(TLS_HANDSHAKE_FAILED).inc()
            transport.abort()
            handler.release()
            if isinstance(exc, Exception):
                return
            raise
        if app_transport is None or handler.lost:  # the client left as the handshake finished
            metrics.CONNECTIONS_CLOSED.labels(TLS_HANDSHAKE_FAILED).inc()
            handler.release()
            return
        handler.connection_made(app_transport)

    async def close(self) -> None:
        """Abandon the handshakes under way (the listening socket is closed by the site)."""
        self.guard.close()
        for task in list(self._handshakes):
            task.cancel()
        await asyncio.gather(*self._handshakes, return_exceptions=True)


class _TLS(sslproto.SSLProtocol):
    """asyncio's TLS protocol with a read buffer of 32 KiB instead of 256 KiB: it is allocated
    (and touched) for every connection as it is accepted, which made 1,000 idle connections
    cost 250 MB; two TLS records at a time is plenty for bodies of at most 256 KiB."""

    max_size = 32 * 1024


def _begin_tls(
    transport: asyncio.Transport,
    protocol: asyncio.Protocol,
    context: ssl.SSLContext,
    limits: ConnectionLimits,
) -> tuple[_TLS, asyncio.Future[None]]:
    """What ``loop.start_tls`` does (server side, with :class:`_TLS`; handshake and shutdown
    bounded by the header timeout), at once: the socket's protocol is TLS when this returns,
    and ``waiter`` is done when the handshake is."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    seconds = limits.header_timeout
    tls = _TLS(
        loop,
        protocol,
        context,
        waiter,
        server_side=True,
        call_connection_made=False,
        ssl_handshake_timeout=seconds,  # type: ignore[arg-type]  # typeshed says int
        ssl_shutdown_timeout=seconds,
    )
    transport.set_protocol(tls)
    tls.connection_made(transport)
    return tls, waiter


async def _finish_tls(
    transport: asyncio.Transport, tls: _TLS, waiter: asyncio.Future[None]
) -> asyncio.Transport | None:
    """The TLS transport once the handshake :func:`_begin_tls` began is done; ``None`` when
    the client left as it ended."""
    try:
        await waiter
    except BaseException:
        transport.close()
        raise
    app_transport: asyncio.Transport | None = tls._app_transport
    return app_transport


class _Gate(asyncio.Protocol):
    """The protocol of a just-accepted socket, until TLS (or HTTP) takes it over."""

    __slots__ = ("_handler", "_listener")

    def __init__(self, listener: _Listener) -> None:
        self._listener = listener
        self._handler: _Handler | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is one without deriving from asyncio.Transport).
        self._handler = self._listener.accept(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:  # never: connection_made hands the socket on
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._handler is not None:  # lost before TLS or HTTP took the socket over
            self._handler.lost = True
            self._handler.release()


class _Handler(web.RequestHandler):
    """aiohttp's connection handler with the deadlines and refusals of this module."""

    __slots__ = (
        "_accepted",
        "_answered",
        "_attached",
        "_body",
        "_body_of",
        "_client",
        "_deadline",
        "_early",
        "_guard",
        "_head_bytes",
        "_limits",
        "_phase",
        "_refusing",
        "_released",
        "lost",
    )

    def __init__(self, listener: _Listener, client: str) -> None:
        limits = listener.limits
        super().__init__(
            listener.server,
            loop=asyncio.get_running_loop(),
            # aiohttp's own keep-alive close is a backstop only: the deadlines below end
            # every wait sooner.
            keepalive_timeout=limits.header_timeout + limits.body_timeout + limits.idle_timeout,
            access_log=None,  # type: ignore[arg-type]  # None: no access log (aiohttp's way)
            max_line_size=MAX_URL,
            max_field_size=MAX_HEADER_LINE,
            max_headers=MAX_HEADERS,
            lingering_time=min(10.0, limits.body_timeout),
        )
        self._limits = limits
        self._guard = listener.guard
        self._client = client
        self._released = False
        self._attached = False
        self.lost = False
        self._early: list[bytes] = []
        self._phase = _HEAD
        self._deadline: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None
        self._body_of = 0
        self._head_bytes = 0
        self._answered = 0
        self._refusing = False
        self._accepted = self._loop.time()

    # -- accounting -------------------------------------------------------------------------

    def release(self) -> None:
        """Give the connection's place back to the guard (once)."""
        if not self._released:
            self._released = True
            self._guard.release(self._client)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._attached = True
        super().connection_made(transport)
        # The first request's headers are due a header timeout after the TCP connection's
        # start: its TLS handshake is part of that time.
        due = self._accepted + self._limits.header_timeout - self._loop.time()
        self._wait(_HEAD, max(due, 0.0))
        early, self._early = self._early, []
        for data in early:
            self.data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        self._stop_deadline()
        self.release()
        if self._attached:
            super().connection_lost(exc)

    # -- deadlines --------------------------------------------------------------------------

    def _wait(self, phase: str, seconds: float | None) -> None:
        self._stop_deadline()
        self._phase = phase
        if seconds is not None:
            reason = {_HEAD: HEADER_TIMEOUT, _BODY: BODY_TIMEOUT, _IDLE: IDLE_TIMEOUT}[phase]
            self._deadline = self._loop.call_later(seconds, self._expire, reason)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, reason: str) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        metrics.CONNECTIONS_CLOSED.labels(reason).inc()
        log.debug("closing a connection from %s: %s", self._client, reason)
        if self._body is not None:
            self._end_body(ConnectionResetError("the request body timed out"))
        self.force_close()

    def _end_body(self, exc: BaseException) -> None:
        """End the body under way, which will not come whole: its handler (waiting, or yet to
        read it) gets ``exc``; if its request was answered, aiohttp's drain just ends."""
        body = self._body
        assert body is not None
        self._body = None
        if self._answered < self._body_of:
            body.set_exception(exc)
        body.feed_eof()

    @property
    def _outstanding(self) -> int:
        """Requests parsed (or refused) whose answer has not begun."""
        return self._request_count - self._answered

    def _settle(self) -> None:
        """Nothing left to receive: wait for our answer, or idle when it has been sent."""
        if self._outstanding > 0:
            self._wait(_BUSY, None)
        else:
            self._wait(_IDLE, self._limits.idle_timeout)

    # -- input ------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not self._attached:  # decrypted before the handshake's end reached us
            if not self.lost:
                self._early.append(data)
            return
        if self._refusing:
            return  # a refused request's body, or what follows a malformed one
        parsed_before = self._request_count
        super().data_received(data)
        if self.transport is None:
            return
        parsed = self._request_count - parsed_before
        if parsed:
            self._on_requests(parsed)
        elif self._phase == _BODY:
            if self._body is not None and self._body.is_eof():
                self._body = None
                self._settle()
        elif data:
            if self._phase != _HEAD:
                self._head_bytes = 0
                self._wait(_HEAD, self._limits.header_timeout)
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:
                self._refuse(HeadTooLarge(), 431)

    def _on_requests(self, parsed: int) -> None:
        """``parsed`` requests' heads just completed: the last ``parsed`` of the queue."""
        self._head_bytes = 0
        queue = self._messages
        first = len(queue) - parsed
        for i in range(max(first, 0), len(queue)):
            message, payload = queue[i]
            if isinstance(message, _ErrInfo):
                self._refusing = True  # the parser is lost: answer, then close
                body = self._body
                if body is not None and not body.is_eof():
                    # The error is in the body under way (its chunking, say): aiohttp
                    # drops that body unfinished, and its handler would wait for ever. It is
                    # that request's answer instead (400, unless it had one), then the
                    # connection ends.
                    self._end_body(BadParameter("the request body's framing is not valid"))
                    self._trim(i)
                    self._close = True
                else:
                    self._trim(i + 1)
                self._wait(_BUSY, None)
                return
            refusal: BadHttpMessage | None = None
            if message.version not in _VERSIONS:
                refusal = UnsupportedVersion()  # llhttp takes HTTP/0.9 and HTTP/2.0 lines
            elif message.upgrade and (
                message.method == "CONNECT"
                or message.headers.get("Upgrade", "").strip().lower() == "websocket"
            ):
                # aiohttp would hold what follows unparsed (so unchecked) until the answer.
                refusal = UpgradeRefused()
            elif _number(message.headers.get("Content-Length", "")) > MAX_BODY:
                refusal = RequestTooLarge()
            if refusal is not None:
                queue[i] = (_ErrInfo(status=refusal.code, exc=refusal, message=""), EMPTY_PAYLOAD)
                self._refusing = True
                self._trim(i + 1)
                self._wait(_BUSY, None)
                return
        _, payload = queue[-1]
        if payload.is_eof():
            self._body = None
            self._settle()
        else:
            self._body = payload
            self._body_of = self._request_count  # the ordinal of the request it belongs to
            self._wait(_BODY, self._limits.body_timeout)

    def _trim(self, keep: int) -> None:
        """Drop what was parsed after a refused request (the client gets no answer to it)."""
        queue = self._messages
        while len(queue) > keep:
            queue.pop()
            self._request_count -= 1

    def _refuse(self, exc: BadHttpMessage, status: int) -> None:
        """Answer ``exc`` as the next request (in order, after the ones queued) and stop
        reading."""
        self._refusing = True
        self._request_count += 1
        self._messages.append((_ErrInfo(status=status, exc=exc, message=""), EMPTY_PAYLOAD))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._wait(_BUSY, None)

    # -- output -----------------------------------------------------------------------------

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        self._answered += 1  # from its first byte out: its body's handler is done with it
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            if self._phase == _BUSY and not self._refusing:
                self._settle()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's answer to a request it could not parse (or to a handler that failed
        outside kvault's middleware): Azure's error shape, nothing of the input quoted, one
        log line without it."""
        rid = str(uuid.uuid4())
        if isinstance(exc, ConnectionError):  # the client left; nothing will reach it
            log.info("connection from %s closed mid-request (request %s)", self._client, rid)
            response = error_response(499, "ClientClosedRequest", "The connection closed.")
            response.force_close()
            return response
        status, code, text = _refusal(status, exc)
        if status >= 500:
            log.error(
                "%s in the HTTP server on a connection from %s (request %s)\n%s",
                type(exc).__name__,
                self._client,
                rid,
                "".join(traceback.format_tb(exc.__traceback__)) if exc else "",
            )
        else:
            metrics.CONNECTIONS_CLOSED.labels(
                BODY_TOO_LARGE if status == 413 else MALFORMED_REQUEST
            ).inc()
            log.info(
                "refused a request from %s: %d %s (request %s)", self._client, status, code, rid
            )
        if request.writer.output_size > 0:
            raise ConnectionError("the response had begun; the connection is closed instead")
        response = error_response(status, code, text, headers={"x-ms-request-id": rid})
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's last-resort log: the exception's type and frames, never its message (it
        may quote the request)."""
        exc = kw.get("exc_info")
        if isinstance(exc, BaseException):
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("unhandled %s in the HTTP server\n%s", type(exc).__name__, frames)
        else:
            log.error("unexpected condition in the HTTP server")


def _number(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return 0  # the parser refuses a malformed Content-Length itself


#: What a malformed request gets, by the parser's exception class (most specific first).
_MALFORMED: tuple[tuple[type[BaseException], str], ...] = (
    (UnsupportedVersion, "only HTTP/1.0 and HTTP/1.1 are served here"),
    (UpgradeRefused, "WebSocket upgrades and CONNECT are not served here"),
    (BadHttpMethod, "the request line's method is not valid"),
    (BadStatusLine, "the request line is not valid HTTP/1.1"),
    (InvalidURLError, "the request target is not a valid URL"),
    (InvalidHeader, "a header is not valid"),
    (TransferEncodingError, "the chunked body or Transfer-Encoding is not valid"),
    (ContentLengthError, "the body does not match its Content-Length"),
)


def _refusal(status: int, exc: BaseException | None) -> tuple[int, str, str]:
    """Status, Azure error code and a message that names what was wrong, never quoting it."""
    if isinstance(exc, RequestTooLarge):
        return 413, "RequestTooLarge", f"The request body is larger than {MAX_BODY} bytes."
    if isinstance(exc, HeadTooLarge):
        return (
            431,
            "RequestHeaderFieldsTooLarge",
            f"The request's headers are larger than {MAX_HEAD} bytes.",
        )
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        if limit == MAX_URL:
            return 414, "RequestUriTooLong", f"The request URL is longer than {MAX_URL} bytes."
        return (
            431,
            "RequestHeaderFieldsTooLarge",
            f"A request header is longer than {MAX_HEADER_LINE} bytes.",
        )
    if isinstance(exc, BadHttpMessage) and exc.message.startswith("Too many headers"):
        return (
            431,
            "RequestHeaderFieldsTooLarge",
            f"The request has more than {MAX_HEADERS} headers.",
        )
    if status >= 500 or not isinstance(exc, BadHttpMessage):
        return (
            500,
            "InternalError",
            "The service could not complete the request; the operator's log has the details.",
        )
    for kind, what in _MALFORMED:
        if isinstance(exc, kind):
            return 400, "BadRequest", f"Malformed request: {what}."
    return 400, "BadRequest", "Malformed request: not valid HTTP/1.1."


class GuardedSite(web.BaseSite):
    """A TCP (TLS) listener whose connections pass :class:`Guard` and the deadlines above."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        limits: ConnectionLimits,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._limits = limits
        self._listener: _Listener | None = None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        limits = self._limits
        fits = fit_descriptors(limits.max_connections)
        if fits < limits.max_connections:
            log.warning(
                "the open-file limit (RLIMIT_NOFILE) leaves room for %d connections: at most "
                "%d are served (--max-connections %d)",
                fits,
                fits,
                limits.max_connections,
            )
            limits = dataclasses.replace(limits, max_connections=fits)
        self._listener = _Listener(server, limits, self._ssl_context)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._listener.protocol, self._host, self._port, backlog=self._backlog
        )

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            if self._listener is not None:
                await self._listener.close()
        await super().stop()
