"""The route table: each route module lists its routes once, as data, and both the router
(:func:`add_routes`) and ``/openapi.json`` (:mod:`kvault.api.openapi`) are built from it.

Path parameters are named as aiohttp matches them (``{name}``, ``{version}``); each route
carries their OpenAPI description, whose pattern comes from :mod:`kvault.vault.names`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aiohttp import web

from kvault.vault.names import ITEM_NAME, VERSION

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: A documented response: status -> (schema name, or "" for no body; description).
Responses = Mapping[str, tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Route:
    """One method on one path. ``operation_id`` ``None``: an alias, served but not in the
    document (``/secrets/{name}`` beside the documented ``/secrets/{name}/``). ``spec`` is a
    whole hand-written OpenAPI operation for routes outside the Key Vault shape (OAuth).
    ``query`` documents the query parameters the handler reads beyond ``api-version`` and
    paging."""

    method: str
    path: str
    handler: Handler
    operation_id: str | None = None
    ok: Responses = field(default_factory=dict)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    body: str | None = None
    paging: bool = False
    allow_head: bool = True
    name: str | None = None
    spec: Mapping[str, Any] | None = None
    query: tuple[Mapping[str, Any], ...] = ()


def item_params(kind: str) -> Mapping[str, Mapping[str, Any]]:
    """The ``{name}`` and ``{version}`` path parameters of an item kind's routes."""
    return MappingProxyType(
        {
            "name": {
                "name": f"{kind}-name",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": f"^{ITEM_NAME.pattern}$"},
            },
            "version": {
                "name": f"{kind}-version",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": f"^{VERSION.pattern}$"},
            },
        }
    )


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    """Register in table order (specific paths before patterns, as aiohttp matches)."""
    r = app.router
    for route in routes:
        if route.method == "GET":
            r.add_get(route.path, route.handler, name=route.name, allow_head=route.allow_head)
        else:
            r.add_route(route.method, route.path, route.handler, name=route.name)
