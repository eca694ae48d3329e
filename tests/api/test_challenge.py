"""The 401 challenge comes first, before the path, the body or the parameters are looked at,
and the response headers the SDK relies on are there."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fixtures.devserver import DevServer


@pytest.fixture
async def http(dev_server: DevServer) -> AsyncIterator[aiohttp.ClientSession]:
    ctx = ssl.create_default_context(cafile=dev_server.env["KVAULT_CA_FILE"])
    async with aiohttp.ClientSession(
        base_url=dev_server.endpoint, connector=aiohttp.TCPConnector(ssl=ctx)
    ) as session:
        yield session


def _challenge_ok(header: str, endpoint: str) -> None:
    host = endpoint.removeprefix("https://")
    assert header == (
        f'Bearer authorization="https://{host}/kvault", '
        f'resource="https://{host.rpartition(":")[0]}"'
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/secrets/x?api-version=2026-04-01", b"{not json"),
        ("PUT", "/secrets/bad_name!", b""),  # the SDK's first, body-less request
        ("GET", "/secrets?maxresults=999", b""),
        ("GET", "/no/such/route", b""),
        ("POST", "/secrets/restore", b'{"value": 1}'),
    ],
)
async def test_unauthenticated_requests_get_the_challenge_first(
    http: aiohttp.ClientSession, dev_server: DevServer, method: str, path: str, body: bytes
) -> None:
    async with http.request(
        method, path, data=body, headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 401
        _challenge_ok(r.headers["WWW-Authenticate"], dev_server.endpoint)
        doc = json.loads(await r.read())
        assert doc["error"]["code"] == "Unauthorized"


async def test_a_wrong_token_is_challenged_too(
    http: aiohttp.ClientSession, dev_server: DevServer
) -> None:
    async with http.get("/secrets", headers={"Authorization": "Bearer nope"}) as r:
        assert r.status == 401
        _challenge_ok(r.headers["WWW-Authenticate"], dev_server.endpoint)
        assert "nope" not in await r.text()


async def test_request_ids(http: aiohttp.ClientSession, dev_server: DevServer) -> None:
    headers = {
        "Authorization": f"Bearer {dev_server.env['KVAULT_TOKEN']}",
        "x-ms-client-request-id": "my-request-1",
    }
    async with http.get("/secrets/none-such/", headers=headers) as r:
        assert r.status == 404
        assert r.headers["x-ms-client-request-id"] == "my-request-1"
        assert len(r.headers["x-ms-request-id"]) == 36
        assert (await r.json())["error"]["code"] == "SecretNotFound"


async def test_public_routes_need_no_token(http: aiohttp.ClientSession) -> None:
    async with http.get("/openapi.json") as r:
        assert r.status == 200
        assert "/secrets/{secret-name}" in (await r.json())["paths"]
    async with http.get("/healthz") as r:
        assert r.status == 200


async def test_vault_named_by_host(http: aiohttp.ClientSession, dev_server: DevServer) -> None:
    auth = {"Authorization": f"Bearer {dev_server.env['KVAULT_TOKEN']}"}
    port = dev_server.endpoint.rpartition(":")[2]
    host = {**auth, "Host": f"dev.localhost:{port}"}
    async with http.put("/secrets/by-host", json={"value": "x"}, headers=host) as r:
        assert r.status == 200  # so that the listing below cannot be empty
    async with http.get("/secrets", headers=host) as r:
        assert r.status == 200
        listed = (await r.json())["value"]
        assert listed, "the vault's listing is empty: nothing to check the ids of"
        assert all(i["id"].startswith(f"https://dev.localhost:{port}/") for i in listed)
    async with http.get("/secrets", headers={**auth, "Host": f"other.localhost:{port}"}) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "VaultNotFound"
    async with http.get("/secrets", headers={**auth, "Host": "v1.team.svc:443"}) as r:
        assert r.status == 404
        assert "v1.team" in (await r.json())["error"]["message"]
