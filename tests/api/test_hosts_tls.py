"""Vault addressing by Host, and certificates that validate for every way a vault is named."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from kvault.api.hosts import challenge_resource, vault_for_host
from kvault.api.tls import CertificateAuthority, ServerTLS


@pytest.mark.parametrize(
    ("host", "vault"),
    [
        ("v1.team.svc", "v1.team"),
        ("v1.team.svc:8443", "v1.team"),
        ("V1.Team.svc.cluster.local.", "v1.team"),
        ("dev.localhost:8443", "dev"),
        ("payments.shop.localhost", "payments.shop"),
        ("127.0.0.1:8443", "default"),
        ("localhost", "default"),
        ("[::1]:8443", "default"),
        ("kv.example.com", "default"),
        ("team.svc", "default"),
    ],
)
def test_vault_for_host(host: str, vault: str) -> None:
    assert vault_for_host(host, "default") == vault
    if vault == "default":
        assert vault_for_host(host, None) is None


def test_challenge_resource() -> None:
    assert challenge_resource("v1.team.svc:8443") == "https://team.svc"
    assert challenge_resource("dev.localhost:8443") == "https://dev.localhost"
    assert challenge_resource("127.0.0.1:8443") == "https://127.0.0.1"


async def _handshake(tls: ServerTLS, ca: str, server_name: str) -> None:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls.context)
    port = server.sockets[0].getsockname()[1]
    try:
        ctx = ssl.create_default_context(cafile=ca)
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname=server_name
        )
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "name", ["localhost", "dev.localhost", "127.0.0.1", "v1.team.svc", "a.b.localhost"]
)
async def test_certificates_validate(tmp_path: Path, name: str) -> None:
    tls = ServerTLS(CertificateAuthority.load_or_create(tmp_path / "tls"), tmp_path / "tls")
    await _handshake(tls, str(tls.ca.cert_file), name)


def test_ca_is_kept_and_its_key_private(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path)
    again = CertificateAuthority.load_or_create(tmp_path)
    assert first.cert == again.cert
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca-key.pem", "ca.pem"]
