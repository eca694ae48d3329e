"""One process: the data plane on every replica, the controller on the Lease holder.

The data plane (api/cluster.py + api/server.py) and kopf share one asyncio loop, so the
vault's change feed reaches the refresh queue as a function call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import kopf
from aiohttp import web

from kvault.controller.handlers import Controller
from kvault.controller.lease import Lease
from kvault.controller.metrics import metrics_app
from kvault.controller.settings import Options, configure
from kvault.controller.webhook.listener import WebhookSettings, publish_ca, serving
from kvault.kube.client import KubeClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunConfig:
    data_dir: Path
    kubeconfig: str | None = None
    host: str = "127.0.0.1"
    port: int = 8443
    metrics_port: int | None = 9090
    hsm: str = "software"
    hsm_options: Mapping[str, str] = field(default_factory=dict)
    audiences: Sequence[str] = ("kvault",)
    lease_namespace: str | None = None
    lease_name: str = "kvault-operator"
    lease_duration: float = 15.0
    webhook: WebhookSettings | None = None  # None: no admission webhook
    publish_ca: bool = False  # write ConfigMap kvault-ca into the lease namespace
    options: Options = field(default_factory=Options)


def _endpoint(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"https://{shown}:{port}"


async def run(cfg: RunConfig) -> None:
    from kvault.api.app import build_app
    from kvault.api.cluster import open_cluster
    from kvault.api.metrics import REGISTRY as DATA_PLANE_METRICS

    setup = await open_cluster(
        cfg.data_dir,
        hsm=cfg.hsm,
        hsm_options=cfg.hsm_options,
        kubeconfig=cfg.kubeconfig,
        audiences=tuple(cfg.audiences),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        stop.set()

    def own_signals() -> None:  # kopf installs its own; ours must win (one stop for all)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)

    own_signals()
    runners: list[web.AppRunner] = []
    extras = contextlib.AsyncExitStack()
    try:
        runner = web.AppRunner(build_app(setup.config), access_log=None, handle_signals=False)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, cfg.host, cfg.port, ssl_context=setup.tls.context, backlog=1024)
        await site.start()
        port = _bound(site)
        metrics_url = ""
        if cfg.metrics_port is not None:
            mrunner = web.AppRunner(
                metrics_app(DATA_PLANE_METRICS), access_log=None, handle_signals=False
            )
            await mrunner.setup()
            runners.append(mrunner)
            msite = web.TCPSite(mrunner, cfg.host, cfg.metrics_port)
            await msite.start()
            metrics_url = f"http://{cfg.host}:{_bound(msite)}/metrics"
        webhook_url = ""
        if cfg.webhook is not None:
            ns = cfg.webhook.namespace or cfg.lease_namespace or setup.kube.config.namespace
            hook = await extras.enter_async_context(
                serving(replace(cfg.webhook, namespace=ns), setup.kube, setup.tls.ca, cfg.host)
            )
            webhook_url = f"{_endpoint(cfg.host, hook.port)}/mutate"
        ca_pem = Path(setup.tls.ca.cert_file).read_text()
        if cfg.publish_ca:
            own_ns = cfg.lease_namespace or setup.kube.config.namespace
            publisher = asyncio.create_task(publish_ca(setup.kube, own_ns, ca_pem))
            extras.callback(publisher.cancel)
        options = replace(cfg.options, data_port=port, ca_pem=ca_pem)
        print(f"KVAULT_ENDPOINT={_endpoint(cfg.host, port)}")
        print(f"KVAULT_CA_FILE={setup.tls.ca.cert_file}")
        if metrics_url:
            print(f"KVAULT_METRICS={metrics_url}")
        if webhook_url:
            print(f"KVAULT_WEBHOOK={webhook_url}")
        sys.stdout.flush()

        async def lead(lost: asyncio.Event) -> None:
            controller = Controller(setup.config.kv, setup.kube, options)
            controller.start()
            settings = kopf.OperatorSettings()
            configure(settings)
            ready = asyncio.Event()
            waiter = asyncio.create_task(_after(ready, own_signals))
            try:
                await kopf.operator(
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
                await controller.stop()
                own_signals()

        namespace = cfg.lease_namespace or setup.kube.config.namespace
        identity = f"{socket.gethostname()}-{os.getpid()}"
        # The Lease gets its own connection pool: renewals must never queue behind a burst
        # of reconciles, or a busy leader would step down exactly when it is most needed.
        lease_kube = KubeClient(setup.kube.config)
        try:
            lease = Lease(
                lease_kube, namespace, cfg.lease_name, identity, duration=cfg.lease_duration
            )
            await lease.run(lead, stop)
        finally:
            await lease_kube.close()
    finally:
        await extras.aclose()
        for r in reversed(runners):
            await r.cleanup()
        await setup.close()


async def _after(event: asyncio.Event, fn: object) -> None:
    await event.wait()
    assert callable(fn)
    fn()


def _bound(site: web.TCPSite) -> int:
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    port: int = server.sockets[0].getsockname()[1]
    return port
