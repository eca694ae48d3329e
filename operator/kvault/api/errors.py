"""Azure Key Vault error bodies, mapped from kvault's typed errors by class, never by text."""

from __future__ import annotations

import json

from aiohttp import web

from kvault.errors import (
    BadParameter,
    Conflict,
    Forbidden,
    IntegrityError,
    KvaultError,
    NotFound,
    StorageConflict,
    Throttled,
    Unauthenticated,
    Unavailable,
)

_GENERIC = "The service could not complete the request; the operator's log has the details."
_CONCURRENT = "The object is being changed concurrently; retry the request."


def error_body(code: str, message: str, inner: str | None = None) -> bytes:
    error: dict[str, object] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return json.dumps({"error": error}).encode()


def error_response(
    status: int,
    code: str,
    message: str,
    inner: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        status=status,
        body=error_body(code, message, inner),
        content_type="application/json",
        headers=headers,
    )


def from_kvault(exc: KvaultError) -> web.Response:
    """The HTTP answer to a domain error. Server-side faults get a generic message: their text
    may describe storage or keys, which is not the caller's business."""
    if isinstance(exc, BadParameter):
        return error_response(400, "BadParameter", exc.message)
    if isinstance(exc, Unauthenticated):
        return error_response(401, "Unauthorized", exc.message)
    if isinstance(exc, Forbidden):
        return error_response(403, "Forbidden", exc.message, exc.inner_code)
    if isinstance(exc, NotFound):
        return error_response(404, exc.code, exc.message)
    if isinstance(exc, Conflict):
        return error_response(409, "Conflict", exc.message, exc.inner_code)
    if isinstance(exc, StorageConflict):
        # A lost compare-and-set outside the domain's retries: nothing was written and a retry
        # may succeed. Its message names storage rows: the operator's log has it, not the client.
        return error_response(409, "Conflict", _CONCURRENT)
    if isinstance(exc, Throttled):
        return error_response(
            429, "Throttled", exc.message, headers={"Retry-After": str(exc.retry_after)}
        )
    if isinstance(exc, Unavailable):
        return error_response(503, "ServiceUnavailable", exc.message, headers={"Retry-After": "5"})
    if isinstance(exc, IntegrityError):
        return error_response(500, "IntegrityError", "Stored data failed an integrity check.")
    return error_response(500, "InternalError", _GENERIC)


def internal_error() -> web.Response:
    return error_response(500, "InternalError", _GENERIC)
