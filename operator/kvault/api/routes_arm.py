"""The few Azure Resource Manager calls the Azure CLI makes before it reaches a vault.

``az cloud register --endpoint-resource-manager https://HOST/arm/`` (without
``--skip-endpoint-discovery``) reads ``/arm//metadata/endpoints`` — the double slash is the
CLI's, which appends ``/metadata/endpoints`` to the URL as given — and registers a cloud whose
sign-in authority is this server and whose key vault DNS suffix reaches this server's vaults.
``az login`` then lists ``/arm/subscriptions``: kvault answers with one subscription, named
after the tenant, so that the CLI has an account to work with. Key Vault verbs make no ARM
call. The management verbs (``az keyvault create``…) are not served: docs/azure-cli.md says
which call each makes and why it is not answered.

The ``api-version`` parameter is accepted and ignored, as on the Key Vault routes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from kvault.api.auth import PUBLIC, safe_host
from kvault.api.config import CONFIG, ApiConfig
from kvault.api.errors import error_response
from kvault.api.hosts import authority, hostname
from kvault.api.routing import Route

#: Where the ARM-shaped routes live on the data-plane listener.
ARM = "/arm"
#: The display name of the one subscription (az prints it as the account's ``name``).
SUBSCRIPTION_NAME = "kvault"
#: The dev server's vaults are ``<vault>.localhost[:port]`` (:mod:`kvault.api.hosts`).
_DEV_SUFFIX = "localhost"


def subscription_id(tenant: str) -> str:
    """A GUID for the one subscription, the same on every replica and restart."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://kvault.io/tenants/{tenant}"))


def _port(host: str) -> str:
    """``:PORT`` of ``host[:port]`` (empty for none)."""
    spelled = authority(host)
    name = hostname(host)
    return spelled[len(name) :]


def keyvault_suffix(config: ApiConfig, host: str) -> str | None:
    """The key vault DNS suffix (without its leading dot) under which ``<vault><suffix>``
    reaches a vault through this listener: ``localhost[:port]`` on the dev server, whose
    vaults answer as ``<vault>.localhost``. A cluster's vaults are ``<vault>.<namespace>.svc``:
    one suffix per namespace, which a cloud registered for the whole server cannot name, so
    there is none (``kvault az-cloud --namespace`` spells it)."""
    if config.default_vault is None:
        return None
    return _DEV_SUFFIX + _port(host)


def endpoints(config: ApiConfig, host: str) -> dict[str, Any]:
    """The metadata document ``az cloud register`` reads (the keys it requires: ``name``,
    ``authentication.loginEndpoint``, ``authentication.audiences[0]``, ``suffixes``)."""
    base = f"https://{host}"
    arm = f"{base}{ARM}/"
    suffixes: dict[str, str] = {}
    suffix = keyvault_suffix(config, host)
    if suffix is not None:
        suffixes["keyVaultDns"] = suffix
    return {
        "name": "kvault",
        "resourceManager": arm,
        "authentication": {
            "loginEndpoint": base,
            "audiences": [arm],
            "tenant": config.tenant,
            "identityProvider": "AAD",
        },
        "suffixes": suffixes,
    }


def subscription(tenant: str) -> dict[str, Any]:
    sid = subscription_id(tenant)
    return {
        "id": f"/subscriptions/{sid}",
        "subscriptionId": sid,
        "tenantId": tenant,
        "displayName": SUBSCRIPTION_NAME,
        "state": "Enabled",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionPolicies": {"spendingLimit": "Off"},
    }


