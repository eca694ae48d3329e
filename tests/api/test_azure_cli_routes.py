"""What the Azure CLI asks of kvault before a Key Vault call (fast tier; the CLI itself runs in
test_azure_cli.py): the ARM metadata ``az cloud register`` reads, the subscription ``az login``
lists, and the dev server's token endpoint, which takes the root token as the assertion."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from kvault.api.app import build_app
from kvault.api.config import ApiConfig
from kvault.api.routes_arm import subscription_id
from kvault.identity.exchange import ASSERTION_TYPE
from kvault.identity.model import Principal
from kvault.identity.static import StaticExchange, StaticTokens
from kvault.vault.service import Kvault
from tests.fixtures.devserver import DevServer

TOKEN = "root-token"
FORM = {
    "grant_type": "client_credentials",
    "client_assertion_type": ASSERTION_TYPE,
    "client_assertion": TOKEN,
    "client_id": "kvault-cli",
    "scope": "https://127.0.0.1:8443/arm//.default",
    "client_info": "1",
    "claims": '{"access_token": {"xms_cc": {"values": ["CP1"]}}}',
}


def _config(kv: Kvault, default_vault: str | None = "dev") -> ApiConfig:
    tokens = StaticTokens({TOKEN: Principal("root", superuser=True)})
    return ApiConfig(
        kv, tokens, default_vault=default_vault, exchange=StaticExchange(tokens).exchange
    )


@pytest.fixture
async def http(domain: Kvault) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(_config(domain)))) as client:
        yield client


@pytest.mark.parametrize("path", ["/arm/metadata/endpoints", "/arm//metadata/endpoints"])
async def test_metadata_endpoints_name_this_server(http: TestClient[Any, Any], path: str) -> None:
    async with http.get(
        path, params={"api-version": "2022-09-01"}, headers={"Host": "127.0.0.1:8443"}
    ) as r:
        assert r.status == 200
        body = await r.json()
    assert body["resourceManager"] == "https://127.0.0.1:8443/arm/"
    assert body["authentication"]["loginEndpoint"] == "https://127.0.0.1:8443"
    assert body["authentication"]["audiences"] == ["https://127.0.0.1:8443/arm/"]
    assert body["authentication"]["tenant"] == "kvault"
    # az adds the dot: https://dev + .localhost:8443 is the dev vault, through this listener.
    assert body["suffixes"] == {"keyVaultDns": "localhost:8443"}


async def test_metadata_suffix_without_a_port_on_443(http: TestClient[Any, Any]) -> None:
    async with http.get("/arm/metadata/endpoints", headers={"Host": "localhost"}) as r:
        assert (await r.json())["suffixes"] == {"keyVaultDns": "localhost"}


async def test_a_cluster_names_no_suffix(domain: Kvault) -> None:
    """In a cluster every namespace is a suffix of its own (``kvault az-cloud --namespace``)."""
    client = TestClient(TestServer(build_app(_config(domain, None))))
    async with client, client.get("/arm/metadata/endpoints") as r:
        assert (await r.json())["suffixes"] == {}


async def test_subscriptions_need_a_token_and_list_one(http: TestClient[Any, Any]) -> None:
    async with http.get("/arm/subscriptions", params={"api-version": "2022-12-01"}) as r:
        assert r.status == 401
        assert "WWW-Authenticate" in r.headers
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with http.get("/arm/subscriptions", headers=auth) as r:
        assert r.status == 200
        (only,) = (await r.json())["value"]
    sid = subscription_id("kvault")
    assert only["id"] == f"/subscriptions/{sid}"
    assert only["subscriptionId"] == sid
    assert only["tenantId"] == "kvault"
    assert only["state"] == "Enabled"
    async with http.get(f"/arm/subscriptions/{sid.upper()}", headers=auth) as r:
        assert r.status == 200
        assert (await r.json())["subscriptionId"] == sid
    async with http.get(f"/arm/subscriptions/{'0' * 36}", headers=auth) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "SubscriptionNotFound"


async def test_openid_configuration_issuer_names_the_tenant(http: TestClient[Any, Any]) -> None:
    """``az login --tenant kvault`` takes the tenant from ``issuer.split('/')[3]``."""
    async with http.get(
        "/kvault/v2.0/.well-known/openid-configuration", headers={"Host": "127.0.0.1:8443"}
    ) as r:
        body = await r.json()
    assert body["issuer"].split("/")[3] == "kvault"
    assert body["token_endpoint"] == "https://127.0.0.1:8443/kvault/oauth2/v2.0/token"


async def test_static_exchange_gives_back_the_token(http: TestClient[Any, Any]) -> None:
    async with http.post("/kvault/oauth2/v2.0/token", data=FORM) as r:
        assert r.status == 200
        assert r.headers["Cache-Control"] == "no-store"
        body = await r.json()
    assert body["access_token"] == TOKEN
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"client_assertion": "not-ours"}, 401, "invalid_client"),
        ({"client_secret": TOKEN}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"client_assertion_type": "x"}, 400, "invalid_request"),
        ({"client_assertion": ""}, 400, "invalid_request"),
    ],
)
async def test_static_exchange_refusals(
    http: TestClient[Any, Any], change: dict[str, str], status: int, error: str
) -> None:
    async with http.post("/kvault/oauth2/v2.0/token", data={**FORM, **change}) as r:
        assert r.status == status
        body = await r.json()
    assert body["error"] == error
    assert TOKEN not in body["error_description"]


async def test_the_dev_server_exchanges_its_root_token(dev_server: DevServer) -> None:
    """``kvault server --dev`` wires the static exchange: az login's request, its answer."""
    env = dev_server.env
    url = f"{env['KVAULT_ENDPOINT']}/kvault/oauth2/v2.0/token"
    form = {**FORM, "client_assertion": env["KVAULT_TOKEN"]}
    async with aiohttp.ClientSession() as session:
        ctx = ssl.create_default_context(cafile=env["KVAULT_CA_FILE"])
        async with session.post(url, data=form, ssl=ctx) as r:
            assert r.status == 200
            assert (await r.json())["access_token"] == env["KVAULT_TOKEN"]
        async with session.post(url, data={**form, "client_assertion": "x"}, ssl=ctx) as r:
            assert r.status == 401
