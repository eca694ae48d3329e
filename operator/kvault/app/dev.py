"""``kvault server --dev``: one data directory holding everything a local server needs.

``hsm.key`` (software HSM root key), ``kvault.db`` and ``audit.log`` (the domain),
``root-token`` (0600), ``tls/ca.pem`` and ``tls/ca-key.pem``. Started again on the same
directory it reopens the same vault, token and CA; without one it uses a temporary
directory removed on exit.

Vault ``dev`` is the default: a request whose Host names no vault (``127.0.0.1``, any other
name) addresses it. Its ids carry the Host only when that is this machine (``localhost``,
``127.0.0.1``, ``[::1]``) or ``dev.localhost``; any other Host gets the server's own address
(see :func:`kvault.api.hosts.local_base`).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kvault.api.app import build_app
from kvault.api.config import ApiConfig
from kvault.api.server import serve
from kvault.api.throttle import RateLimits
from kvault.api.tls import ServerTLS
from kvault.app import eventloop, logs
from kvault.app.announce import announce, endpoint
from kvault.app.audit_anchor import publishing
from kvault.app.backends import Backends, open_configured, server_tls
from kvault.app.listener import ConnectionLimits
from kvault.crypto.pem import write_private
from kvault.errors import NotFound
from kvault.identity.model import Principal
from kvault.identity.static import StaticExchange, StaticTokens

DEV_VAULT = "dev"
DEV_RETENTION_DAYS = 7
ROOT = Principal("kvault:root", superuser=True)
TOKEN_FILE = "root-token"


@dataclass(frozen=True, slots=True)
class DevSetup:
    config: ApiConfig
    tls: ServerTLS
    token: str


def root_token(data_dir: Path) -> str:
    """The persisted root token, created (0600) on first start."""
    path = data_dir / TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = "kvr." + secrets.token_urlsafe(32)
    write_private(path, token.encode() + b"\n")
    return token


async def open_dev(
    data_dir: Path, backends: Backends | None = None, limits: RateLimits | None = None
) -> DevSetup:
    """The domain with vault ``dev``, the root token and TLS, all from ``data_dir``. The
    vault is premium, so ``-HSM`` keys can be tried (with the software plugin they are held
    in process: not an HSM, see :mod:`kvault.hsm.software`)."""
    kv = await open_configured(data_dir, backends or Backends())
    try:
        try:
            await kv.vaults.get(DEV_VAULT)
        except NotFound:
            await kv.vaults.create(DEV_VAULT, sku="premium", retention_days=DEV_RETENTION_DAYS)
        token = root_token(data_dir)
        tls = server_tls(data_dir)
    except BaseException:
        await kv.close()
        raise
    tokens = StaticTokens({token: ROOT})
    config = ApiConfig(
        kv,
        tokens,
        default_vault=DEV_VAULT,
        limits=limits or RateLimits(),
        exchange=StaticExchange(tokens).exchange,
    )
    return DevSetup(config, tls, token)


async def serve_dev(
    data_dir: Path,
    host: str,
    port: int,
    backends: Backends | None = None,
    limits: RateLimits | None = None,
    connections: ConnectionLimits | None = None,
) -> None:
    """Serve the dev data plane until SIGINT/SIGTERM, announcing endpoint, token and CA
    (``connections``: the listener's caps and deadlines)."""
    setup = await open_dev(data_dir, backends, limits)

    def ready(bound: int) -> None:
        announce(
            [
                ("KVAULT_ENDPOINT", endpoint(host, bound)),
                ("KVAULT_TOKEN", setup.token),
                ("KVAULT_CA_FILE", str(setup.tls.ca.cert_file)),
            ],
            comment=f"kvault dev server: vault 'dev', data in {data_dir}; Ctrl-C to stop",
        )

    try:
        async with publishing(setup.config.kv):
            await serve(
                build_app(setup.config),
                host=host,
                port=port,
                ssl_context=setup.tls.context,
                on_ready=ready,
                connections=connections,
            )
    finally:
        await setup.config.kv.close()


def run_dev(
    data_dir: Path | None,
    host: str,
    port: int,
    backends: Backends | None = None,
    limits: RateLimits | None = None,
    connections: ConnectionLimits | None = None,
) -> None:
    """The ``kvault server --dev`` process (a temporary data directory when none)."""
    logs.plain()
    temporary = data_dir is None
    directory = Path(tempfile.mkdtemp(prefix="kvault-dev-")) if data_dir is None else data_dir
    try:
        eventloop.run(serve_dev(directory, host, port, backends, limits, connections))
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
