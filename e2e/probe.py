"""Health probes over plain HTTP(S) with our admin certificate (no client library needed)."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.request
from typing import Any

from e2e.layout import APISERVER_PORT, ETCD_PORT, NODE_NAME, Layout


def _ssl_context(lay: Layout) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(lay.pki / "ca.crt"))
    ctx.load_cert_chain(str(lay.pki / "admin.crt"), str(lay.pki / "admin.key"))
    return ctx


def api_get(lay: Layout, path: str, timeout: float = 3.0) -> Any:
    """GET ``path`` from the apiserver as admin; JSON-decoded if possible."""
    url = f"https://127.0.0.1:{APISERVER_PORT}{path}"
    with urllib.request.urlopen(url, context=_ssl_context(lay), timeout=timeout) as resp:
        body = resp.read().decode()
    try:
        return json.loads(body)
    except ValueError:
        return body


def http_ok(port: int, path: str) -> bool:
    """A loopback HTTP endpoint (CoreDNS ready, kube-proxy healthz) answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2.0) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def etcd_healthy() -> bool:
    """etcd's /health says true."""
    url = f"http://127.0.0.1:{ETCD_PORT}/health"
    with urllib.request.urlopen(url, timeout=2.0) as resp:
        return bool(json.loads(resp.read()).get("health") == "true")


def apiserver_ready(lay: Layout) -> bool:
    """/readyz answers ok (all post-start hooks done, RBAC bootstrap included)."""
    return bool(api_get(lay, "/readyz") == "ok")


def node_ready(lay: Layout) -> bool:
    """Our node reports condition Ready=True."""
    node = api_get(lay, f"/api/v1/nodes/{NODE_NAME}")
    conds = node.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def default_sa_exists(lay: Layout) -> bool:
    """The controller-manager is working: ServiceAccount default/default exists."""
    return bool(api_get(lay, "/api/v1/namespaces/default/serviceaccounts/default"))


def containerd_ready(lay: Layout) -> bool:
    """containerd answers on its socket."""
    res = subprocess.run(
        ["ctr", "--address", str(lay.containerd_sock), "version"],
        capture_output=True,
        timeout=5,
    )
    return res.returncode == 0
