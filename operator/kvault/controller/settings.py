"""Names the operator writes to the cluster, its options, and the kopf settings for scale."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import kopf

from kvault.kube.resources import Resource

GROUP = "kvault.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
VAULTS = Resource(GROUP, VERSION, "vaults")
VAULTSECRETS = Resource(GROUP, VERSION, "vaultsecrets")
FINALIZER = "kvault.io/finalizer"  # kopf's, on Vaults
#: Ours, on VaultSecrets (level-based handlers: kopf would strip a finalizer of its own name
#: from objects without kopf change handlers).
PROJECTION_FINALIZER = "kvault.io/projection"
FIELD_MANAGER = "kvault"
MANAGED_BY = "app.kubernetes.io/managed-by"
ANN_HASH = "kvault.io/content-hash"
ANN_OWNER = "kvault.io/vaultsecret"
ANN_RESTARTED = "kvault.io/restartedAt"
CA_CONFIGMAP = "kvault-ca"
DEFAULT_REFRESH = 3600.0


@dataclass(frozen=True, slots=True)
class Options:
    """What one operator process was told on its command line."""

    data_port: int = 8443
    service_selector: dict[str, str] = field(
        default_factory=lambda: {"app.kubernetes.io/name": "kvault"}
    )
    #: kvault's own Service (FQDN): per-Vault Services alias it (a selector would only match
    #: pods in the Vault's namespace). Empty: select pods by ``service_selector``.
    service_target: str = ""
    ca_pem: str = ""
    workers: int = 32
    namespaces: tuple[str, ...] = ()  # empty: the whole cluster
    fault: str = ""  # test-only fault injection point (KVAULT_FAULT)


def configure(settings: kopf.OperatorSettings) -> None:
    """Few PATCHes per object, no Event floods, our own annotation prefix and finalizer."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.loggers = False
    settings.posting.level = logging.WARNING
    settings.peering.standalone = True  # one active controller comes from our Lease
    settings.watching.chunk_size = 500
    settings.queueing.worker_limit = None  # kopf#1243: keep unlimited with indexes
    # kopf keeps one worker (task, queue, last event) per object until it idles this long
    # (it handled the VaultSecrets too, before they moved to kube/informer.py: at a cold start
    # of 10,000 the default 5 s held thousands of workers at once). Now it runs the Vaults.
    settings.queueing.idle_timeout = 1.0
    settings.networking.request_timeout = 60
