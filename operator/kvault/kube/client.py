"""A small Kubernetes API client: kubeconfig / in-cluster configuration and one aiohttp session.

kvault needs only a handful of API calls (TokenReview now, the operator's reads and writes
later), so this is a thin authenticated JSON transport rather than a generated client. It
supports what kubeconfigs written by kubeadm, kind and our e2e cluster use: a CA, client
certificates, bearer tokens and token files. ``exec`` and ``auth-provider`` plugins are refused.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import aiohttp
import yaml

from kvault.errors import ConfigError, KvaultError, Unavailable

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: A token file (in-cluster, bound and rotated by the kubelet) is re-read this often.
TOKEN_FILE_TTL = 60.0
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class KubeApiError(KvaultError):
    """The Kubernetes API answered with an error status (``status`` is the HTTP code)."""

    code = "KubeApiError"

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"Kubernetes API error {status} {reason}: {message}")
        self.status = status
        self.reason = reason


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
    cert = (
        _b64(user["client-certificate-data"])
        if "client-certificate-data" in user
        else _read(base, user["client-certificate"])
        if "client-certificate" in user
        else None
    )
    key = (
        _b64(user["client-key-data"])
        if "client-key-data" in user
        else _read(base, user["client-key"])
        if "client-key" in user
        else None
    )
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
def _key_paths(cert: bytes, key: bytes) -> Iterator[tuple[str, str]]:
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
        with _key_paths(config.cert_pem, config.key_pem) as (cert, key):
            ctx.load_cert_chain(cert, key)
    return ctx


class KubeClient:
    """One authenticated aiohttp session to the API server; JSON in, JSON out.

    Transport failures raise :class:`Unavailable`; error statuses raise :class:`KubeApiError`.
    """

    def __init__(self, config: KubeConfig, *, timeout: float = 10.0) -> None:
        self.config = config
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ssl = ssl_context(config)
        self._session: aiohttp.ClientSession | None = None
        self._file_token: tuple[float, str] | None = None

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _token(self) -> str | None:
        if self.config.token:
            return self.config.token
        if self.config.token_file is None:
            return None
        now = time.monotonic()
        if self._file_token is None or now - self._file_token[0] > TOKEN_FILE_TTL:
            try:
                token = self.config.token_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the Kubernetes token file {self.config.token_file}: "
                    f"{exc.strerror or type(exc).__name__}"
                ) from None
            self._file_token = (now, token)
        return self._file_token[1]

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=self._ssl),
                headers={"Accept": "application/json", "User-Agent": "kvault"},
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | list[Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """``method`` ``path`` (e.g. ``/api/v1/namespaces``) with a JSON body; the JSON reply.

        ``content_type`` selects the patch flavour (merge, JSON or server-side apply); the
        body is always sent as JSON, which every flavour (apply's YAML too) accepts."""
        headers = {}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        url = self.config.server + path
        try:
            async with self._open().request(
                method, url, data=data, params=params, headers=headers
            ) as resp:
                if resp.status >= 400:
                    raise KubeApiError(resp.status, resp.reason or "", await _status_message(resp))
                reply = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unavailable(
                f"the Kubernetes API at {self.config.server} is unreachable: {type(exc).__name__}"
            ) from None
        except ValueError:
            raise Unavailable(f"the Kubernetes API at {url} answered with invalid JSON") from None
        if not isinstance(reply, dict):
            raise Unavailable(f"the Kubernetes API at {url} answered with a non-object")
        return cast(dict[str, Any], reply)

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body=body)

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return await self.request("GET", path, params=params)

    async def patch(
        self,
        path: str,
        body: Mapping[str, Any] | list[Any],
        *,
        content_type: str = MERGE_PATCH,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """PATCH with a merge patch (default), a JSON patch, or server-side apply."""
        return await self.request(
            "PATCH", path, body=body, params=params, content_type=content_type
        )

    async def apply(
        self, path: str, body: Mapping[str, Any], *, field_manager: str, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply of ``body`` as ``field_manager`` (the object's full intent)."""
        params = {"fieldManager": field_manager, "force": "true" if force else "false"}
        return await self.patch(path, body, content_type=APPLY_PATCH, params=params)

    async def delete(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return await self.request("DELETE", path, body=body)

    @property
    def tls(self) -> ssl.SSLContext:
        """The TLS context to the API server (CA and client certificate), for other clients
        of the same server such as kopf's watches."""
        return self._ssl

    def session(self) -> aiohttp.ClientSession:
        """The authenticated session (e.g. for a watch or to hand to kopf)."""
        return self._open()

    def auth_headers(self) -> dict[str, str]:
        token = self._token()
        return {"Authorization": f"Bearer {token}"} if token else {}


async def _status_message(resp: aiohttp.ClientResponse) -> str:
    """The ``message`` of a ``Status`` reply, short; never the request."""
    try:
        doc = await resp.json(content_type=None)
        message = str(doc.get("message", "")) if isinstance(doc, dict) else ""
    except (ValueError, aiohttp.ClientError):
        message = ""
    return message[:300]
