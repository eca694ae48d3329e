"""Bad input gets a 400 BadParameter that names what was wrong, and changes nothing."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.api.conftest import unique
from tests.fixtures.devserver import DevServer


@pytest.fixture
async def http(dev_server: DevServer) -> AsyncIterator[aiohttp.ClientSession]:
    ctx = ssl.create_default_context(cafile=dev_server.env["KVAULT_CA_FILE"])
    async with aiohttp.ClientSession(
        base_url=dev_server.endpoint,
        connector=aiohttp.TCPConnector(ssl=ctx),
        headers={"Authorization": f"Bearer {dev_server.env['KVAULT_TOKEN']}"},
    ) as session:
        yield session


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"{not json", "JSON"),
        (b"[1, 2]", "object"),
        (b"", "body"),
        (b"{}", "value"),
        (b'{"value": 5}', "value"),
        (b'{"value": "x", "contentType": 1}', "contentType"),
        (b'{"value": "x", "attributes": {"enabled": "yes"}}', "attributes.enabled"),
        (b'{"value": "x", "attributes": {"exp": -1}}', "attributes.exp"),
        (b'{"value": "x", "attributes": []}', "attributes"),
        (b'{"value": "x", "tags": {"a": 1}}', "tags"),
        (b'{"value": "\\ud800"}', "UTF-8"),
    ],
)
async def test_set_with_bad_body(http: aiohttp.ClientSession, body: bytes, names: str) -> None:
    name = unique()
    async with http.put(
        f"/secrets/{name}?api-version=7.5",
        data=body,
        headers={"Content-Type": "application/json"},
    ) as r:
        assert r.status == 400
        error = (await r.json())["error"]
        assert error["code"] == "BadParameter"
        assert names in error["message"]
    async with http.get(f"/secrets/{name}/") as r:
        assert r.status == 404  # nothing was written


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/secrets?maxresults=26", "maxresults"),
        ("/secrets?maxresults=abc", "maxresults"),
        ("/secrets?$skiptoken=%%%", "continuation token"),
        ("/secrets/x/not-a-version", "version"),
    ],
)
async def test_bad_query_and_path(http: aiohttp.ClientSession, path: str, names: str) -> None:
    async with http.get(path) as r:
        assert r.status == 400
        assert names in (await r.json())["error"]["message"]


async def test_restore_rejects_garbage(http: aiohttp.ClientSession) -> None:
    for value in ("not base64 !", "AAAA"):
        async with http.post("/secrets/restore", json={"value": value}) as r:
            assert r.status == 400
            assert "value" in (await r.json())["error"]["message"]


async def test_oversized_body(http: aiohttp.ClientSession) -> None:
    async with http.put(f"/secrets/{unique()}", json={"value": "x" * 300_000}) as r:
        assert r.status == 413
        assert (await r.json())["error"]["code"] == "RequestTooLarge"


async def test_dates_beyond_year_9999_are_refused(http: aiohttp.ClientSession) -> None:
    """Clients turn dates into datetimes, which end with year 9999."""
    body = {"value": "x", "attributes": {"exp": 253_402_300_800}}
    async with http.put(f"/secrets/{unique()}", json=body) as r:
        assert r.status == 400
        assert "attributes.exp" in (await r.json())["error"]["message"]
