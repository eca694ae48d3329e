"""kvault's Kubernetes client: configuration loading and the authenticated transport.

The transport is checked against a local HTTPS server that demands a client certificate;
the real API server is exercised by e2e/tests/test_identity_cluster.py.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from kvault.errors import ConfigError, Unavailable
from kvault.identity.tokenreview import KubeTokenReviewer
from kvault.kube.client import (
    KubeApiError,
    KubeClient,
    KubeConfig,
    from_kubeconfig,
    in_cluster,
    load_config,
)
from tests.identity.conftest import self_signed


def kubeconfig(tmp: Path, user: dict[str, Any], cluster: dict[str, Any] | None = None) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "main",
        "contexts": [
            {"name": "main", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}},
            {"name": "other", "context": {"cluster": "c"}},
        ],
        "clusters": [{"name": "c", "cluster": cluster or {"server": "https://10.0.0.1:6443/"}}],
        "users": [{"name": "u", "user": user}],
    }
    path = tmp / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_kubeconfig_with_inline_data(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    path = kubeconfig(
        tmp_path,
        {
            "client-certificate-data": b64(cert.read_bytes()),
            "client-key-data": b64(key.read_bytes()),
        },
        {"server": "https://10.0.0.1:6443/", "certificate-authority-data": b64(cert.read_bytes())},
    )
    cfg = from_kubeconfig(path)
    assert cfg.server == "https://10.0.0.1:6443"
    assert cfg.namespace == "team-a"
    assert cfg.ca_pem == cert.read_text()
    assert cfg.cert_pem == cert.read_bytes() and cfg.key_pem == key.read_bytes()
    assert "PRIVATE" not in repr(cfg) and "client-cert" in repr(cfg)
    assert from_kubeconfig(path, "other").cert_pem is None


def test_kubeconfig_with_relative_files_and_token_file(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    (tmp_path / "token").write_text("tok-123\n")
    path = kubeconfig(
        tmp_path,
        {"tokenFile": "token"},
        {"server": "https://k:6443", "certificate-authority": cert.name},
    )
    cfg = from_kubeconfig(path)
    assert cfg.token_file == tmp_path / "token" and cfg.ca_pem == cert.read_text()
    assert "tok-123" not in repr(cfg)


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"exec": {"command": "aws"}}, "exec and auth-provider"),
        ({"auth-provider": {"name": "oidc"}}, "exec and auth-provider"),
    ],
)
def test_unsupported_kubeconfigs(tmp_path: Path, user: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_kubeconfig(kubeconfig(tmp_path, user))
    with pytest.raises(ConfigError, match="no context named 'missing'"):
        from_kubeconfig(kubeconfig(tmp_path, {"token": "t"}), "missing")
    (tmp_path / "bad").write_text(": [")
    with pytest.raises(ConfigError, match="cannot read kubeconfig"):
        from_kubeconfig(tmp_path / "bad")


def test_in_cluster(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    (tmp_path / "ca.crt").write_bytes(cert.read_bytes())
    (tmp_path / "namespace").write_text("kvault-system\n")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    cfg = in_cluster(tmp_path, env)
    assert cfg.server == "https://[fd00::1]:443"
    assert cfg.token_file == tmp_path / "token" and cfg.namespace == "kvault-system"
    with pytest.raises(ConfigError, match="not running in a pod"):
        in_cluster(tmp_path, {})


def test_load_config_prefers_explicit_then_kubeconfig_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kubeconfig(tmp_path, {"token": "t"})
    monkeypatch.setenv("KUBECONFIG", f"{path}{os.pathsep}/nonexistent")
    assert load_config().server == "https://10.0.0.1:6443"
    with pytest.raises(ConfigError):
        load_config(tmp_path / "absent")
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(ConfigError, match="no Kubernetes configuration"):
        load_config()


@pytest.fixture
async def api_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path, list[dict[str, Any]]]]:
    """An HTTPS server that requires a client certificate; records what each request sent."""
    seen: list[dict[str, Any]] = []

    async def review(request: web.Request) -> web.Response:
        body = await request.json()
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        seen.append({"auth": request.headers.get("Authorization"), "peer": peer, "body": body})
        if body["spec"]["token"] == "forbidden":
            return web.json_response({"kind": "Status", "message": "nope"}, status=403)
        return web.json_response(
            {
                "status": {
                    "authenticated": True,
                    "user": {"username": "u", "groups": ["g"], "uid": "1"},
                    "audiences": body["spec"]["audiences"],
                }
            },
            status=201,
        )

    app = web.Application()
    app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", review)
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(cert))
    tls.load_cert_chain(cert, key)
    tls.verify_mode = ssl.CERT_REQUIRED
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    yield f"https://127.0.0.1:{runner.addresses[0][1]}", cert, seen
    await runner.cleanup()


async def test_client_certificate_and_token_are_sent(
    api_server: tuple[str, Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, cert, seen = api_server
    key = tmp_path / "tls.key"
    cfg = KubeConfig(
        server=url,
        ca_pem=cert.read_text(),
        token="kvault-own-token",
        cert_pem=cert.read_bytes(),
        key_pem=key.read_bytes(),
    )
    async with KubeClient(cfg) as kc:
        status = await KubeTokenReviewer(kc)("workload-token", ["kvault"])
        assert status.authenticated and status.username == "u" and status.audiences == ("kvault",)
        assert seen[-1]["auth"] == "Bearer kvault-own-token"
        assert seen[-1]["peer"] is not None  # the client certificate was presented
        assert seen[-1]["body"]["spec"] == {"token": "workload-token", "audiences": ["kvault"]}
        with pytest.raises(KubeApiError) as info:
            await kc.post(
                "/apis/authentication.k8s.io/v1/tokenreviews",
                {"spec": {"token": "forbidden", "audiences": []}},
            )
        assert info.value.status == 403 and "nope" in info.value.message
        with pytest.raises(Unavailable, match="system:auth-delegator"):
            await KubeTokenReviewer(kc)("forbidden", ["kvault"])


async def test_unreachable_server_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before use: nothing listens there
    async with KubeClient(KubeConfig(server=f"https://127.0.0.1:{port}")) as kc:
        with pytest.raises(Unavailable, match="unreachable"):
            await kc.get("/version")


async def test_token_file_is_read_and_a_missing_one_is_a_config_error(
    api_server: tuple[str, Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, cert, seen = api_server
    token_file = tmp_path / "sa-token"
    token_file.write_text("projected-token\n")
    key = tmp_path / "tls.key"
    cfg = KubeConfig(
        server=url,
        ca_pem=cert.read_text(),
        token_file=token_file,
        cert_pem=cert.read_bytes(),
        key_pem=key.read_bytes(),
    )
    async with KubeClient(cfg) as kc:
        await KubeTokenReviewer(kc)("workload-token", ["kvault"])
    assert seen[-1]["auth"] == "Bearer projected-token"
    token_file.unlink()
    async with KubeClient(cfg) as kc:
        with pytest.raises(ConfigError, match="cannot read the Kubernetes token file"):
            await kc.get("/version")
