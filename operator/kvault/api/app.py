"""Assemble the data-plane application: one middleware, the routes, the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from kvault.api import limits, openapi, routes_backup, routing
from kvault.api.auth import PUBLIC
from kvault.api.config import CONFIG, ApiConfig
from kvault.api.middleware import middleware
from kvault.api.throttle import THROTTLE, Throttle

#: Bodies are small JSON (values are at most 25 KiB); a larger one is refused (413) before it
#: is read when declared (:mod:`kvault.api.connections`), as it passes the limit when chunked.
MAX_BODY = limits.MAX_BODY


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def noop(_: web.Request) -> web.Response:
    """Authenticated, does nothing: the baseline the GET benchmark compares against."""
    return web.Response(body=b"{}", content_type="application/json")


def build_app(config: ApiConfig) -> web.Application:
    app = web.Application(middlewares=[middleware], client_max_size=MAX_BODY)
    app[CONFIG] = config
    app[THROTTLE] = Throttle(config.limits)
    app.router.add_get("/healthz", healthz, name=PUBLIC + "healthz")
    app.router.add_get("/healthz/noop", noop, name="noop")
    app.router.add_get("/openapi.json", openapi.handler, name=PUBLIC + "openapi")
    routing.add_routes(app, openapi.ROUTES)
    routing.add_routes(app, routes_backup.ROUTES)  # kvault's own: outside /openapi.json
    return app
