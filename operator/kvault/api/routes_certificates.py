"""The certificates operations of the Key Vault REST API (``/certificates``,
``/deletedcertificates``): create (202, then the pending operation), import, merge (201),
versions, policy, contacts, issuers and the lifecycle. :data:`ROUTES` is the one list of
these routes (router and ``/openapi.json``); fixed paths (``contacts``, ``issuers``,
``restore``) come before the name patterns."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from functools import partial
from typing import Any

from aiohttp import web

from kvault.api import bodies, cert_shapes
from kvault.api.paging import INCLUDE_PENDING
from kvault.api.request import begin, listed, ok
from kvault.api.routing import Route, item_params
from kvault.errors import BadParameter, IntegrityError
from kvault.vault.names import ITEM_NAME

# -- versions ---------------------------------------------------------------------------------


def _enabled(doc: dict[str, Any]) -> Any:
    return bodies.attributes(doc).get("enabled", True)


async def create(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateCreate", name)
    doc = await bodies.json_object(request)
    op = await call.kv.certificates.create(
        call.vault,
        name,
        doc.get("policy"),
        enabled=_enabled(doc),
        tags=bodies.tags(doc),
        caller=call.caller,
    )
    body = cert_shapes.operation(call.base, op)
    # Azure answers every create with inProgress; the first poll then reads the real state
    # (a 202 that already says completed makes the SDK's poller return None).
    body["status"] = "inProgress"
    body.pop("target", None)
    location = f"{call.base}/certificates/{name}/pending?request_id={op.request_id}"
    response = ok(body, status=202)
    response.headers["Location"] = location
    response.headers["Retry-After"] = "10"
    return response


def _value(doc: dict[str, Any]) -> bytes:
    text = bodies.string(doc, "value", required=True)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadParameter("value must be the base64 of a PFX or a PEM file") from None


async def import_certificate(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateImport", name)
    doc = await bodies.json_object(request)
    password = bodies.optional_string(doc, "pwd")
    cert = await call.kv.certificates.import_certificate(
        call.vault,
        name,
        _value(doc),
        password=password,
        policy_doc=doc.get("policy"),
        enabled=_enabled(doc),
        tags=bodies.tags(doc),
        caller=call.caller,
    )  # the version this request made, with its policy (a later read may see another's)
    return ok(cert_shapes.bundle(call.base, cert))


async def get_certificate(request: web.Request) -> web.Response:
    info = request.match_info
    name = info["name"]
    call = await begin(request, "CertificateGet", name)
    cert = await call.kv.certificates.get(
        call.vault, name, info.get("version", ""), caller=call.caller
    )
    return ok(cert_shapes.bundle(call.base, cert))


async def update_certificate(request: web.Request) -> web.Response:
    info = request.match_info
    name = info["name"]
    call = await begin(request, "CertificateUpdate", name)
    doc = await bodies.json_object(request)
    attrs = bodies.attributes(doc)
    cert = await call.kv.certificates.update(
        call.vault,
        name,
        info.get("version", ""),
        enabled=attrs.get("enabled"),
        tags=bodies.tags(doc),
        caller=call.caller,
    )
    return ok(cert_shapes.bundle(call.base, cert))


def _include_pending(query: Mapping[str, str]) -> bool:
    """``includePending``: ``true`` or ``false`` (any case); missing or empty is ``false``,
    as Azure treats an absent one."""
    raw = query.get(INCLUDE_PENDING, "")
    if raw.lower() not in ("", "true", "false"):
        raise BadParameter(f"{INCLUDE_PENDING} must be true or false, got {raw[:32]!r}")
    return raw.lower() == "true"


async def list_certificates(request: web.Request) -> web.Response:
    call = await begin(request, "CertificateList")
    pending = _include_pending(request.query)
    fetch = partial(call.kv.certificates.list, call.vault, include_pending=pending)
    return await listed(
        request, call, fetch, lambda p: cert_shapes.item(call.base, p, versioned=False)
    )


async def list_versions(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateListVersions", name)
    fetch = partial(call.kv.certificates.list_versions, call.vault, name)
    return await listed(request, call, fetch, lambda p: cert_shapes.item(call.base, p))


async def delete_certificate(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateDelete", name)
    gone = await call.kv.certificates.delete(call.vault, name, caller=call.caller)
    return ok(cert_shapes.deleted(call.base, gone))


async def backup(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateBackup", name)
    blob = await call.kv.certificates.backup(call.vault, name, caller=call.caller)
    return ok({"value": bodies.encode_base64url(blob)})


async def restore(request: web.Request) -> web.Response:
    call = await begin(request, "CertificateRestore")
    doc = await bodies.json_object(request)
    blob = bodies.base64url(bodies.string(doc, "value", required=True), "value")
    try:
        props = await call.kv.certificates.restore(call.vault, blob, caller=call.caller)
    except IntegrityError:
        raise BadParameter(
            "value is not a certificate backup that this kvault can restore (corrupted, or "
            "made under another root key)"
        ) from None
    cert = await call.kv.certificates.with_content(call.vault, props)
    return ok(cert_shapes.bundle(call.base, cert))


# -- the pending operation --------------------------------------------------------------------


async def get_operation(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateGetOperation", name)
    op = await call.kv.certificates.get_operation(call.vault, name, caller=call.caller)
    return ok(cert_shapes.operation(call.base, op))


async def cancel_operation(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateUpdateOperation", name)
    doc = await bodies.json_object(request)
    if doc.get("cancellation_requested") is not True:
        raise BadParameter("cancellation_requested must be true (the only change allowed)")
    op = await call.kv.certificates.cancel_operation(call.vault, name, caller=call.caller)
    return ok(cert_shapes.operation(call.base, op))


async def delete_operation(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateDeleteOperation", name)
    op = await call.kv.certificates.delete_operation(call.vault, name, caller=call.caller)
    return ok(cert_shapes.operation(call.base, op))


async def merge(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateMerge", name)
    doc = await bodies.json_object(request)
    x5c = doc.get("x5c")
    if not isinstance(x5c, list) or not x5c:
        raise BadParameter("x5c is required: the signed certificate, then its chain")
    elements = []
    for i, element in enumerate(x5c):
        if not isinstance(element, str):
            raise BadParameter(f"x5c[{i}] must be a base64 string")
        try:
            elements.append(base64.b64decode(element, validate=True))
        except (binascii.Error, ValueError):
            raise BadParameter(f"x5c[{i}] is not base64") from None
    attrs = bodies.attributes(doc)
    cert = await call.kv.certificates.merge(
        call.vault,
        name,
        elements,
        enabled=attrs.get("enabled"),
        tags=bodies.tags(doc),
        caller=call.caller,
    )
    response = ok(cert_shapes.bundle(call.base, cert), status=201)
    response.headers["Location"] = f"{call.base}/certificates/{name}"
    return response


# -- the policy -------------------------------------------------------------------------------


async def get_policy(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateGetPolicy", name)
    policy = await call.kv.certificates.get_policy(call.vault, name, caller=call.caller)
    return ok(policy.to_response(cert_shapes.policy_id(call.base, name)))


async def update_policy(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateSetPolicy", name)
    doc = await bodies.json_object(request)
    policy = await call.kv.certificates.update_policy(call.vault, name, doc, caller=call.caller)
    return ok(policy.to_response(cert_shapes.policy_id(call.base, name)))


# -- contacts and issuers ---------------------------------------------------------------------


async def get_contacts(request: web.Request) -> web.Response:
    call = await begin(request, "CertificateGetContacts")
    found = await call.kv.certificates.get_contacts(call.vault, caller=call.caller)
    return ok(cert_shapes.contacts(call.base, found))


async def set_contacts(request: web.Request) -> web.Response:
    call = await begin(request, "CertificateSetContacts")
    doc = await bodies.json_object(request)
    found = await call.kv.certificates.set_contacts(
        call.vault, doc.get("contacts"), caller=call.caller
    )
    return ok(cert_shapes.contacts(call.base, found))


async def delete_contacts(request: web.Request) -> web.Response:
    call = await begin(request, "CertificateDeleteContacts")
    found = await call.kv.certificates.delete_contacts(call.vault, caller=call.caller)
    return ok(cert_shapes.contacts(call.base, found))


async def list_issuers(request: web.Request) -> web.Response:
    call = await begin(request, "CertificateListIssuers")
    found = await call.kv.certificates.list_issuers(call.vault, caller=call.caller)
    return ok({"value": [cert_shapes.issuer_item(call.base, r) for r in found], "nextLink": None})


async def get_issuer(request: web.Request) -> web.Response:
    name = request.match_info["issuer"]
    call = await begin(request, "CertificateGetIssuer")
    record = await call.kv.certificates.get_issuer(call.vault, name, caller=call.caller)
    return ok(cert_shapes.issuer(call.base, record))


async def _set_issuer(request: web.Request, patch: bool) -> web.Response:
    name = request.match_info["issuer"]
    call = await begin(request, "CertificateSetIssuer")
    doc = await bodies.json_object(request)
    record = await call.kv.certificates.set_issuer(
        call.vault, name, doc, patch=patch, caller=call.caller
    )
    return ok(cert_shapes.issuer(call.base, record))


async def put_issuer(request: web.Request) -> web.Response:
    return await _set_issuer(request, False)


async def patch_issuer(request: web.Request) -> web.Response:
    return await _set_issuer(request, True)


async def delete_issuer(request: web.Request) -> web.Response:
    name = request.match_info["issuer"]
    call = await begin(request, "CertificateDeleteIssuer")
    record = await call.kv.certificates.delete_issuer(call.vault, name, caller=call.caller)
    return ok(cert_shapes.issuer(call.base, record))


# -- /deletedcertificates ---------------------------------------------------------------------


async def get_deleted(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateGetDeleted", name)
    gone = await call.kv.certificates.get_deleted(call.vault, name, caller=call.caller)
    return ok(cert_shapes.deleted(call.base, gone))


async def list_deleted(request: web.Request) -> web.Response:
    call = await begin(request, "CertificateListDeleted")
    _include_pending(request.query)  # checked; a kvault delete is never partly done
    fetch = partial(call.kv.certificates.list_deleted, call.vault)
    return await listed(request, call, fetch, lambda d: cert_shapes.deleted(call.base, d))


async def recover(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificateRecover", name)
    props = await call.kv.certificates.recover(call.vault, name, caller=call.caller)
    cert = await call.kv.certificates.with_content(call.vault, props)
    return ok(cert_shapes.bundle(call.base, cert))


async def purge(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    call = await begin(request, "CertificatePurge", name)
    await call.kv.certificates.purge(call.vault, name, caller=call.caller)
    return web.Response(status=204)


_P = item_params("certificate")
_I = {
    "issuer": {
        "name": "issuer-name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{ITEM_NAME.pattern}$"},
    }
}
_PENDING = {
    "name": INCLUDE_PENDING,
    "in": "query",
    "description": "Also list the certificates that are not completely provisioned (whose "
    "only version waits for a merge). Default false.",
    "schema": {"type": "boolean", "default": False},
}
_DELETE_PENDING = {
    **_PENDING,
    "description": "Accepted as Azure takes it; a delete in kvault is never partly done, so "
    "the listing is the same either way. Default false.",
}
_BUNDLE = {"200": ("CertificateBundle", "The certificate version.")}
_DELETED = {"200": ("DeletedCertificateBundle", "The deleted certificate.")}
_OP = {"200": ("CertificateOperation", "The certificate's create operation.")}
_ISSUER = {"200": ("IssuerBundle", "The issuer.")}
_CONTACTS = {"200": ("Contacts", "The vault's certificate contacts.")}
_POLICY = {"200": ("CertificatePolicy", "The certificate's policy.")}

ROUTES = (
    Route(
        "POST",
        "/certificates/restore",
        restore,
        "RestoreCertificate",
        _BUNDLE,
        body="CertificateRestoreParameters",
    ),
    Route(
        "GET",
        "/certificates",
        list_certificates,
        "GetCertificates",
        {"200": ("CertificateListResult", "A page of certificates.")},
        paging=True,
        query=(_PENDING,),
    ),
    Route("GET", "/certificates/", list_certificates),
    Route(
        "GET",
        "/certificates/contacts",
        get_contacts,
        "GetCertificateContacts",
        _CONTACTS,
        allow_head=False,
    ),
    Route(
        "PUT",
        "/certificates/contacts",
        set_contacts,
        "SetCertificateContacts",
        _CONTACTS,
        body="Contacts",
    ),
    Route(
        "DELETE", "/certificates/contacts", delete_contacts, "DeleteCertificateContacts", _CONTACTS
    ),
    Route(
        "GET",
        "/certificates/issuers",
        list_issuers,
        "GetCertificateIssuers",
        {"200": ("IssuerListResult", "The vault's issuers.")},
    ),
    Route(
        "GET",
        "/certificates/issuers/{issuer}",
        get_issuer,
        "GetCertificateIssuer",
        _ISSUER,
        _I,
        allow_head=False,
    ),
    Route(
        "PUT",
        "/certificates/issuers/{issuer}",
        put_issuer,
        "SetCertificateIssuer",
        _ISSUER,
        _I,
        body="IssuerParameters",
    ),
    Route(
        "PATCH",
        "/certificates/issuers/{issuer}",
        patch_issuer,
        "UpdateCertificateIssuer",
        _ISSUER,
        _I,
        body="IssuerUpdateParameters",
    ),
    Route(
        "DELETE",
        "/certificates/issuers/{issuer}",
        delete_issuer,
        "DeleteCertificateIssuer",
        _ISSUER,
        _I,
    ),
    Route(
        "POST",
        "/certificates/{name}/create",
        create,
        "CreateCertificate",
        {"202": ("CertificateOperation", "The create operation, in progress.")},
        _P,
        body="CertificateCreateParameters",
    ),
    Route(
        "POST",
        "/certificates/{name}/import",
        import_certificate,
        "ImportCertificate",
        _BUNDLE,
        _P,
        body="CertificateImportParameters",
    ),
    Route(
        "POST",
        "/certificates/{name}/pending/merge",
        merge,
        "MergeCertificate",
        {"201": ("CertificateBundle", "The merged certificate.")},
        _P,
        body="CertificateMergeParameters",
    ),
    Route(
        "GET",
        "/certificates/{name}/pending",
        get_operation,
        "GetCertificateOperation",
        _OP,
        _P,
        allow_head=False,
    ),
    Route(
        "PATCH",
        "/certificates/{name}/pending",
        cancel_operation,
        "UpdateCertificateOperation",
        _OP,
        _P,
        body="CertificateOperationUpdateParameter",
    ),
    Route(
        "DELETE",
        "/certificates/{name}/pending",
        delete_operation,
        "DeleteCertificateOperation",
        _OP,
        _P,
    ),
    Route(
        "GET",
        "/certificates/{name}/policy",
        get_policy,
        "GetCertificatePolicy",
        _POLICY,
        _P,
        allow_head=False,
    ),
    Route(
        "PATCH",
        "/certificates/{name}/policy",
        update_policy,
        "UpdateCertificatePolicy",
        _POLICY,
        _P,
        body="CertificatePolicy",
    ),
    Route(
        "GET",
        "/certificates/{name}/versions",
        list_versions,
        "GetCertificateVersions",
        {"200": ("CertificateListResult", "A page of versions.")},
        _P,
        paging=True,
    ),
    Route(
        "POST",
        "/certificates/{name}/backup",
        backup,
        "BackupCertificate",
        {"200": ("BackupCertificateResult", "An opaque backup blob.")},
        _P,
    ),
    Route(
        "DELETE",
        "/certificates/{name}",
        delete_certificate,
        "DeleteCertificate",
        _DELETED,
        _P,
    ),
    Route("GET", "/certificates/{name}", get_certificate, allow_head=False),
    Route("PATCH", "/certificates/{name}", update_certificate),
    Route(
        "GET",
        "/certificates/{name}/",
        get_certificate,
        "GetCertificateLatest",
        _BUNDLE,
        _P,
        allow_head=False,
    ),
    Route(
        "PATCH",
        "/certificates/{name}/",
        update_certificate,
        "UpdateCertificateLatest",
        _BUNDLE,
        _P,
        body="CertificateUpdateParameters",
    ),
    Route(
        "GET",
        "/certificates/{name}/{version}",
        get_certificate,
        "GetCertificate",
        _BUNDLE,
        _P,
        allow_head=False,
    ),
    Route(
        "PATCH",
        "/certificates/{name}/{version}",
        update_certificate,
        "UpdateCertificate",
        _BUNDLE,
        _P,
        body="CertificateUpdateParameters",
    ),
    Route(
        "GET",
        "/deletedcertificates",
        list_deleted,
        "GetDeletedCertificates",
        {"200": ("DeletedCertificateListResult", "A page of deleted certificates.")},
        paging=True,
        query=(_DELETE_PENDING,),
    ),
    Route("GET", "/deletedcertificates/", list_deleted),
    Route(
        "GET",
        "/deletedcertificates/{name}",
        get_deleted,
        "GetDeletedCertificate",
        _DELETED,
        _P,
        allow_head=False,
    ),
    Route(
        "DELETE",
        "/deletedcertificates/{name}",
        purge,
        "PurgeDeletedCertificate",
        {"204": ("", "Purged.")},
        _P,
    ),
    Route(
        "POST",
        "/deletedcertificates/{name}/recover",
        recover,
        "RecoverDeletedCertificate",
        _BUNDLE,
        _P,
    ),
)
