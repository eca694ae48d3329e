"""An unmodified app using DefaultAzureCredential with only the workload-identity variables
(plus the CA bundle): its projected token is exchanged at our token endpoint, and the
exchanged token reads the vault."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from kvault.api.config import ApiConfig
from kvault.identity.model import Principal, RoleAssignment
from kvault.identity.static import StaticTokens
from kvault.vault.service import Kvault

ASSERTION = "projected-service-account-token"
ACCESS = "kvault-access-token"
APP = Principal("system:serviceaccount:team:app")


class FakeExchange:
    """Stands in for identity's TokenExchange: one known assertion, one access token."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []

    async def __call__(self, form: Mapping[str, str]) -> dict[str, Any]:
        self.forms.append(dict(form))
        if form.get("client_assertion") != ASSERTION:
            return {"error": "invalid_client", "error_description": "assertion refused"}
        return {"access_token": ACCESS, "token_type": "Bearer", "expires_in": 3600}


def _read_secret(url: str) -> str:
    credential = DefaultAzureCredential()
    with SecretClient(url, credential, verify_challenge_resource=False) as client:
        return client.get_secret("db-password").value or ""


@pytest.fixture
def workload_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME"):
        monkeypatch.delenv(var, raising=False)
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(ASSERTION)
    monkeypatch.setenv("AZURE_TENANT_ID", "kvault")
    monkeypatch.setenv("AZURE_CLIENT_ID", "team-app")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    return token_file


async def test_default_azure_credential_via_token_exchange(
    domain: Kvault, local_server: Any, workload_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await domain.vaults.create(
        "apps", retention_days=7, role_assignments=[RoleAssignment("team/app", "Secrets User")]
    )
    await domain.secrets.set("apps", "db-password", "hunter2")
    exchange = FakeExchange()
    config = ApiConfig(domain, StaticTokens({ACCESS: APP}), default_vault="apps", exchange=exchange)
    server = await local_server(config)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", server.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_file)

    assert await asyncio.to_thread(_read_secret, server.url) == "hunter2"
    (form,) = exchange.forms
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["client_id"] == "team-app"

    workload_env.write_text("someone-elses-token")
    monkeypatch.setenv("AZURE_CLIENT_ID", "other")  # a new credential re-reads the file
    with pytest.raises(ClientAuthenticationError):
        await asyncio.to_thread(_read_secret, server.url)


async def test_token_endpoint_without_exchange(domain: Kvault, local_server: Any) -> None:
    server = await local_server(ApiConfig(domain, StaticTokens({})))
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/kvault/oauth2/v2.0/token",
            data={"grant_type": "client_credentials"},
            ssl=server.ssl,
        ) as r:
            assert r.status == 400
            assert (await r.json())["error"] == "unsupported_grant_type"
        # What MSAL-based credentials fetch before the token endpoint.
        async with http.get(
            f"{server.url}/kvault/v2.0/.well-known/openid-configuration", ssl=server.ssl
        ) as r:
            assert r.status == 200
            assert (await r.json())["token_endpoint"] == f"{server.url}/kvault/oauth2/v2.0/token"
