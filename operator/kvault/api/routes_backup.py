"""kvault's own data-plane routes for whole-vault backup and restore (not part of the Azure Key
Vault API, so not in ``/openapi.json``; docs/backup.md describes them).

``POST /kvault/backup`` on the vault's host: the body is empty or a JSON object with an
optional ``passphrase``; the answer is the backup file (``application/vnd.kvault.vault-backup``),
streamed chunk by chunk.

``POST /kvault/restore`` on the target vault's host: the body is one line of JSON options
(``{}`` or ``{"passphrase": ...}``), a newline, then the backup file. A file may be larger
than the data plane's 256 KiB body limit, which applies to declared lengths: the client
sends it with chunked transfer encoding, and the domain reads it as it arrives (bounded by
:data:`kvault.vault.wholebackup.MAX_FILE`).

As on every route, the caller is authorised (and a denial audited) before a byte of the body
is read; errors have Azure's shape. The passphrase travels in the body only (never the URL or
a header) and is never logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from kvault.api import bodies
from kvault.api.auth import PRINCIPAL, safe_host
from kvault.api.config import CONFIG
from kvault.api.hosts import vault_for_host
from kvault.api.middleware import REQUEST_ID
from kvault.api.request import ok
from kvault.api.routing import Route
from kvault.api.throttle import THROTTLE
from kvault.errors import BadParameter, NotFound
from kvault.vault.backupfile import MEDIA_TYPE
from kvault.vault.core import Caller
from kvault.vault.model import VAULT_NOT_FOUND
from kvault.vault.names import VAULT_NAME
from kvault.vault.wholebackup import BACKUP, MAX_FILE, READ_SIZE, RESTORE, WholeVault

log = logging.getLogger("kvault.api")
#: The options line that opens a restore request.
MAX_OPTIONS = 64 * 1024


async def _begin(request: web.Request, operation: str) -> tuple[WholeVault, str, Caller]:
    """The vault the Host names, after the rate limits admitted the request and the domain
    checked ``operation`` may run (no body read yet)."""
    config = request.app[CONFIG]
    vault = vault_for_host(safe_host(request), config.default_vault)
    if vault is None or not VAULT_NAME.fullmatch(vault):
        raise NotFound("no vault is addressed by this request's host", VAULT_NOT_FOUND)
    principal = request[PRINCIPAL]
    request.app[THROTTLE].admit(vault, principal.name)
    caller = Caller.of(principal, request[REQUEST_ID])
    whole = WholeVault(config.kv)
    await whole.check(vault, operation, caller=caller)
    return whole, vault, caller


def _passphrase(doc: dict[str, Any]) -> str | None:
    value = bodies.optional_string(doc, "passphrase")
    if value is not None and not value:
        raise BadParameter("passphrase must not be empty")
    return value


async def backup_vault(request: web.Request) -> web.StreamResponse:
    whole, vault, caller = await _begin(request, BACKUP)
    doc = await bodies.json_object(request) if await request.read() else {}
    sealed = await whole.backup(vault, passphrase=_passphrase(doc), caller=caller)
    response = web.StreamResponse(
        headers={"Cache-Control": "no-store", "x-ms-request-id": request[REQUEST_ID]}
    )
    response.content_type = MEDIA_TYPE
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        await response.write(sealed.preamble)
        for frame in sealed.frames():
            await response.write(frame)
        await response.write_eof()
    except ConnectionError:
        # The client went away: what it has is a truncated file, which a restore refuses.
        log.info("connection closed during a vault backup (request %s)", request[REQUEST_ID])
    except Exception as exc:
        # The status is sent: end the stream unfinished (a restore refuses it) and say why
        # here (kvault's own message type only: it never holds a value).
        log.error(
            "%s while streaming a vault backup (request %s)",
            type(exc).__name__,
            request[REQUEST_ID],
        )
        if request.transport is not None:
            request.transport.close()
    return response


async def _options(request: web.Request) -> dict[str, Any]:
    """The JSON line before the file."""
    try:
        line = await request.content.readline()
    except ValueError:  # longer than the stream's line limit
        line = b""
    if not line.endswith(b"\n") or len(line) > MAX_OPTIONS:
        raise BadParameter(
            'a restore request\'s body is one line of JSON options ({} or {"passphrase": ...}), '
            "a newline, then the backup file"
        )
    try:
        doc = json.loads(line.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BadParameter("the restore options line is not valid JSON (UTF-8)") from None
    if not isinstance(doc, dict):
        raise BadParameter("the restore options line must be a JSON object")
    return doc


async def _drain(request: web.Request) -> None:
    """Read what is left of the body, so the client (which sends the whole file before it
    reads an answer) gets the error instead of a reset connection."""
    left = MAX_FILE
    try:
        while left > 0:
            data = await request.content.read(READ_SIZE)
            if not data:
                return
            left -= len(data)
    except Exception:  # the body broke off: the answer is decided already
        return


async def restore_vault(request: web.Request) -> web.Response:
    try:
        whole, vault, caller = await _begin(request, RESTORE)
        doc = await _options(request)
        restored = await whole.restore(
            vault, request.content.read, passphrase=_passphrase(doc), caller=caller
        )
    except Exception:
        await _drain(request)
        raise
    return ok(
        {
            "vault": restored.vault,
            "records": restored.records,
            "counts": restored.counts,
            "digest": restored.digest,
            "created": restored.created,
            "settingsRestored": restored.settings_restored,
        }
    )


#: Mounted by :mod:`kvault.api.app` beside the Key Vault tables (outside ``/openapi.json``).
ROUTES: tuple[Route, ...] = (
    Route("POST", "/kvault/backup", backup_vault),
    Route("POST", "/kvault/restore", restore_vault),
)
