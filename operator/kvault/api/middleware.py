"""One middleware around every handler: request ids, the challenge, and error bodies."""

from __future__ import annotations

import logging
import os
import time
import traceback

from aiohttp import web
from aiohttp.typedefs import Handler

from kvault.api import auth, metrics
from kvault.api.errors import error_response, from_kvault, internal_error
from kvault.errors import KvaultError, StorageConflict, Unauthenticated

log = logging.getLogger("kvault.api")
REQUEST_ID = web.RequestKey("kvault.request_id", str)
_CODES = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestTooLarge"}


def request_id() -> str:
    """A random (version 4) UUID as ``str(uuid.uuid4())`` spells it, without building a
    ``UUID`` (a few microseconds of every request)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _route(request: web.Request) -> str:
    """The route pattern (``/secrets/{name}``): never the item names of the path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource else "?"


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    rid = request_id()
    request[REQUEST_ID] = rid
    try:
        if not auth.is_public(request):
            request[auth.PRINCIPAL] = await auth.principal(request)
        response = await handler(request)
    except Unauthenticated as exc:
        response = auth.challenge(request, exc, rid)
    except KvaultError as exc:
        response = from_kvault(exc)
        if isinstance(exc, StorageConflict):
            # A compare-and-set lost outside the domain's retries (a 409 for the client): the
            # operation that let it escape is the bug to fix; its message names the row.
            log.warning(
                "unretried %s on %s %s (request %s): %s",
                type(exc).__name__,
                request.method,
                _route(request),
                rid,
                exc.message,
            )
        elif response.status >= 500 and response.status != 503:
            # Its message is kvault's own (never secret material, never request data); the
            # client got a generic one that points here.
            log.error(
                "%s on %s %s (request %s): %s",
                type(exc).__name__,
                request.method,
                _route(request),
                rid,
                exc.message,
            )
    except web.HTTPException as exc:  # aiohttp's own: no route, wrong method, body too large
        code = _CODES.get(exc.status, "BadParameter" if exc.status < 500 else "InternalError")
        response = error_response(exc.status, code, exc.reason)
        if exc.status >= 500:  # every 5xx is in the log with its request id
            log.error(
                "%s %s on %s %s (request %s)",
                exc.status,
                type(exc).__name__,
                request.method,
                _route(request),
                rid,
            )
    except Exception as exc:
        transport = request.transport
        if isinstance(exc, ConnectionError) and (transport is None or transport.is_closing()):
            # The client went away (or its body timed out) mid-request: nothing reaches it.
            log.info(
                "connection closed during %s %s (request %s)", request.method, _route(request), rid
            )
            response = error_response(499, "ClientClosedRequest", "The connection closed.")
        else:
            # The exception's text may quote request data: log its type and where, never it.
            log.error(
                "unhandled %s on %s %s (request %s)\n%s",
                type(exc).__name__,
                request.method,
                _route(request),
                rid,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            response = internal_error()
    headers = response.headers
    headers["x-ms-request-id"] = rid
    client_id = request.headers.get("x-ms-client-request-id")
    if client_id:
        headers["x-ms-client-request-id"] = client_id[:256]
    metrics.observe(request, response.status, started)
    return response
