"""``kvault operator``: the data plane on every replica, the controller on the Lease holder.

The data plane and kopf share one asyncio loop, so the vault's change feed reaches the
refresh queue as a function call. Beside them: Prometheus ``/metrics`` (data plane and
controller registries), the workload-identity webhook and the ``kvault-ca`` ConfigMap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace

import kopf

from kvault.api.app import build_app
from kvault.api.metrics import REGISTRY as DATA_PLANE_METRICS
from kvault.api.server import listening
from kvault.app import eventloop, kopf_scope, logs
from kvault.app.announce import announce, endpoint
from kvault.app.audit_anchor import config_map_sink, publishing
from kvault.app.cluster import ClusterSetup, DataPlane, open_cluster
from kvault.app.defaults import DEFAULT_METRICS_PORT
from kvault.controller.handlers import Controller
from kvault.controller.lease import Lease
from kvault.controller.metrics import metrics_app
from kvault.controller.settings import Options, configure
from kvault.controller.vault.cert_notices import CertificateNotices
from kvault.controller.vault.notices import KeyNotices
from kvault.controller.webhook.listener import WebhookSettings, publish_ca, serving
from kvault.kube import KubeClient
from kvault.vault.certificates.renewal import RenewalScheduler
from kvault.vault.expiry import ExpiryScheduler
from kvault.vault.keys.scheduler import RotationScheduler

__all__ = ["Options", "RunConfig", "WebhookSettings", "run", "run_operator"]

log = logging.getLogger(__name__)
Lead = Callable[[asyncio.Event], Coroutine[None, None, None]]
#: How long a stepping-down leader lets a key rotation (or certificate renewal) pass under
#: way finish.
ROTATION_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class RunConfig:
    plane: DataPlane
    metrics_port: int | None = DEFAULT_METRICS_PORT  # None: no /metrics listener
    lease_namespace: str | None = None
    lease_name: str = "kvault-operator"
    lease_duration: float = 15.0
    webhook: WebhookSettings | None = None  # None: no admission webhook
    publish_ca: bool = False  # write ConfigMap kvault-ca into the lease namespace
    options: Options = field(default_factory=Options)


async def run(cfg: RunConfig) -> None:
    """Until SIGINT/SIGTERM: serve, and lead (run kopf) whenever this replica holds the Lease."""
    setup = await open_cluster(cfg.plane)
    host = cfg.plane.host
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    kopf_scope.install(loop)  # kopf stepping down must not cancel data-plane requests

    def own_signals() -> None:  # kopf installs its own; ours must win (one stop for all)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

    own_signals()
    extras = contextlib.AsyncExitStack()
    try:
        port = await extras.enter_async_context(
            listening(
                build_app(setup.config),
                host,
                cfg.plane.port,
                ssl_context=setup.tls.context,
                backlog=1024,
                connections=cfg.plane.connections,
            )
        )
        metrics_url = ""
        if cfg.metrics_port is not None:
            mport = await extras.enter_async_context(
                listening(metrics_app(DATA_PLANE_METRICS), host, cfg.metrics_port)
            )
            metrics_url = f"http://{host}:{mport}/metrics"
        webhook_url = ""
        own_ns = cfg.lease_namespace or setup.kube.config.namespace
        if cfg.webhook is not None:
            hook_settings = replace(cfg.webhook, namespace=cfg.webhook.namespace or own_ns)
            hook = await extras.enter_async_context(
                serving(hook_settings, setup.kube, setup.tls.ca, host)
            )
            webhook_url = f"{endpoint(host, hook.port)}/mutate"
        # This pod's audit checkpoints: beside its log, and in the ConfigMap of its namespace.
        checkpoints = config_map_sink(setup.kube, own_ns, socket.gethostname())
        await extras.enter_async_context(publishing(setup.config.kv, [checkpoints]))
        ca_pem = setup.tls.ca.cert_file.read_text()
        if cfg.publish_ca:
            publisher = asyncio.create_task(publish_ca(setup.kube, own_ns, ca_pem))
            extras.callback(publisher.cancel)
        options = replace(cfg.options, data_port=port, ca_pem=ca_pem)
        announce(
            [
                ("KVAULT_ENDPOINT", endpoint(host, port)),
                ("KVAULT_CA_FILE", str(setup.tls.ca.cert_file)),
                ("KVAULT_METRICS", metrics_url),
                ("KVAULT_WEBHOOK", webhook_url),
            ]
        )
        await _hold_lease(cfg, setup, own_ns, _leader(setup, options, own_signals), stop)
    finally:
        await extras.aclose()
        await setup.close()


def _leader(setup: ClusterSetup, options: Options, own_signals: Callable[[], None]) -> Lead:
    """What the Lease holder runs until ``lost``: the controller under kopf, and beside it the
    key rotation and certificate renewal schedulers (their notices are Events on the Vault
    objects, and metrics) and the purge of expired deleted items and vaults."""

    async def lead(lost: asyncio.Event) -> None:
        kv = setup.config.kv
        controller = Controller(kv, setup.kube, options)
        controller.start()
        settings = kopf.OperatorSettings()
        configure(settings)
        ready = asyncio.Event()
        waiter = asyncio.create_task(_after(ready, own_signals))
        notices = KeyNotices(controller.kube, controller.events, controller.vaults.bodies)
        halt = asyncio.Event()  # set when the Lease is lost or kopf ends, whichever is first
        linked = asyncio.create_task(_after(lost, halt.set))
        rotation = asyncio.create_task(RotationScheduler(kv, notify=notices).run(halt))
        certs = CertificateNotices(controller.kube, controller.events, controller.vaults.bodies)
        renewal = asyncio.create_task(
            RenewalScheduler(kv, notify=certs, observe=certs.observe).run(halt)
        )
        expiry = asyncio.create_task(ExpiryScheduler(kv).run(halt))
        informers = [asyncio.create_task(i.run()) for i in controller.informers()]
        try:
            await kopf_scope.run(
                registry=controller.registry(),
                settings=settings,
                lifecycle=kopf.lifecycles.all_at_once,
                standalone=True,
                clusterwide=not options.namespaces,
                namespaces=list(options.namespaces),
                stop_flag=lost,
                ready_flag=ready,
            )
        finally:
            waiter.cancel()
            halt.set()
            linked.cancel()
            for task in informers:
                task.cancel()
            await asyncio.gather(*informers, return_exceptions=True)
            await asyncio.gather(
                _finish(rotation, ROTATION_GRACE),
                _finish(renewal, ROTATION_GRACE),
                _finish(expiry, ROTATION_GRACE),
            )
            certs.observe([])  # a replica that no longer leads reports no certificate times
            await controller.stop()
            own_signals()

    return lead


async def _hold_lease(
    cfg: RunConfig,
    setup: ClusterSetup,
    namespace: str,
    lead: Lead,
    stop: asyncio.Event,
) -> None:
    # Unique per process, not only per Pod: a StatefulSet's Pod comes back with the same
    # name, and in a container often the same pid, and must not take the old one's Lease for
    # its own.
    identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # The Lease gets its own connection pool: renewals must never queue behind a burst
    # of reconciles, or a busy leader would step down exactly when it is most needed.
    lease_kube = KubeClient(setup.kube.config)
    try:
        lease = Lease(lease_kube, namespace, cfg.lease_name, identity, duration=cfg.lease_duration)
        await lease.run(lead, stop)
    finally:
        await lease_kube.close()


async def _after(event: asyncio.Event, fn: Callable[[], None]) -> None:
    await event.wait()
    fn()


async def _finish(task: asyncio.Task[None], grace: float) -> None:
    """Let ``task`` end by itself within ``grace`` seconds, then cancel it."""
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def run_operator(cfg: RunConfig) -> None:
    """The ``kvault operator`` process: JSON log lines, then :func:`run`."""
    logs.json_lines()
    eventloop.run(run(cfg))
