"""Where the API server is and how to prove who we are: kubeconfig files (what kubeadm, kind and
our e2e cluster write: a CA, client certificates, bearer tokens, token files) and in-cluster
ServiceAccounts. ``exec`` and ``auth-provider`` plugins are refused."""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from kvault.errors import ConfigError

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True, slots=True)
class KubeConfig:
    """Where the API server is and how to prove who we are. ``repr`` shows no credentials."""

    server: str
    ca_pem: str | None = None
    insecure: bool = False
    token: str | None = None
    token_file: Path | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    namespace: str = "default"

    def __repr__(self) -> str:
        auth = (
            "token"
            if self.token
            else "token-file"
            if self.token_file
            else "client-cert"
            if self.cert_pem
            else "none"
        )
        return f"KubeConfig(server={self.server!r}, auth={auth}, namespace={self.namespace!r})"


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _read(base: Path, value: str) -> bytes:
    path = Path(value)
    return (path if path.is_absolute() else base / path).read_bytes()


def _inline_or_file(entry: dict[str, Any], field: str, base: Path) -> bytes | None:
    """``<field>-data`` (base64, inline) wins over ``<field>`` (a path), as in kubectl."""
    if f"{field}-data" in entry:
        return _b64(entry[f"{field}-data"])
    return _read(base, entry[field]) if field in entry else None


def _named(items: Any, name: str, what: str, source: Path) -> dict[str, Any]:
    for item in items or ():
        if isinstance(item, dict) and item.get("name") == name:
            return cast(dict[str, Any], item.get(what) or {})
    raise ConfigError(f"{source}: no {what} named {name!r}")


def from_kubeconfig(path: Path, context: str | None = None) -> KubeConfig:
    """The cluster and user of ``context`` (default: current-context) in a kubeconfig file."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {type(exc).__name__}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} is not a kubeconfig")
    name = context or doc.get("current-context")
    if not name:
        raise ConfigError(f"{path}: no current-context and no context given")
    ctx = _named(doc.get("contexts"), name, "context", path)
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster", path)
    user = _named(doc.get("users"), ctx.get("user", ""), "user", path) if ctx.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise ConfigError(f"{path}: exec and auth-provider credentials are not supported")
    base = path.parent
    server = cluster.get("server")
    if not server:
        raise ConfigError(f"{path}: cluster {ctx.get('cluster')!r} has no server")
    ca: str | None = None
    if "certificate-authority-data" in cluster:
        ca = _b64(cluster["certificate-authority-data"]).decode()
    elif "certificate-authority" in cluster:
        ca = _read(base, cluster["certificate-authority"]).decode()
    cert = _inline_or_file(user, "client-certificate", base)
    key = _inline_or_file(user, "client-key", base)
    token_file = user.get("tokenFile")
    return KubeConfig(
        server=str(server).rstrip("/"),
        ca_pem=ca,
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        token=user.get("token"),
        token_file=(base / token_file) if token_file else None,
        cert_pem=cert,
        key_pem=key,
        namespace=str(ctx.get("namespace") or "default"),
    )


def in_cluster(sa_dir: Path = SA_DIR, env: Mapping[str, str] = os.environ) -> KubeConfig:
    """The pod's own ServiceAccount: API address from the environment, token and CA from files."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not running in a pod: KUBERNETES_SERVICE_HOST/PORT are not set")
    if ":" in host:
        host = f"[{host}]"
    namespace = sa_dir / "namespace"
    return KubeConfig(
        server=f"https://{host}:{port}",
        ca_pem=(sa_dir / "ca.crt").read_text(),
        token_file=sa_dir / "token",
        namespace=namespace.read_text().strip() if namespace.exists() else "default",
    )


def load_config(kubeconfig: str | Path | None = None, context: str | None = None) -> KubeConfig:
    """An explicit kubeconfig, else ``$KUBECONFIG`` (its first file), else in-cluster, else
    ``~/.kube/config`` -- the order operators and controllers conventionally use."""
    if kubeconfig is not None:
        return from_kubeconfig(Path(kubeconfig), context)
    env = os.environ.get("KUBECONFIG")
    if env:
        first = next((p for p in env.split(os.pathsep) if p), None)
        if first:
            return from_kubeconfig(Path(first), context)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    home = Path.home() / ".kube" / "config"
    if home.exists():
        return from_kubeconfig(home, context)
    raise ConfigError("no Kubernetes configuration: set KUBECONFIG or run in a pod")


@contextlib.contextmanager
def key_paths(cert: bytes, key: bytes) -> Iterator[tuple[str, str]]:
    """Paths for ``ssl.load_cert_chain``, which reads only files. On Linux the key lives in
    anonymous memory (memfd) and never touches a disk; elsewhere in a 0600 file removed at once."""
    if sys.platform == "linux":
        fds = []
        try:
            for data in (cert, key):
                fd = os.memfd_create("kvault-kube", 0)
                fds.append(fd)
                os.write(fd, data)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory() as tmp:  # pragma: no cover - non-Linux
        paths = []
        for n, data in enumerate((cert, key)):
            p = Path(tmp) / str(n)
            p.touch(mode=0o600)
            p.write_bytes(data)
            paths.append(str(p))
        yield paths[0], paths[1]


def ssl_context(config: KubeConfig) -> ssl.SSLContext:
    """TLS to the API server: its CA (or the system's), and our client certificate if any."""
    ctx = (
        ssl.create_default_context(cadata=config.ca_pem)
        if config.ca_pem
        else (ssl.create_default_context())
    )
    if config.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if config.cert_pem and config.key_pem:
        with key_paths(config.cert_pem, config.key_pem) as (cert, key):
            ctx.load_cert_chain(cert, key)
    return ctx
