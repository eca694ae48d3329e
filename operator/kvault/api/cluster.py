"""What ``kvault server`` (in a cluster) stands on: the domain, Kubernetes identity, TLS.

Unlike the dev server there is no root token: callers are ServiceAccounts (TokenReview) or
holders of kvault-issued access tokens from the token exchange, and vaults with their role
assignments come from the operator (or whoever administers the data directory).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kvault.api.config import DEV_TENANT, ApiConfig
from kvault.api.tls import CertificateAuthority, ServerTLS
from kvault.hsm.registry import load
from kvault.identity.service import open_identity
from kvault.identity.tokenreview import DEFAULT_AUDIENCE
from kvault.kube.client import KubeClient, load_config
from kvault.vault.service import Kvault


@dataclass(frozen=True, slots=True)
class ClusterSetup:
    config: ApiConfig
    tls: ServerTLS
    kube: KubeClient

    async def close(self) -> None:
        await self.config.kv.close()
        await self.kube.close()


async def open_cluster(
    data_dir: Path,
    *,
    hsm: str = "software",
    hsm_options: Mapping[str, str] | None = None,
    kubeconfig: str | None = None,
    audiences: Sequence[str] = (DEFAULT_AUDIENCE,),
    default_vault: str | None = None,
    tenant: str = DEV_TENANT,
) -> ClusterSetup:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    options = dict(hsm_options or {})
    if hsm == "software" and not options:
        options["key_file"] = str(data_dir / "hsm.key")
    kv = await Kvault.open(data_dir, load(hsm, options))
    kube: KubeClient | None = None
    try:
        kube = KubeClient(load_config(kubeconfig))
        identity = await open_identity(kv.storage, kv.barrier, kube, audiences=audiences)
        tls = ServerTLS(CertificateAuthority.load_or_create(data_dir / "tls"), data_dir / "tls")
    except BaseException:
        await kv.close()
        if kube is not None:
            await kube.close()
        raise
    config = ApiConfig(
        kv,
        identity.authenticator,
        default_vault=default_vault,
        tenant=tenant,
        exchange=identity.exchange.exchange,
    )
    return ClusterSetup(config, tls, kube)
