"""``kvault server`` in a cluster: the domain, Kubernetes identity and TLS from a data
directory and a kubeconfig.

Unlike the dev server there is no root token: callers are ServiceAccounts (TokenReview) or
holders of kvault-issued access tokens from the token exchange, and vaults with their role
assignments come from the operator (or whoever administers the data directory). Nor is there
a default vault: a Host that names no vault (``V.N.svc``, ``V.N.localhost``) is 404
``VaultNotFound``, and ids carry each vault's own URL ``https://V.N.svc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kvault.api.app import build_app
from kvault.api.config import DEV_TENANT, ApiConfig
from kvault.api.server import serve
from kvault.api.throttle import Rate
from kvault.api.throttle import RateLimits as RateLimits
from kvault.api.tls import ServerTLS
from kvault.app import eventloop, logs
from kvault.app.announce import announce, endpoint
from kvault.app.audit_anchor import publishing
from kvault.app.backends import TLS_DIR, Backends, open_configured
from kvault.app.defaults import DEFAULT_PORT
from kvault.app.listener import ConnectionLimits
from kvault.app.shared_ca import shared_authority
from kvault.errors import ConfigError
from kvault.identity.service import open_identity
from kvault.identity.tokenreview import DEFAULT_AUDIENCE
from kvault.kube import KubeClient, load_config


@dataclass(frozen=True, slots=True)
class DataPlane:
    """What a cluster data plane is built from (``kvault server``, ``kvault operator``)."""

    data_dir: Path
    kubeconfig: str | None = None
    backends: Backends = field(default_factory=Backends)
    #: Accepted ServiceAccount token audiences; empty means kvault's default one.
    audiences: Sequence[str] = ()
    tenant: str = DEV_TENANT
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: Request rate limits (the commands pass their flags; none when built directly).
    limits: RateLimits = field(default_factory=RateLimits)
    #: Connection caps and deadlines of the data-plane listener.
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)

    @property
    def accepted(self) -> tuple[str, ...]:
        return tuple(self.audiences) or (DEFAULT_AUDIENCE,)


def rate_limits(vault: str, principal: str) -> RateLimits:
    """The limits that ``--vault-rate-limit`` and ``--principal-rate-limit`` spell
    (``COUNT/SECONDS``, ``0``: none); :class:`ConfigError` says what is wrong."""
    try:
        return RateLimits(vault=Rate.parse(vault), principal=Rate.parse(principal))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class ClusterSetup:
    config: ApiConfig
    tls: ServerTLS
    kube: KubeClient

    async def close(self) -> None:
        await self.config.kv.close()
        await self.kube.close()


async def open_cluster(plane: DataPlane) -> ClusterSetup:
    """Domain, Kubernetes client, identity and TLS; everything opened is closed on failure."""
    kv = await open_configured(plane.data_dir, plane.backends)
    kube: KubeClient | None = None
    try:
        kube = KubeClient(load_config(plane.kubeconfig))
        identity = await open_identity(kv.sealed, kube, audiences=plane.accepted)
        tls_dir = plane.data_dir / TLS_DIR
        tls = ServerTLS(await shared_authority(kv.sealed, tls_dir), tls_dir)
    except BaseException:
        await kv.close()
        if kube is not None:
            await kube.close()
        raise
    config = ApiConfig(
        kv,
        identity.authenticator,
        tenant=plane.tenant,
        exchange=identity.exchange.exchange,
        limits=plane.limits,
    )
    return ClusterSetup(config, tls, kube)


async def serve_cluster(plane: DataPlane) -> None:
    """Serve the data plane until SIGINT/SIGTERM, announcing endpoint and CA."""
    setup = await open_cluster(plane)

    def ready(bound: int) -> None:
        announce(
            [
                ("KVAULT_ENDPOINT", endpoint(plane.host, bound)),
                ("KVAULT_CA_FILE", str(setup.tls.ca.cert_file)),
            ]
        )

    try:
        async with publishing(setup.config.kv):
            await serve(
                build_app(setup.config),
                host=plane.host,
                port=plane.port,
                ssl_context=setup.tls.context,
                on_ready=ready,
                connections=plane.connections,
            )
    finally:
        await setup.close()


def run_cluster(plane: DataPlane) -> None:
    """The ``kvault server --data-dir D`` process."""
    logs.plain()
    eventloop.run(serve_cluster(plane))
