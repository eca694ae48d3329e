"""What the data plane is built from: the domain, who is asking, and how vaults are named."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kvault.api.throttle import RateLimits
from kvault.identity.model import Authenticator
from kvault.vault.service import Kvault

#: ``POST /{tenant}/oauth2/v2.0/token``: the decoded form in; a JSON-able mapping (200, or
#: 400 when it has ``error``) or an object with ``status``, ``body`` and ``headers`` out.
Exchange = Callable[[Mapping[str, str]], Awaitable[Any]]

DEV_TENANT = "kvault"


@dataclass(frozen=True, slots=True)
class ApiConfig:
    kv: Kvault
    authenticator: Authenticator
    #: The vault of requests whose Host names none (the dev server's ``dev``), or ``None``:
    #: then (the cluster) an unknown Host is 404 ``VaultNotFound`` and ids carry each vault's
    #: canonical URL (:func:`kvault.api.hosts.vault_url`), never the request's Host.
    default_vault: str | None = None
    #: Tenant named in the challenge; azure-identity insists it equals AZURE_TENANT_ID.
    tenant: str = DEV_TENANT
    exchange: Exchange | None = None
    #: Request rate limits per vault and per principal (429 ``Throttled``); default: none.
    limits: RateLimits = field(default_factory=RateLimits)


CONFIG = web.AppKey("kvault.config", ApiConfig)
