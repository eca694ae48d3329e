"""The first and last step of every item request, for any kind: resolve the vault the Host
names, apply the rate limits, let the domain authorise the caller before the body is read,
answer JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from aiohttp import web

from kvault.api import paging
from kvault.api.auth import PRINCIPAL, safe_host
from kvault.api.config import CONFIG
from kvault.api.hosts import authority, local_base, vault_for_host, vault_url
from kvault.api.middleware import REQUEST_ID
from kvault.api.throttle import THROTTLE
from kvault.errors import NotFound
from kvault.vault.core import Caller
from kvault.vault.model import VAULT_NOT_FOUND, Page
from kvault.vault.names import VAULT_NAME
from kvault.vault.service import Kvault

_JSON = "application/json"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    kv: Kvault
    vault: str
    base: str  # the prefix of every id: the vault's URL, never an arbitrary Host
    caller: Caller
    #: The prefix of links the client follows (``nextLink``): the authority it used when that
    #: named this vault, so that paging works through a port-forward; else ``base``.
    link_base: str = ""


async def begin(request: web.Request, operation: str, name: str | None = None) -> Call:
    """The vault the Host names, after the rate limits admitted the request and the domain
    checked the caller may run ``operation`` (on the item ``name`` of the operation's kind;
    ``None`` for listings and restore)."""
    config = request.app[CONFIG]
    host = safe_host(request)
    vault = vault_for_host(host, config.default_vault)
    if vault is None or not VAULT_NAME.fullmatch(vault):
        raise NotFound("no vault is addressed by this request's host", VAULT_NOT_FOUND)
    principal = request[PRINCIPAL]
    request.app[THROTTLE].admit(vault, principal.name)
    info = await config.kv.vault(vault)
    caller = Caller.of(principal, request[REQUEST_ID])
    config.kv.authorize(caller, info, operation, name)
    if config.default_vault is None:  # the cluster: the Host named this vault
        return Call(config.kv, vault, vault_url(vault), caller, "https://" + authority(host))
    base = local_base(host, vault) or server_address(request)
    return Call(config.kv, vault, base, caller, base)


def server_address(request: web.Request) -> str:
    """``https://`` and the address the request came in on (the server's own, not the
    client's word): the dev server's ids for a Host that names nothing of ours."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return "https://localhost"
    address, port = str(sockname[0]), int(sockname[1])
    if ":" in address:
        address = f"[{address}]"
    return f"https://{address}:{port}"


def ok(doc: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=dump(doc), content_type=_JSON)


def dump(doc: Any) -> bytes:
    """``doc`` as a JSON body: orjson's compact bytes when they are plain ASCII (several times
    faster), else json's, which escape the rest as ``\\uXXXX`` (no charset is declared)."""
    try:
        body: bytes = orjson.dumps(doc)
    except TypeError:  # an integer beyond 64 bits, a key that is not a string
        return json.dumps(doc).encode()
    return body if body.isascii() else json.dumps(doc).encode()


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
    link = paging.next_link(call.link_base or call.base, request.path, request.query, token, size)
    return ok({"value": items, "nextLink": link})
