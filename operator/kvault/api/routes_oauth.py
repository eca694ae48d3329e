"""The token endpoint azure-identity's WorkloadIdentityCredential calls, and the OpenID
configuration MSAL-based credentials fetch first. The exchange itself belongs to identity/."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from kvault.api.auth import PUBLIC, safe_host
from kvault.api.config import CONFIG
from kvault.api.routing import Route

log = logging.getLogger("kvault.api")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM = "application/x-www-form-urlencoded"


def _json(status: int, body: Mapping[str, Any], headers: Mapping[str, str]) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(dict(body)).encode(),
        content_type="application/json",
        headers={**_NO_STORE, **headers},
    )


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return _json(status, {"error": error, "error_description": description}, {})


async def token(request: web.Request) -> web.Response:
    exchange = request.app[CONFIG].exchange
    if exchange is None:
        return _oauth_error(
            400, "unsupported_grant_type", "this kvault has no token exchange configured"
        )
    if request.content_type != _FORM:
        return _oauth_error(400, "invalid_request", f"the body must be {_FORM}")
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    result = await exchange(fields)
    if isinstance(result, Mapping):
        return _json(400 if "error" in result else 200, result, {})
    return _json(int(result.status), result.body, getattr(result, "headers", None) or {})


async def openid_configuration(request: web.Request) -> web.Response:
    base = f"https://{safe_host(request)}/{request.match_info['tenant']}"
    return _json(
        200,
        {
            "issuer": f"{base}/v2.0",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "grant_types_supported": ["client_credentials"],
        },
        {},
    )


_TOKEN_SPEC: dict[str, Any] = {
    "operationId": "Token",
    "security": [],
    "parameters": [
        {
            "name": "tenant",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9.-]{1,64}$"},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {_FORM: {"schema": {"$ref": "#/components/schemas/TokenRequest"}}},
    },
    "responses": {
        "200": {
            "description": "An access token.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/TokenResponse"}}
            },
        },
        **{
            code: {
                "description": "OAuth error (RFC 6749 5.2).",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}
                },
            }
            for code in ("400", "401", "503")
        },
    },
}

ROUTES = (
    Route("POST", "/{tenant}/oauth2/v2.0/token", token, name=PUBLIC + "token", spec=_TOKEN_SPEC),
    Route(
        "GET",
        "/{tenant}/v2.0/.well-known/openid-configuration",
        openid_configuration,
        name=PUBLIC + "openid-configuration",
    ),
)
