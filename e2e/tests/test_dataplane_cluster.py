"""The data plane on a real cluster: ServiceAccount tokens read secrets through the SDK.

A real ``kvault server`` (no --dev) authenticates callers with TokenReview against the
cluster's API server and issues its own access tokens through the workload-identity token
exchange. The official SDK and ``DefaultAzureCredential`` are the clients.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import SecretClient

from e2e.fixtures import Cluster
from kvault.app.backends import open_kvault
from kvault.hsm.registry import load
from kvault.vault.model import RoleAssignment
from tests.fixtures.devserver import DevServer, start_server, stop

VALUE = "cluster-secret-value-7f3a"


class BearerToken:
    """The minimal TokenCredential: hands the SDK a ServiceAccount token as it is."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken(self.token, 2**31 - 1)


def vault_host(server: DevServer, vault: str) -> str:
    """The Host that names ``vault`` at the server's local address (a cluster server has no
    default vault; in a pod the URL ``https://V.N.svc`` names it)."""
    return f"{vault}.localhost:{server.endpoint.rpartition(':')[2]}"


def _client(server: DevServer, token: str, vault: str) -> SecretClient:
    """The SDK as a pod would build it, with a ServiceAccount token as the bearer."""
    return SecretClient(
        server.endpoint,
        BearerToken(token),
        verify_challenge_resource=False,
        connection_verify=server.env["KVAULT_CA_FILE"],
        headers={"Host": vault_host(server, vault)},
    )


def request_token(cluster: Cluster, ns: str, sa: str, audience: str) -> str:
    spec = {"audiences": [audience], "expirationSeconds": 3600}
    resp = cluster.core.create_namespaced_service_account_token(sa, ns, {"spec": spec})
    return str(resp.status.token)


async def _prepare(data: Path, vault: str, reader: str) -> None:
    """What the operator will do from a Vault resource: the vault, its roles, a secret."""
    kv = await open_kvault(data, load("software", {"key_file": str(data / "hsm.key")}))
    try:
        await kv.vaults.create(
            vault, retention_days=7, role_assignments=[RoleAssignment(reader, "Secrets User")]
        )
        await kv.secrets.set(vault, "db-password", VALUE)
    finally:
        await kv.close()


def _start(data: Path, cluster: Cluster) -> DevServer:
    args = [
        "server",
        "--data-dir",
        str(data),
        "--port",
        "0",
        "--kubeconfig",
        cluster.kubeconfig,
    ]
    return start_server(args, data, ("KVAULT_ENDPOINT", "KVAULT_CA_FILE"))


@pytest.fixture
def served(
    kube_cluster: Cluster, namespace: str, tmp_path: Path
) -> Iterator[tuple[DevServer, str]]:
    cluster = kube_cluster
    for sa in ("reader", "stranger"):
        cluster.core.create_namespaced_service_account(namespace, {"metadata": {"name": sa}})
    vault = f"demo.{namespace}"
    data = tmp_path / "data"
    asyncio.run(_prepare(data, vault, f"{namespace}/reader"))
    server = _start(data, cluster)
    yield server, vault
    stop(server)
    assert not any(VALUE in line for line in server.output)


def test_service_account_token_reads_a_secret_with_the_sdk(
    served: tuple[DevServer, str], kube_cluster: Cluster, namespace: str
) -> None:
    server, vault = served
    token = request_token(kube_cluster, namespace, "reader", "kvault")
    client = _client(server, token, vault)
    assert client.get_secret("db-password").value == VALUE

    stranger = request_token(kube_cluster, namespace, "stranger", "kvault")
    denied = _client(server, stranger, vault)
    with pytest.raises(HttpResponseError) as err:
        denied.get_secret("db-password")
    assert err.value.status_code == 403 and "ForbiddenByRbac" in str(err.value)

    wrong_audience = request_token(kube_cluster, namespace, "reader", "not-kvault")
    bad = _client(server, wrong_audience, vault)
    with pytest.raises(HttpResponseError) as err:
        bad.get_secret("db-password")
    assert err.value.status_code == 401


def test_default_azure_credential_with_workload_identity_env_only(
    served: tuple[DevServer, str], kube_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    server, vault = served
    token_file = tmp_path / "token"
    token_file.write_text(request_token(kube_cluster, namespace, "reader", "kvault"))
    script = textwrap.dedent(
        """
        import sys
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.secrets import SecretClient
        client = SecretClient(sys.argv[1], DefaultAzureCredential(),
                              verify_challenge_resource=False, headers={"Host": sys.argv[2]})
        print(client.get_secret("db-password").value)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "KVAULT_"))}
    env.update(
        AZURE_AUTHORITY_HOST=server.endpoint,
        AZURE_TENANT_ID="kvault",
        AZURE_CLIENT_ID="reader-app",
        AZURE_FEDERATED_TOKEN_FILE=str(token_file),
        REQUESTS_CA_BUNDLE=server.env["KVAULT_CA_FILE"],  # trust kvault's CA, as a pod would
    )
    result = subprocess.run(
        [sys.executable, "-c", script, server.endpoint, vault_host(server, vault)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == VALUE
    audit = [json.loads(line) for line in (server.data_dir / "audit.log").read_text().splitlines()]
    reads = [a for a in audit if a["operation"] == "SecretGet" and a["outcome"] == "ok"]
    assert reads and reads[-1]["principal"] == f"system:serviceaccount:{namespace}:reader"


def test_cli_acts_as_a_service_account_through_the_kubeconfig(
    served: tuple[DevServer, str], kube_cluster: Cluster, namespace: str
) -> None:
    server, _ = served
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVAULT_")}
    env.update(
        KUBECONFIG=kube_cluster.kubeconfig,
        KVAULT_ENDPOINT=server.endpoint,
        KVAULT_CA_FILE=server.env["KVAULT_CA_FILE"],
    )
    base = [sys.executable, "-m", "kvault.cli.main", "secret", "show", "--vault-name", "demo"]
    base += ["--namespace", namespace, "--name", "db-password", "--query", "value", "-o", "tsv"]

    def show_as(service_account: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, "--service-account", service_account],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = show_as("reader")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == VALUE + "\n"
    denied = show_as("stranger")
    assert denied.returncode == 1
    assert denied.stderr.startswith("ERROR: (ForbiddenByRbac)")
