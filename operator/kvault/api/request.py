"""The first and last step of every item request, for any kind: resolve the vault the Host
names, let the domain authorise the caller before the body is read, answer JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from kvault.api import paging
from kvault.api.auth import PRINCIPAL, safe_host
from kvault.api.config import CONFIG
from kvault.api.hosts import vault_for_host
from kvault.api.middleware import REQUEST_ID
from kvault.errors import NotFound
from kvault.vault.core import Caller
from kvault.vault.model import VAULT_NOT_FOUND, Page
from kvault.vault.service import Kvault

_JSON = "application/json"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    kv: Kvault
    vault: str
    base: str  # https://host[:port], the prefix of every id
    caller: Caller


async def begin(request: web.Request, operation: str, name: str | None = None) -> Call:
    """The vault the Host names, after the domain checked the caller may run ``operation``
    (on the item ``name`` of the operation's kind; ``None`` for listings and restore)."""
    config = request.app[CONFIG]
    host = safe_host(request)
    vault = vault_for_host(host, config.default_vault)
    if vault is None:
        raise NotFound(f"no vault is addressed by host {host!r}", VAULT_NOT_FOUND)
    info = await config.kv.vault(vault)
    caller = Caller.of(request[PRINCIPAL], request[REQUEST_ID])
    config.kv.authorize(caller, info, operation, name)
    return Call(config.kv, vault, "https://" + host, caller)


def ok(doc: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(doc).encode(), content_type=_JSON)


async def listed(
    request: web.Request,
    call: Call,
    fetch: Callable[..., Awaitable[Page[T]]],
    shape: Callable[[T], Any],
) -> web.Response:
    """One page of a listing: ``fetch`` (the domain's list bound to its vault and item) with
    the query's page size and token, each item shaped by ``shape``."""
    found = await fetch(
        max_results=paging.max_results(request.query),
        token=paging.skip_token(request.query),
        caller=call.caller,
    )
    return page(request, call, [shape(item) for item in found.items], found.next_token)


def page(request: web.Request, call: Call, items: list[Any], token: str | None) -> web.Response:
    """A listing page with Azure's ``nextLink`` (on the caller's authority)."""
    size = paging.max_results(request.query)
    link = paging.next_link(call.base, request.path, request.query, token, size)
    return ok({"value": items, "nextLink": link})
