"""The keys operations of the Key Vault REST API (``/keys``, ``/deletedkeys``, ``/rng``).

As for secrets: the vault comes from the Host, the domain authorises before the body is
read, every denial is audited. :data:`ROUTES` is the one list of these routes (router and
``/openapi.json``). Paths are Azure's: lower-case ``wrapkey``, ``unwrapkey``,
``rotationpolicy``; an empty version (``/keys/k/``, ``/keys/k//sign``) means the latest.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aiohttp import web

from kvault.api import bodies, key_shapes
from kvault.api.request import begin, listed, ok
from kvault.api.routing import Handler, Route, item_params
from kvault.errors import BadParameter, IntegrityError
from kvault.vault.keys.operations import KeyInput
from kvault.vault.keys.rotation import empty_response

# -- /keys ------------------------------------------------------------------------------------


def _ops(doc: dict[str, Any]) -> Any:
    return doc.get("key_ops")


async def create_key(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "KeyCreate", name)
    doc = await bodies.json_object(request)
    kty = bodies.string(doc, "kty", required=True)
    attrs = bodies.attributes(doc)
    key = await call.kv.keys.create(
        call.vault,
        name,
        kty,
        size=bodies.integer(doc, "key_size"),
        crv=bodies.optional_string(doc, "crv"),
        public_exponent=bodies.integer(doc, "public_exponent"),
        key_ops=_ops(doc),
        tags=bodies.tags(doc),
        enabled=attrs.get("enabled", True),
        not_before=attrs.get("not_before"),
        expires=attrs.get("expires"),
        caller=call.caller,
    )
    return ok(key_shapes.bundle(call.base, key))


async def import_key(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "KeyImport", name)
    doc = await bodies.json_object(request)
    jwk = doc.get("key")
    if not isinstance(jwk, dict):
        raise BadParameter("key is required: a JSON Web Key with its private members")
    attrs = bodies.attributes(doc)
    key = await call.kv.keys.import_key(
        call.vault,
        name,
        jwk,
        hsm=doc.get("Hsm"),
        tags=bodies.tags(doc),
        enabled=attrs.get("enabled", True),
        not_before=attrs.get("not_before"),
        expires=attrs.get("expires"),
        caller=call.caller,
    )
    return ok(key_shapes.bundle(call.base, key))


async def get_key(request: web.Request) -> web.Response:
    info = request.match_info
    name = info["name"]
    call = await begin(request, "KeyGet", name)
    key = await call.kv.keys.get(call.vault, name, info.get("version", ""), caller=call.caller)
    return ok(key_shapes.bundle(call.base, key))


async def update_key(request: web.Request) -> web.Response:
    info = request.match_info
    name = info["name"]
    call = await begin(request, "KeyUpdate", name)
    doc = await bodies.json_object(request)
    changes: dict[str, Any] = bodies.attributes(doc)
    if doc.get("key_ops") is not None:
        changes["key_ops"] = doc["key_ops"]
    key = await call.kv.keys.update(
        call.vault,
        name,
        info.get("version", ""),
        tags=bodies.tags(doc),
        caller=call.caller,
        **changes,
    )
    return ok(key_shapes.bundle(call.base, key))


async def list_keys(request: web.Request) -> web.Response:
    call = await begin(request, "KeyList")
    fetch = partial(call.kv.keys.list, call.vault)
    return await listed(
        request, call, fetch, lambda p: key_shapes.item(call.base, p, versioned=False)
    )


async def list_versions(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "KeyListVersions", name)
    fetch = partial(call.kv.keys.list_versions, call.vault, name)
    return await listed(request, call, fetch, lambda p: key_shapes.item(call.base, p))


async def delete_key(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "KeyDelete", name)
    gone = await call.kv.keys.delete(call.vault, name, caller=call.caller)
    return ok(key_shapes.deleted(call.base, gone))


async def backup_key(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "KeyBackup", name)
    blob = await call.kv.keys.backup(call.vault, name, caller=call.caller)
    return ok({"value": bodies.encode_base64url(blob)})


async def restore_key(request: web.Request) -> web.Response:
    call = await begin(request, "KeyRestore")
    doc = await bodies.json_object(request)
    blob = bodies.base64url(bodies.string(doc, "value", required=True), "value")
    try:
        props = await call.kv.keys.restore(call.vault, blob, caller=call.caller)
    except IntegrityError:
        raise BadParameter(
            "value is not a key backup that this kvault can restore (corrupted, or made "
            "under another root key)"
        ) from None
    return ok(key_shapes.bundle(call.base, await call.kv.keys.with_public(call.vault, props)))


async def rotate_key(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "KeyRotate", name)
    key = await call.kv.keys.rotate(call.vault, name, caller=call.caller)
    return ok(key_shapes.bundle(call.base, key))


def _policy_id(base: str, name: str) -> str:
    return f"{base}/keys/{name}/rotationpolicy"


async def get_policy(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "KeyGetRotationPolicy", name)
    policy = await call.kv.keys.get_rotation_policy(call.vault, name, caller=call.caller)
    pid = _policy_id(call.base, name)
    return ok(empty_response(pid) if policy is None else policy.to_response(pid))


async def set_policy(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "KeySetRotationPolicy", name)
    doc = await bodies.json_object(request)
    policy = await call.kv.keys.set_rotation_policy(call.vault, name, doc, caller=call.caller)
    return ok(policy.to_response(_policy_id(call.base, name)))


async def random_bytes(request: web.Request) -> web.Response:
    call = await begin(request, "KeyGetRandomBytes")
    doc = await bodies.json_object(request)
    data = await call.kv.keys.random_bytes(call.vault, doc.get("count"), caller=call.caller)
    return ok({"value": bodies.encode_base64url(data)})


# -- cryptographic operations -----------------------------------------------------------------


def _bytes(doc: dict[str, Any], field: str, *, required: bool = False) -> bytes | None:
    text = bodies.string(doc, field, required=required)
    if text is bodies.MISSING or text is None:
        return None
    return b"" if text == "" else bodies.base64url(text, field)


#: The body fields each operation reads (binary, base64url); the first is required.
_INPUTS = {
    "Encrypt": ("value", "iv", "aad"),
    "Decrypt": ("value", "iv", "aad", "tag"),
    "Sign": ("value",),
    "Verify": ("digest", "value"),
    "WrapKey": ("value",),
    "UnwrapKey": ("value",),
}


def _input(doc: dict[str, Any], verb: str) -> KeyInput:
    fields = _INPUTS[verb]
    got = {f: _bytes(doc, f, required=f == fields[0]) for f in fields}
    return KeyInput(
        value=got.get("value") or b"",
        digest=got.get("digest") or b"",
        iv=got.get("iv"),
        aad=got.get("aad"),
        tag=got.get("tag"),
    )


def _operation(verb: str) -> Handler:
    """The handler of ``POST /keys/{name}/{version}/<verb>``."""

    async def handler(request: web.Request) -> web.Response:
        info = request.match_info
        name = info["name"]
        call = await begin(request, "Key" + verb, name)
        doc = await bodies.json_object(request)
        alg = bodies.string(doc, "alg", required=True)
        out = await call.kv.keys.operate(
            call.vault,
            name,
            info.get("version", ""),
            verb,
            alg,
            _input(doc, verb),
            caller=call.caller,
        )
        if out.valid is not None:
            return ok({"value": out.valid})
        return ok(key_shapes.result(call.base, name, out))

    return handler


# -- /deletedkeys -----------------------------------------------------------------------------


async def get_deleted(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "KeyGetDeleted", name)
    gone = await call.kv.keys.get_deleted(call.vault, name, caller=call.caller)
    return ok(key_shapes.deleted(call.base, gone))


async def list_deleted(request: web.Request) -> web.Response:
    call = await begin(request, "KeyListDeleted")
    fetch = partial(call.kv.keys.list_deleted, call.vault)
    return await listed(request, call, fetch, lambda d: key_shapes.deleted(call.base, d))


async def recover_deleted(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "KeyRecover", name)
    props = await call.kv.keys.recover(call.vault, name, caller=call.caller)
    key = await call.kv.keys.with_public(call.vault, props)
    return ok(key_shapes.bundle(call.base, key))


async def purge_deleted(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "KeyPurge", name)
    await call.kv.keys.purge(call.vault, name, caller=call.caller)
    return web.Response(status=204)


_P = item_params("key")
_BUNDLE = {"200": ("KeyBundle", "The key version: its public JWK and metadata.")}
_DELETED = {"200": ("DeletedKeyBundle", "The deleted key.")}
_LIST = {"200": ("KeyListResult", "A page of keys.")}
_RESULT = {"200": ("KeyOperationResult", "The operation's output.")}
_OPS = (
    ("encrypt", _operation("Encrypt"), "Encrypt", _RESULT),
    ("decrypt", _operation("Decrypt"), "Decrypt", _RESULT),
    ("sign", _operation("Sign"), "Sign", _RESULT),
    (
        "verify",
        _operation("Verify"),
        "Verify",
        {"200": ("KeyVerifyResult", "Whether the signature holds.")},
    ),
    ("wrapkey", _operation("WrapKey"), "WrapKey", _RESULT),
    ("unwrapkey", _operation("UnwrapKey"), "UnwrapKey", _RESULT),
)
_OP_BODY = {"verify": "KeyVerifyParameters", "sign": "KeySignParameters"}


def _crypto_routes() -> tuple[Route, ...]:
    out: list[Route] = []
    for path, handler, op_id, ok_ in _OPS:
        body = _OP_BODY.get(path, "KeyOperationsParameters")
        out.append(
            Route("POST", f"/keys/{{name}}/{{version}}/{path}", handler, op_id, ok_, _P, body=body)
        )
        out.append(Route("POST", f"/keys/{{name}}//{path}", handler))
    return tuple(out)


#: In registration order: specific paths before patterns.
ROUTES = (
    Route("POST", "/keys/restore", restore_key, "RestoreKey", _BUNDLE, body="KeyRestoreParameters"),
    Route(
        "POST",
        "/rng",
        random_bytes,
        "GetRandomBytes",
        {"200": ("RandomBytes", "Random bytes.")},
        body="GetRandomBytesRequest",
    ),
    Route("GET", "/keys", list_keys, "GetKeys", _LIST, paging=True),
    Route("GET", "/keys/", list_keys),
    Route(
        "GET",
        "/keys/{name}/versions",
        list_versions,
        "GetKeyVersions",
        {"200": ("KeyListResult", "A page of versions.")},
        _P,
        paging=True,
    ),
    Route(
        "POST",
        "/keys/{name}/create",
        create_key,
        "CreateKey",
        _BUNDLE,
        _P,
        body="KeyCreateParameters",
    ),
    Route(
        "POST",
        "/keys/{name}/backup",
        backup_key,
        "BackupKey",
        {"200": ("BackupKeyResult", "An opaque backup blob.")},
        _P,
    ),
    Route("POST", "/keys/{name}/rotate", rotate_key, "RotateKey", _BUNDLE, _P),
    Route(
        "GET",
        "/keys/{name}/rotationpolicy",
        get_policy,
        "GetKeyRotationPolicy",
        {"200": ("KeyRotationPolicy", "The key's rotation policy.")},
        _P,
        allow_head=False,
    ),
    Route(
        "PUT",
        "/keys/{name}/rotationpolicy",
        set_policy,
        "UpdateKeyRotationPolicy",
        {"200": ("KeyRotationPolicy", "The key's rotation policy.")},
        _P,
        body="KeyRotationPolicy",
    ),
    *_crypto_routes(),
    Route("PUT", "/keys/{name}", import_key, "ImportKey", _BUNDLE, _P, body="KeyImportParameters"),
    Route("DELETE", "/keys/{name}", delete_key, "DeleteKey", _DELETED, _P),
    Route("GET", "/keys/{name}", get_key, allow_head=False),
    Route("PATCH", "/keys/{name}", update_key),
    Route("GET", "/keys/{name}/", get_key, "GetKeyLatest", _BUNDLE, _P, allow_head=False),
    Route(
        "PATCH",
        "/keys/{name}/",
        update_key,
        "UpdateKeyLatest",
        _BUNDLE,
        _P,
        body="KeyUpdateParameters",
    ),
    Route("GET", "/keys/{name}/{version}", get_key, "GetKey", _BUNDLE, _P, allow_head=False),
    Route(
        "PATCH",
        "/keys/{name}/{version}",
        update_key,
        "UpdateKey",
        _BUNDLE,
        _P,
        body="KeyUpdateParameters",
    ),
    Route(
        "GET",
        "/deletedkeys",
        list_deleted,
        "GetDeletedKeys",
        {"200": ("DeletedKeyListResult", "A page of deleted keys.")},
        paging=True,
    ),
    Route("GET", "/deletedkeys/", list_deleted),
    Route(
        "GET", "/deletedkeys/{name}", get_deleted, "GetDeletedKey", _DELETED, _P, allow_head=False
    ),
    Route(
        "DELETE",
        "/deletedkeys/{name}",
        purge_deleted,
        "PurgeDeletedKey",
        {"204": ("", "Purged.")},
        _P,
    ),
    Route("POST", "/deletedkeys/{name}/recover", recover_deleted, "RecoverDeletedKey", _BUNDLE, _P),
)
