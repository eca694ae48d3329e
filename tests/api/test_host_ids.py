"""The Host header chooses a vault but never writes its ids (issue 12, finding 8).

In the cluster (no default vault) a Host that names no vault is 404 ``VaultNotFound`` and ids
carry the vault's canonical URL, the ``Vault``'s ``status.vaultUri``; the dev server keeps its
default vault ``dev`` but roots ids at an address of its own for a Host it does not know.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import subprocess
import sys
from typing import Any

import aiohttp
import pytest
from azure.keyvault.secrets import SecretClient

from kvault.api.config import ApiConfig
from kvault.api.hosts import vault_url
from kvault.controller.vault.spec import domain_name, vault_uri
from kvault.identity.model import Principal
from kvault.identity.static import StaticTokens
from kvault.vault.service import Kvault
from tests.api.conftest import StaticCredential, unique
from tests.fixtures.devserver import ROOT, DevServer

ADMIN = Principal("kvault:root", superuser=True)
TOKEN = "t-" + secrets.token_urlsafe(16)


@pytest.fixture
async def cluster(domain: Kvault, local_server: Any) -> Any:
    """The real app as the cluster serves it: no default vault; vault ``v1.team``."""
    await domain.vaults.create("v1.team", retention_days=7)
    return await local_server(ApiConfig(domain, StaticTokens({TOKEN: ADMIN})))


async def _call(
    server: Any, method: str, path: str, host: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Host": host}
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=server.ssl)) as http,
        http.request(method, f"{server.url}{path}", json=body, headers=headers) as r,
    ):
        return r.status, await r.json()


async def test_cluster_unknown_host_is_vault_not_found(cluster: Any) -> None:
    port = cluster.url.rpartition(":")[2]
    for host in ("evil.com", f"127.0.0.1:{port}", "localhost", "team.svc", "x.y.z.svc"):
        status, doc = await _call(
            cluster, "PUT", "/secrets/s?api-version=7.5", host, {"value": "v"}
        )
        assert status == 404, host
        assert doc["error"]["code"] == "VaultNotFound"
        assert "evil" not in doc["error"]["message"]


async def test_cluster_ids_are_the_vault_uri_whatever_the_host(cluster: Any) -> None:
    port = cluster.url.rpartition(":")[2]
    hosts = [f"v1.team.svc:{port}", "V1.TEAM.svc.cluster.local.", f"v1.team.localhost:{port}"]
    for n, host in enumerate(hosts):
        status, doc = await _call(
            cluster, "PUT", f"/secrets/s{n}?api-version=7.5", host, {"value": "v"}
        )
        assert status == 200, doc
        assert doc["id"].startswith(f"https://v1.team.svc/secrets/s{n}/"), (host, doc["id"])
    status, doc = await _call(cluster, "GET", "/secrets?maxresults=1", f"v1.team.svc:{port}")
    assert status == 200
    assert doc["value"][0]["id"].startswith("https://v1.team.svc/secrets/")
    # The link a client follows stays on the authority it used (through a port-forward too).
    assert doc["nextLink"].startswith(f"https://v1.team.svc:{port}/secrets?")


async def test_cluster_sdk_through_a_port_forward(cluster: Any) -> None:
    """The official SDK at a forwarded address, naming the vault by its Host: the secret's id
    is the vault's URL, and the SDK reads by it."""
    port = cluster.url.rpartition(":")[2]

    def roundtrip() -> None:
        with SecretClient(
            cluster.url,
            StaticCredential(TOKEN),
            verify_challenge_resource=False,
            connection_verify=cluster.ca_file,
            headers={"Host": f"v1.team.svc:{port}"},
        ) as client:
            name = unique()
            made = client.set_secret(name, "value-1")
            assert made.id == f"https://v1.team.svc/secrets/{name}/{made.properties.version}"
            assert made.properties.vault_url == "https://v1.team.svc"
            assert client.get_secret(name, made.properties.version).value == "value-1"

    await asyncio.to_thread(roundtrip)


def test_vault_url_is_the_vault_status_uri() -> None:
    assert vault_url(domain_name("main", "team-a")) == vault_uri("main", "team-a")
    assert vault_url("dev") == "https://dev.localhost"


async def test_dev_server_does_not_echo_an_unknown_host(dev_server: DevServer) -> None:
    env = dev_server.env
    ctx = ssl.create_default_context(cafile=env["KVAULT_CA_FILE"])
    name = unique()
    auth = {"Authorization": f"Bearer {env['KVAULT_TOKEN']}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
        unknown = ("evil.com", "evil.com:443", "kv.example.test:8443")
        for host in unknown:
            async with http.put(
                f"{dev_server.endpoint}/secrets/{name}?api-version=7.5",
                json={"value": "v"},
                headers={**auth, "Host": host},
            ) as r:
                assert r.status == 200  # the dev server's default vault answers
                doc = await r.json()
                assert doc["id"].startswith(f"{dev_server.endpoint}/secrets/{name}/"), doc["id"]
        for host in unknown:
            async with http.get(
                f"{dev_server.endpoint}/secrets/{name}/versions?maxresults=1",
                headers={**auth, "Host": host},
            ) as r:
                text = await r.text()
                assert "evil" not in text and "example" not in text
                assert (await r.json())["nextLink"].startswith(dev_server.endpoint + "/")
        # This machine's names and the vault's own are kept as asked (the SDK follows ids).
        port = dev_server.endpoint.rpartition(":")[2]
        for host in (f"localhost:{port}", f"dev.localhost:{port}", f"[::1]:{port}"):
            async with http.get(
                f"{dev_server.endpoint}/secrets/{name}", headers={**auth, "Host": host}
            ) as r:
                assert (await r.json())["id"].startswith(f"https://{host}/secrets/{name}/")


def test_cluster_server_has_no_default_vault_flag(tmp_path: Any) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "kvault.cli.main",
            "server",
            "--data-dir",
            str(tmp_path),
            "--default-vault",
            "dev",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "--default-vault" in run.stderr


async def test_sdk_keeps_working_against_the_dev_server(dev_server: DevServer) -> None:
    env = dev_server.env

    def roundtrip() -> None:
        with SecretClient(
            env["KVAULT_ENDPOINT"],
            StaticCredential(env["KVAULT_TOKEN"]),
            verify_challenge_resource=False,
            connection_verify=env["KVAULT_CA_FILE"],
        ) as client:
            name = unique()
            created = client.set_secret(name, "v")
            assert (created.id or "").startswith(f"{env['KVAULT_ENDPOINT']}/secrets/{name}/")
            assert [p.id for p in client.list_properties_of_secret_versions(name)] == [created.id]

    await asyncio.to_thread(roundtrip)
