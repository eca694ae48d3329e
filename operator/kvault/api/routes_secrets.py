"""The secrets operations of the Key Vault REST API, each: resolve vault, authorise, run.

Authorisation runs before the body is read, so a caller without the right learns nothing
about what their request would have done; every denial is audited like an operation (by
the domain). :data:`ROUTES` is the one list of these routes: the router and
``/openapi.json`` are both built from it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aiohttp import web

from kvault.api import bodies, shapes
from kvault.api.request import begin, listed, ok
from kvault.api.routing import Route, item_params
from kvault.errors import BadParameter, IntegrityError

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
    fetch = partial(call.kv.secrets.list, call.vault)
    return await listed(
        request, call, fetch, lambda p: shapes.properties(call.base, p, versioned=False)
    )


async def list_versions(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "SecretListVersions", name)
    fetch = partial(call.kv.secrets.list_versions, call.vault, name)
    return await listed(request, call, fetch, lambda p: shapes.properties(call.base, p))


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
    fetch = partial(call.kv.secrets.list_deleted, call.vault)
    return await listed(
        request, call, fetch, lambda d: shapes.deleted(call.base, d, versioned=False)
    )


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


_P = item_params("secret")
_BUNDLE = {"200": ("SecretBundle", "The secret version, with its value.")}
_PROPS = {"200": ("SecretItem", "The secret version's metadata (no value).")}
_DELETED = {"200": ("DeletedSecretItem", "The deleted secret.")}
_LIST = {"200": ("SecretListResult", "A page of secrets.")}

#: In registration order: specific paths before patterns (``/secrets/restore``,
#: ``.../versions``).
ROUTES = (
    Route(
        "POST",
        "/secrets/restore",
        restore_secret,
        "RestoreSecret",
        _PROPS,
        body="SecretRestoreParameters",
    ),
    Route("GET", "/secrets", list_secrets, "GetSecrets", _LIST, paging=True),
    Route("GET", "/secrets/", list_secrets),
    # The SDKs' secret GET (current version) first among the patterns: aiohttp tries a path's
    # patterns in table order, and none of the others matches /secrets/NAME/.
    Route("GET", "/secrets/{name}/", get_secret, "GetSecretLatest", _BUNDLE, _P, allow_head=False),
    Route(
        "PATCH",
        "/secrets/{name}/",
        update_secret,
        "UpdateSecretLatest",
        _PROPS,
        _P,
        body="SecretUpdateParameters",
    ),
    Route(
        "GET",
        "/secrets/{name}/versions",
        list_versions,
        "GetSecretVersions",
        {"200": ("SecretListResult", "A page of versions.")},
        _P,
        paging=True,
    ),
    Route(
        "POST",
        "/secrets/{name}/backup",
        backup_secret,
        "BackupSecret",
        {"200": ("BackupSecretResult", "An opaque backup blob.")},
        _P,
    ),
    Route(
        "PUT", "/secrets/{name}", set_secret, "SetSecret", _BUNDLE, _P, body="SecretSetParameters"
    ),
    Route("DELETE", "/secrets/{name}", delete_secret, "DeleteSecret", _DELETED, _P),
    Route("GET", "/secrets/{name}", get_secret, allow_head=False),
    Route("PATCH", "/secrets/{name}", update_secret),
    Route(
        "GET", "/secrets/{name}/{version}", get_secret, "GetSecret", _BUNDLE, _P, allow_head=False
    ),
    Route(
        "PATCH",
        "/secrets/{name}/{version}",
        update_secret,
        "UpdateSecret",
        _PROPS,
        _P,
        body="SecretUpdateParameters",
    ),
    Route(
        "GET",
        "/deletedsecrets",
        list_deleted,
        "GetDeletedSecrets",
        {"200": ("DeletedSecretListResult", "A page of deleted secrets.")},
        paging=True,
    ),
    Route("GET", "/deletedsecrets/", list_deleted),
    Route(
        "GET",
        "/deletedsecrets/{name}",
        get_deleted,
        "GetDeletedSecret",
        _DELETED,
        _P,
        allow_head=False,
    ),
    Route(
        "DELETE",
        "/deletedsecrets/{name}",
        purge_deleted,
        "PurgeDeletedSecret",
        {"204": ("", "Purged.")},
        _P,
    ),
    Route(
        "POST",
        "/deletedsecrets/{name}/recover",
        recover_deleted,
        "RecoverDeletedSecret",
        _PROPS,
        _P,
    ),
)
