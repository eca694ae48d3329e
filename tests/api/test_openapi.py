"""``/openapi.json`` is generated from the route tables: every documented operation is a
route the server registers, and every registered route is documented or a named alias."""

from __future__ import annotations

from aiohttp import web

from kvault.api import (
    openapi,
    routes_arm,
    routes_certificates,
    routes_keys,
    routes_secrets,
    routing,
)
from kvault.vault.names import ITEM_NAME, VERSION


def _registered() -> set[tuple[str, str]]:
    app = web.Application()
    routing.add_routes(app, openapi.ROUTES)
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        out.add((route.method, str(path)))
    return out


def test_every_documented_operation_is_served() -> None:
    doc = openapi.document()
    registered = _registered()
    by_doc = {openapi.document_path(r): r.path for r in openapi.ROUTES}
    for path, ops in doc["paths"].items():
        if path.startswith("/healthz"):
            continue  # registered by the app, beside the tables
        for method in ops:
            assert (method.upper(), by_doc[path]) in registered, (method, path)


def test_served_routes_are_documented_or_aliases() -> None:
    tables = routes_secrets.ROUTES + routes_keys.ROUTES + routes_certificates.ROUTES
    documented = {(r.method, r.path) for r in tables if r.operation_id is not None}
    aliases = {(r.method, r.path) for r in tables if r.operation_id is None}
    served = {(m, p) for m, p in _registered() if m != "HEAD" and "oauth2" not in p}
    served -= {(m, p) for m, p in served if "openid" in p or p.startswith("/arm/")}
    assert served == documented | aliases
    assert len([r for r in routes_secrets.ROUTES if r.operation_id is not None]) == 14
    assert len([r for r in routes_keys.ROUTES if r.operation_id is not None]) == 25
    assert len([r for r in routes_certificates.ROUTES if r.operation_id is not None]) == 29


def test_name_patterns_come_from_the_domain() -> None:
    doc = openapi.document()
    params = doc["paths"]["/secrets/{secret-name}/{secret-version}"]["get"]["parameters"]
    patterns = {p["name"]: p["schema"]["pattern"] for p in params if p["in"] == "path"}
    assert patterns == {
        "secret-name": f"^{ITEM_NAME.pattern}$",
        "secret-version": f"^{VERSION.pattern}$",
    }


def test_arm_routes_are_documented_but_the_double_slash_alias() -> None:
    """What ``az cloud register`` and ``az login`` call: hand-written specs (no Key Vault
    shape); ``/arm//metadata/endpoints`` is the CLI's spelling of the same operation."""
    doc = openapi.document()
    documented = {r.path for r in routes_arm.ROUTES if r.spec is not None}
    assert documented == {
        "/arm/metadata/endpoints",
        "/arm/subscriptions",
        "/arm/subscriptions/{subscription}",
    }
    for path in documented:
        assert "get" in doc["paths"][path], path
    assert "/arm//metadata/endpoints" not in doc["paths"]
    assert doc["paths"]["/arm/metadata/endpoints"]["get"]["security"] == []
