"""The helpers every data-plane request runs, made cheaper for secret GET (issue 14), answer
exactly what they answered before: request ids, JSON bodies, metrics, hosts."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kvault.api import hosts
from kvault.api.app import build_app
from kvault.api.config import ApiConfig
from kvault.api.metrics import REGISTRY
from kvault.api.middleware import request_id
from kvault.api.request import dump
from kvault.identity.model import Principal
from kvault.identity.static import StaticTokens
from kvault.vault.service import Kvault

TOKEN = "hot-token"


def test_request_ids_are_random_uuid4_strings() -> None:
    seen = {request_id() for _ in range(2000)}
    assert len(seen) == 2000
    for rid in seen:
        parsed = uuid.UUID(rid)
        assert (str(parsed), parsed.version, parsed.variant) == (rid, 4, uuid.RFC_4122)


@pytest.mark.parametrize(
    ("doc", "as_json"),
    [
        ({"value": "plain", "attributes": {"enabled": True, "exp": None, "created": 1}}, False),
        ({"value": "é ü \u2028 \U0001f511", "tags": {"k": "ünïcode"}}, True),  # escaped
        ({"big": 2**64, "list": [1, "x", None]}, True),  # beyond orjson's integers
        ([{"a": 1}, {"b": [True, False]}], False),
    ],
)
def test_a_body_is_the_same_json_and_plain_ascii(doc: Any, as_json: bool) -> None:
    """orjson's compact bytes, or json's own (its \\u escapes: no charset is declared)."""
    body = dump(doc)
    assert json.loads(body) == doc
    assert body.isascii()
    assert (body == json.dumps(doc).encode()) is as_json


def test_host_helpers_answer_as_before_from_their_caches() -> None:
    for _ in range(2):  # the second time from the caches
        assert hosts.authority("LocalHost:8443") == "localhost:8443"
        assert hosts.authority("[::1]:8443") == "[::1]:8443"
        assert hosts.local_base("127.0.0.1:9", "dev") == "https://127.0.0.1:9"
        assert hosts.local_base("v.ns.svc", "v.ns") == "https://v.ns.svc"
        assert hosts.local_base("example.com", "dev") is None


def _count(route: str, status: str) -> float:
    labels = {"route": route, "method": "GET", "status": status}
    return REGISTRY.get_sample_value("kvault_http_requests_total", labels) or 0.0


def _observed(route: str) -> float:
    return REGISTRY.get_sample_value("kvault_http_request_seconds_count", {"route": route}) or 0.0


async def test_every_request_is_counted_once_by_route_method_and_status(domain: Kvault) -> None:
    await domain.vaults.create("dev", sku="standard", retention_days=7)
    root = Principal("kvault:root", superuser=True)
    app = build_app(ApiConfig(domain, StaticTokens({TOKEN: root}), default_vault="dev"))
    before = (_count("/healthz/noop", "200"), _count("/healthz/noop", "401"))
    seconds = _observed("/healthz/noop")
    async with TestClient(TestServer(app)) as client:
        for _ in range(3):
            async with client.get("/healthz/noop", headers={"Authorization": f"Bearer {TOKEN}"}):
                pass
        async with client.get("/healthz/noop") as refused:
            assert refused.status == 401
    assert (_count("/healthz/noop", "200"), _count("/healthz/noop", "401")) == (
        before[0] + 3,
        before[1] + 1,
    )
    assert _observed("/healthz/noop") == seconds + 4