def _json(body: Mapping[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(dict(body)).encode(), content_type="application/json")


async def metadata_endpoints(request: web.Request) -> web.Response:
    return _json(endpoints(request.app[CONFIG], safe_host(request)))


async def list_subscriptions(request: web.Request) -> web.Response:
    return _json({"value": [subscription(request.app[CONFIG].tenant)]})


async def get_subscription(request: web.Request) -> web.Response:
    tenant = request.app[CONFIG].tenant
    wanted = request.match_info["subscription"]
    if wanted.lower() != subscription_id(tenant):
        return error_response(
            404,
            "SubscriptionNotFound",
            f"The subscription '{wanted[:64]}' could not be found: this kvault has one, "
            f"'{subscription_id(tenant)}'.",
        )
    return _json(subscription(tenant))


def _ok(schema: str, text: str) -> dict[str, Any]:
    return {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_ERROR = "#/components/schemas/KeyVaultError"
_API_VERSION = {"name": "api-version", "in": "query", "schema": {"type": "string"}}
_CHALLENGE = {
    "description": "No valid bearer token: the challenge.",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
    "content": {"application/json": {"schema": {"$ref": _ERROR}}},
}


def _errors(*codes: str) -> dict[str, Any]:
    text = {"404": "No such subscription.", "429": "Throttled.", "503": "Unavailable."}
    out: dict[str, Any] = {}
    for code in codes:
        if code == "401":
            out[code] = _CHALLENGE
        else:
            out[code] = {
                "description": text.get(code, "Error."),
                "content": {"application/json": {"schema": {"$ref": _ERROR}}},
            }
    return out


_METADATA_SPEC: dict[str, Any] = {
    "operationId": "ArmMetadataEndpoints",
    "security": [],
    "parameters": [_API_VERSION],
    "responses": {"200": _ok("ArmCloudMetadata", "The cloud's endpoints, for az cloud register.")},
}
_LIST_SPEC: dict[str, Any] = {
    "operationId": "ArmSubscriptionsList",
    "parameters": [_API_VERSION],
    "responses": {
        "200": _ok("ArmSubscriptionList", "The one subscription."),
        **_errors("401", "429", "503"),
    },
}
_GET_SPEC: dict[str, Any] = {
    "operationId": "ArmSubscriptionsGet",
    "parameters": [
        {"name": "subscription", "in": "path", "required": True, "schema": {"type": "string"}},
        _API_VERSION,
    ],
    "responses": {
        "200": _ok("ArmSubscription", "The subscription."),
        **_errors("401", "404", "429", "503"),
    },
}

_SUBSCRIPTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "subscriptionId", "tenantId", "displayName", "state"],
    "properties": {
        "id": {"type": "string"},
        "subscriptionId": {"type": "string"},
        "tenantId": {"type": "string"},
        "displayName": {"type": "string"},
        "state": {"type": "string"},
        "authorizationSource": {"type": "string"},
        "managedByTenants": {"type": "array", "items": {"type": "object"}},
        "subscriptionPolicies": {"type": "object"},
    },
}
SCHEMAS: dict[str, Any] = {
    "ArmSubscription": _SUBSCRIPTION_SCHEMA,
    "ArmSubscriptionList": {
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": {"type": "array", "items": {"$ref": "#/components/schemas/ArmSubscription"}}
        },
    },
    "ArmCloudMetadata": {
        "type": "object",
        "required": ["name", "resourceManager", "authentication", "suffixes"],
        "properties": {
            "name": {"type": "string"},
            "resourceManager": {"type": "string"},
            "authentication": {
                "type": "object",
                "required": ["loginEndpoint", "audiences"],
                "properties": {
                    "loginEndpoint": {"type": "string"},
                    "audiences": {"type": "array", "items": {"type": "string"}},
                    "tenant": {"type": "string"},
                    "identityProvider": {"type": "string"},
                },
            },
            "suffixes": {
                "type": "object",
                "properties": {"keyVaultDns": {"type": "string"}},
            },
        },
    },
}


ROUTES = (
    Route(
        "GET",
        f"{ARM}/metadata/endpoints",
        metadata_endpoints,
        name=PUBLIC + "arm-metadata",
        spec=_METADATA_SPEC,
    ),
    # az appends "/metadata/endpoints" to the ARM URL as given, trailing slash and all.
    Route(
        "GET",
        f"{ARM}//metadata/endpoints",
        metadata_endpoints,
        name=PUBLIC + "arm-metadata-slash",
    ),
    Route("GET", f"{ARM}/subscriptions", list_subscriptions, spec=_LIST_SPEC),
    Route("GET", f"{ARM}/subscriptions/{{subscription}}", get_subscription, spec=_GET_SPEC),
)
