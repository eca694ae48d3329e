"""The secrets operations of the Key Vault REST API, each: resolve vault, authorise, run.

Authorisation runs before the body is read, so a caller without the right learns nothing
about what their request would have done; every denial is audited like an operation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kvault.api import bodies, paging, shapes
from kvault.api.auth import PRINCIPAL, safe_host
from kvault.api.config import CONFIG
from kvault.api.errors import VaultNotFound
from kvault.api.hosts import vault_for_host
from kvault.api.middleware import REQUEST_ID
from kvault.errors import BadParameter, IntegrityError, NotFound
from kvault.vault.core import Caller
from kvault.vault.service import Kvault

_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Call:
    kv: Kvault
    vault: str
    base: str  # https://host[:port], the prefix of every id
    caller: Caller


async def begin(request: web.Request, operation: str, name: str | None = None) -> Call:
    """The vault the Host names, after checking the caller may run ``operation`` on it."""
    config = request.app[CONFIG]
    host = safe_host(request)
    vault = vault_for_host(host, config.default_vault)
    if vault is None:
        raise VaultNotFound(f"no vault is addressed by host {host!r}")
    try:
        info = await config.kv.vault(vault)
    except NotFound:
        raise VaultNotFound(f"vault {vault!r} was not found") from None
    caller = Caller.of(request[PRINCIPAL], request[REQUEST_ID])
    config.kv.authorize(caller, info, operation, name)
    return Call(config.kv, vault, "https://" + host, caller)


def ok(doc: Any) -> web.Response:
    return web.Response(body=json.dumps(doc).encode(), content_type=_JSON)


def _page(request: web.Request, call: Call, items: list[Any], token: str | None) -> web.Response:
    size = paging.max_results(request.query)
    link = paging.next_link(call.base, request.path, request.query, token, size)
    return ok({"value": items, "nextLink": link})


# -- /secrets ---------------------------------------------------------------------------------


async def set_secret(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "SecretSet", name)
    doc = await bodies.json_object(request)
    value = bodies.string(doc, "value", required=True)
    content_type = bodies.string(doc, "contentType")
    attrs = bodies.attributes(doc)
    secret = await call.kv.secrets.set(
        call.vault,
        name,
        value,
        content_type=None if content_type is bodies.MISSING else content_type,
        tags=bodies.tags(doc),
        enabled=attrs.get("enabled", True),
        not_before=attrs.get("not_before"),
        expires=attrs.get("expires"),
        caller=call.caller,
    )
    return ok(shapes.bundle(call.base, secret))


async def get_secret(request: web.Request) -> web.Response:
    info = request.match_info
    name = info["name"]
    call = await begin(request, "SecretGet", name)
    secret = await call.kv.secrets.get(
        call.vault, name, info.get("version", ""), caller=call.caller
    )
    return ok(shapes.bundle(call.base, secret))


async def update_secret(request: web.Request) -> web.Response:
    info = request.match_info
    name = info["name"]
    call = await begin(request, "SecretUpdate", name)
    doc = await bodies.json_object(request)
    changes: dict[str, Any] = bodies.attributes(doc)
    content_type = bodies.string(doc, "contentType")
    if content_type is not bodies.MISSING:
        changes["content_type"] = content_type
    props = await call.kv.secrets.update(
        call.vault,
        name,
        info.get("version", ""),
        tags=bodies.tags(doc),
        caller=call.caller,
        **changes,
    )
    return ok(shapes.properties(call.base, props))


async def list_secrets(request: web.Request) -> web.Response:
    call = await begin(request, "SecretList")
    page = await call.kv.secrets.list(
        call.vault,
        max_results=paging.max_results(request.query),
        token=paging.skip_token(request.query),
        caller=call.caller,
    )
    items = [shapes.properties(call.base, p, versioned=False) for p in page.items]
    return _page(request, call, items, page.next_token)


async def list_versions(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "SecretListVersions", name)
    page = await call.kv.secrets.list_versions(
        call.vault,
        name,
        max_results=paging.max_results(request.query),
        token=paging.skip_token(request.query),
        caller=call.caller,
    )
    items = [shapes.properties(call.base, p) for p in page.items]
    return _page(request, call, items, page.next_token)


async def delete_secret(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "SecretDelete", name)
    gone = await call.kv.secrets.delete(call.vault, name, caller=call.caller)
    return ok(shapes.deleted(call.base, gone))


async def backup_secret(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "SecretBackup", name)
    blob = await call.kv.secrets.backup(call.vault, name, caller=call.caller)
    return ok({"value": bodies.encode_base64url(blob)})


async def restore_secret(request: web.Request) -> web.Response:
    call = await begin(request, "SecretRestore")
    doc = await bodies.json_object(request)
    blob = bodies.base64url(bodies.string(doc, "value", required=True), "value")
    try:
        props = await call.kv.secrets.restore(call.vault, blob, caller=call.caller)
    except IntegrityError:
        # A blob the client sent, not stored data: the client's mistake, not a server fault.
        raise BadParameter(
            "value is not a secret backup that this kvault can restore (corrupted, or made "
            "under another root key)"
        ) from None
    return ok(shapes.properties(call.base, props))


# -- /deletedsecrets --------------------------------------------------------------------------


async def get_deleted(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "SecretGetDeleted", name)
    gone = await call.kv.secrets.get_deleted(call.vault, name, caller=call.caller)
    return ok(shapes.deleted(call.base, gone))


async def list_deleted(request: web.Request) -> web.Response:
    call = await begin(request, "SecretListDeleted")
    page = await call.kv.secrets.list_deleted(
        call.vault,
        max_results=paging.max_results(request.query),
        token=paging.skip_token(request.query),
        caller=call.caller,
    )
    items = [shapes.deleted(call.base, d, versioned=False) for d in page.items]
    return _page(request, call, items, page.next_token)


async def recover_deleted(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "SecretRecover", name)
    props = await call.kv.secrets.recover(call.vault, name, caller=call.caller)
    return ok(shapes.properties(call.base, props))


async def purge_deleted(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "SecretPurge", name)
    await call.kv.secrets.purge(call.vault, name, caller=call.caller)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    """Specific paths before patterns (``/secrets/restore``, ``.../versions``)."""
    r = app.router
    r.add_post("/secrets/restore", restore_secret)
    r.add_get("/secrets", list_secrets)
    r.add_get("/secrets/", list_secrets)
    r.add_get("/secrets/{name}/versions", list_versions)
    r.add_post("/secrets/{name}/backup", backup_secret)
    r.add_put("/secrets/{name}", set_secret)
    r.add_delete("/secrets/{name}", delete_secret)
    for path in ("/secrets/{name}", "/secrets/{name}/", "/secrets/{name}/{version}"):
        r.add_get(path, get_secret, allow_head=False)
        r.add_patch(path, update_secret)
    r.add_get("/deletedsecrets", list_deleted)
    r.add_get("/deletedsecrets/", list_deleted)
    r.add_get("/deletedsecrets/{name}", get_deleted, allow_head=False)
    r.add_delete("/deletedsecrets/{name}", purge_deleted)
    r.add_post("/deletedsecrets/{name}/recover", recover_deleted)
