"""The OpenAPI 3.0 document of what this server implements (served at ``/openapi.json``),
generated from the route tables (:mod:`kvault.api.routing`): paths, path-parameter
patterns and operations cannot drift from what the router serves.

It is the contract the fuzz tests hold the server to: every status an operation can answer
is listed with its body schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from aiohttp import web

from kvault.api import (
    cert_schemas,
    key_schemas,
    routes_arm,
    routes_certificates,
    routes_keys,
    routes_oauth,
    routes_secrets,
)
from kvault.api.paging import MAX_RESULTS
from kvault.api.routing import Route
from kvault.api.schema_parts import DELETION, listing
from kvault.api.schema_parts import TAGS as _TAGS
from kvault.api.schema_parts import TIME as _TIME
from kvault.api.schema_parts import ref as _ref


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("KeyVaultError"), "Invalid input (the message names the field)."),
    "401": {
        **_json(_ref("KeyVaultError"), "No valid bearer token: the challenge."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
    },
    "403": _json(_ref("KeyVaultError"), "Not allowed (innererror: ForbiddenByRbac...)."),
    "404": _json(_ref("KeyVaultError"), "No such vault, item or version."),
    "409": _json(_ref("KeyVaultError"), "The name is taken, or deleted but recoverable."),
    "413": _json(_ref("KeyVaultError"), "The request body is too large."),
    "429": {
        **_json(_ref("KeyVaultError"), "Throttled: a vault's or a caller's rate limit."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "required": True}},
    },
    "500": _json(_ref("KeyVaultError"), "Server-side failure (never caused by input)."),
    "503": _json(_ref("KeyVaultError"), "A dependency is unavailable; retry later."),
}

_API_VERSION = {"name": "api-version", "in": "query", "schema": {"type": "string"}}
_PAGING = [
    {
        "name": "maxresults",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS},
    },
    {"name": "$skiptoken", "in": "query", "schema": {"type": "string"}},
]


def _op(
    op_id: str,
    ok: dict[str, dict[str, Any]],
    *,
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    errors: tuple[str, ...] = ("400", "401", "403", "404", "409", "413", "429", "500", "503"),
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": op_id,
        "parameters": [*(params or []), _API_VERSION],
        "responses": {**ok, **{code: _ERRORS[code] for code in errors}},
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return op


_SCHEMAS: dict[str, Any] = {
    "KeyVaultError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "innererror": {
                        "type": "object",
                        "required": ["code"],
                        "properties": {"code": {"type": "string"}},
                    },
                },
            }
        },
    },
    "SecretAttributes": {
        "type": "object",
        "properties": {
            "enabled": {"type": "boolean"},
            "nbf": _TIME,
            "exp": _TIME,
            "created": {"type": "integer", "readOnly": True},
            "updated": {"type": "integer", "readOnly": True},
            "recoveryLevel": {
                "type": "string",
                "readOnly": True,
                "enum": [
                    "Purgeable",
                    "Recoverable+Purgeable",
                    "Recoverable",
                    "Recoverable+ProtectedSubscription",
                    "CustomizedRecoverable+Purgeable",
                    "CustomizedRecoverable",
                    "CustomizedRecoverable+ProtectedSubscription",
                ],
            },
            "recoverableDays": {"type": "integer", "readOnly": True},
        },
    },
    "SecretItem": {
        "type": "object",
        "required": ["id", "attributes"],
        "properties": {
            "id": {"type": "string", "format": "uri"},
            "contentType": {"type": "string"},
            "attributes": _ref("SecretAttributes"),
            "tags": _TAGS,
            "managed": {"type": "boolean"},
            "kid": {"type": "string", "format": "uri"},
        },
    },
    "SecretBundle": {
        "type": "object",
        "required": ["value", "id", "attributes"],
        "properties": {
            "value": {"type": "string"},
            "id": {"type": "string", "format": "uri"},
            "contentType": {"type": "string"},
            "attributes": _ref("SecretAttributes"),
            "tags": _TAGS,
            "managed": {"type": "boolean"},
            "kid": {"type": "string", "format": "uri"},
        },
    },
    "DeletedSecretItem": {"allOf": [_ref("SecretItem"), DELETION]},
    "SecretListResult": listing("SecretItem"),
    "DeletedSecretListResult": listing("DeletedSecretItem"),
    "BackupSecretResult": {
        "type": "object",
        "required": ["value"],
        "properties": {"value": {"type": "string"}},
    },
    "SecretSetParameters": {
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": {"type": "string", "maxLength": 25600},
            "contentType": {"type": "string", "maxLength": 255},
            "tags": _TAGS,
            "attributes": _ref("SecretAttributes"),
        },
    },
    "SecretUpdateParameters": {
        "type": "object",
        "properties": {
            "contentType": {"type": "string", "maxLength": 255},
            "tags": _TAGS,
            "attributes": _ref("SecretAttributes"),
        },
    },
    "SecretRestoreParameters": {
        "type": "object",
        "required": ["value"],
        "properties": {"value": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}},
    },
    "TokenRequest": {
        "type": "object",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"type": "string"},
            "client_assertion_type": {"type": "string"},
            "client_assertion": {"type": "string"},
            "client_id": {"type": "string"},
            "scope": {"type": "string"},
        },
    },
    "TokenResponse": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"type": "string"},
            "expires_in": {"type": "integer"},
            "ext_expires_in": {"type": "integer"},
        },
    },
    "OAuthError": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    },
}

#: Registered by :mod:`kvault.api.app`, outside the route tables.
_INFRA: dict[str, Any] = {
    "/healthz": {
        "get": {
            "operationId": "Healthz",
            "security": [],
            "responses": {"200": {"description": "Alive.", "content": {"text/plain": {}}}},
        }
    },
    "/healthz/noop": {
        "get": {
            "operationId": "Noop",
            "responses": {
                "200": _json({"type": "object"}, "Authenticated and did nothing."),
                "401": _ERRORS["401"],
            },
        }
    },
}
_PATH_PARAM = re.compile(r"\{(\w+)\}")
#: Every route table, in registration order (what :mod:`kvault.api.app` registers).
ROUTES: tuple[Route, ...] = (
    routes_secrets.ROUTES
    + routes_keys.ROUTES
    + routes_certificates.ROUTES
    + routes_oauth.ROUTES
    + routes_arm.ROUTES
)


def operation(route: Route) -> dict[str, Any]:
    """The OpenAPI operation of a Key Vault route: its path parameters, paging, body, the
    success responses it declares and every error status."""
    if route.spec is not None:
        return dict(route.spec)
    params = [dict(route.params[p]) for p in _PATH_PARAM.findall(route.path)]
    ok = {
        status: _json(_ref(schema), text) if schema else {"description": text}
        for status, (schema, text) in route.ok.items()
    }
    return _op(
        route.operation_id or "",
        ok,
        params=[*params, *(_PAGING if route.paging else []), *(dict(q) for q in route.query)],
        body=route.body,
    )


def document_path(route: Route) -> str:
    """``/secrets/{name}`` as the document spells it: ``/secrets/{secret-name}``."""

    def rename(m: re.Match[str]) -> str:
        param = route.params.get(m.group(1))
        return "{" + (param["name"] if param else m.group(1)) + "}"

    return _PATH_PARAM.sub(rename, route.path)


def document(routes: Iterable[Route] | None = None) -> dict[str, Any]:
    """The document of ``routes`` (default: every route module's table)."""
    paths: dict[str, Any] = {}
    for route in ROUTES if routes is None else routes:
        if route.operation_id is None and route.spec is None:
            continue  # an alias of a documented route
        paths.setdefault(document_path(route), {})[route.method.lower()] = operation(route)
    paths.update(_INFRA)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "kvault data plane (Azure Key Vault secrets, keys and certificates API)",
            "version": "2026-04-01",
        },
        "paths": paths,
        "components": {
            "schemas": {
                **_SCHEMAS,
                **key_schemas.SCHEMAS,
                **cert_schemas.SCHEMAS,
                **routes_arm.SCHEMAS,
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


@cache
def _encoded() -> bytes:
    return json.dumps(document()).encode()


async def handler(_: web.Request) -> web.Response:
    return web.Response(body=_encoded(), content_type="application/json")
