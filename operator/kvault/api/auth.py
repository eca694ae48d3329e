"""Every request's first step: the 401 challenge, then the caller's principal.

The Key Vault SDKs open with a body-less, token-less request and replay it once they have a
token for the challenge's scope, so an unauthenticated request must get the challenge before
its path, body or parameters are looked at.

Every refusal is counted (``kvault_auth_failures_total{reason}``) and audited by the domain
(``Authenticate`` lines aggregated per client address, vault and reason:
:mod:`kvault.vault.authfail`); neither names the token nor any header value.
"""

from __future__ import annotations

import re
from functools import lru_cache

from aiohttp import web

from kvault.api import metrics
from kvault.api.config import CONFIG
from kvault.api.errors import error_response
from kvault.api.hosts import challenge_resource, vault_for_host
from kvault.errors import Unauthenticated
from kvault.identity.model import Principal
from kvault.vault.names import VAULT_NAME

PUBLIC = "public:"  # prefix of the route names that need no token
PRINCIPAL = web.RequestKey("kvault.principal", Principal)
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
MISSING_TOKEN = "AKV10000: Request is missing a Bearer or PoP token."


def safe_host(request: web.Request) -> str:
    """The Host header when it is a plain host[:port]; ``localhost`` otherwise (it is echoed
    into headers and ids, so nothing else gets through)."""
    host = request.headers.get("Host", "")  # not request.host: its fallback asks DNS
    return _known_host(host) if len(host) <= _HOST_KEPT else _plain_host(host)


def _plain_host(host: str) -> str:
    return host.lower() if _HOST.fullmatch(host) else "localhost"


#: Hosts up to a DNS name and a port long are answered from memory (one per client spelling).
_HOST_KEPT = 260
_known_host = lru_cache(maxsize=1024)(_plain_host)


def is_public(request: web.Request) -> bool:
    resource = request.match_info.route.resource
    return resource is not None and (resource.name or "").startswith(PUBLIC)


async def principal(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated(MISSING_TOKEN, "MissingToken")
    return await request.app[CONFIG].authenticator.authenticate(token)


def challenge(request: web.Request, exc: Unauthenticated, request_id: str = "") -> web.Response:
    """The 401 with the challenge, once the refusal is counted and audited."""
    host = safe_host(request)
    config = request.app[CONFIG]
    metrics.AUTH_FAILURES.labels(exc.reason).inc()
    vault = vault_for_host(host, config.default_vault) or ""
    config.kv.authentication_refused(
        request.remote or "unknown",
        vault if VAULT_NAME.fullmatch(vault) else "",
        exc.reason,
        request_id,
    )
    tenant = config.tenant
    header = (
        f'Bearer authorization="https://{host}/{tenant}", resource="{challenge_resource(host)}"'
    )
    return error_response(401, "Unauthorized", exc.message, headers={"WWW-Authenticate": header})
