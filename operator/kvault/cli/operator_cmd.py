"""``kvault operator``: the data plane and the controller in one process.

Every replica serves the data plane; the holder of the ``kvault-operator`` Lease also runs
the kopf handlers (Vault provisioning, VaultSecret projection and refresh). Prints
``KVAULT_ENDPOINT=``, ``KVAULT_CA_FILE=`` (and ``KVAULT_METRICS=``) once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kvault.cli.errors import EXIT_USAGE, CliError

if TYPE_CHECKING:
    from kvault.controller.webhook.listener import WebhookSettings

DEFAULT_PORT = 8443


def register(groups: Any) -> None:
    p = groups.add_parser("operator", help="run the data plane and the Kubernetes controller")
    p.add_argument("--data-dir", type=Path, required=True, help="kvault's data directory")
    p.add_argument("--kubeconfig", help="default: $KUBECONFIG, in-cluster, ~/.kube/config")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="data-plane port (0: any)")
    p.add_argument(
        "--metrics-port", type=int, default=9090, help="Prometheus /metrics port (0: any, -1: off)"
    )
    p.add_argument("--hsm", default="software", help="HSM plugin (software, pkcs11, ...)")
    p.add_argument("--hsm-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--audience", action="append", help="accepted token audience (kvault)")
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: the whole cluster",
    )
    p.add_argument("--lease-namespace", help="namespace of the Lease (default: kubeconfig's)")
    p.add_argument("--lease-name", default="kvault-operator")
    p.add_argument("--lease-duration", type=float, default=15.0, help="seconds")
    p.add_argument(
        "--service-selector",
        default="app.kubernetes.io/name=kvault",
        help="pod selector of the per-Vault Services (k=v[,k=v])",
    )
    p.add_argument(
        "--service-target",
        default=_own_service(),
        help="DNS name of kvault's own Service: per-Vault Services become ExternalName "
        "aliases of it, which works from any namespace (default from $KVAULT_SERVICE_NAME "
        "and $KVAULT_NAMESPACE; empty: per-Vault Services select pods by --service-selector)",
    )
    p.add_argument("--workers", type=int, default=32, help="concurrent VaultSecret reconciles")
    p.add_argument(
        "--publish-ca",
        action="store_true",
        help="write kvault's CA as ConfigMap kvault-ca (key ca.crt) into --lease-namespace",
    )
    w = p.add_argument_group("workload-identity webhook")
    w.add_argument(
        "--webhook-port",
        type=int,
        default=-1,
        help="HTTPS port of the mutating webhook (the chart uses 9443; 0: any; -1: off, the "
        "default, so that several host processes can run side by side)",
    )
    w.add_argument(
        "--webhook-service",
        default="kvault-webhook",
        help="the webhook's Service: its certificate names <service>.<namespace>.svc",
    )
    w.add_argument(
        "--webhook-configuration",
        default="",
        help="MutatingWebhookConfiguration whose caBundle is set to kvault's CA",
    )
    w.add_argument(
        "--webhook-authority-host",
        default=_own_authority(),
        help="AZURE_AUTHORITY_HOST given to pods (default https://$KVAULT_SERVICE_NAME."
        "$KVAULT_NAMESPACE.svc, else https://kvault.<namespace>.svc)",
    )
    w.add_argument(
        "--webhook-cert-validity",
        type=float,
        default=30 * 86400.0,
        help="seconds a serving certificate is valid; renewed at two thirds",
    )
    p.set_defaults(handler=_run)


def _pairs(text: str, what: str) -> dict[str, str]:
    out = {}
    for pair in filter(None, text.split(",")):
        key, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"{what} takes KEY=VALUE, got {pair!r}", EXIT_USAGE)
        out[key.strip()] = value.strip()
    return out


def _own_service() -> str:
    name, ns = os.environ.get("KVAULT_SERVICE_NAME"), os.environ.get("KVAULT_NAMESPACE")
    return f"{name}.{ns}.svc.cluster.local" if name and ns else ""


def _own_authority() -> str:
    name, ns = os.environ.get("KVAULT_SERVICE_NAME"), os.environ.get("KVAULT_NAMESPACE")
    return f"https://{name}.{ns}.svc" if name and ns else ""


def _webhook(args: argparse.Namespace) -> WebhookSettings | None:
    """The webhook's settings from the flags (None with --webhook-port -1)."""
    from kvault.controller.webhook.listener import WebhookSettings

    if args.webhook_port < 0:
        return None
    if args.webhook_port > 65535:
        raise CliError(f"--webhook-port must be -1-65535, got {args.webhook_port}", EXIT_USAGE)
    if args.webhook_cert_validity < 2:
        raise CliError("--webhook-cert-validity must be at least 2 seconds", EXIT_USAGE)
    return WebhookSettings(
        port=args.webhook_port,
        service=args.webhook_service,
        namespace=args.lease_namespace or os.environ.get("KVAULT_NAMESPACE", ""),
        configuration=args.webhook_configuration,
        authority_host=args.webhook_authority_host,
        validity=dt.timedelta(seconds=args.webhook_cert_validity),
    )


def _memory_debug() -> None:
    """``KVAULT_TRACEMALLOC=PREFIX`` (debugging only): trace allocations from here on;
    each SIGUSR2 writes a snapshot to ``PREFIX.N`` (compare them with ``tracemalloc``)."""
    prefix = os.environ.get("KVAULT_TRACEMALLOC")
    if not prefix:
        return
    import signal
    import tracemalloc

    tracemalloc.start(int(os.environ.get("KVAULT_TRACEMALLOC_FRAMES", "1")))
    taken = [0]

    def dump(*_: object) -> None:
        taken[0] += 1
        tracemalloc.take_snapshot().dump(f"{prefix}.{taken[0]}")

    signal.signal(signal.SIGUSR2, dump)


def _run(args: argparse.Namespace) -> int:
    _memory_debug()
    from kvault.controller import logs
    from kvault.controller.runtime import RunConfig, run
    from kvault.controller.settings import Options

    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be 0-65535, got {args.port}", EXIT_USAGE)
    if args.workers < 1:
        raise CliError("--workers must be at least 1", EXIT_USAGE)
    options: dict[str, str] = {}
    for pair in args.hsm_option:
        options.update(_pairs(pair, "--hsm-option"))
    logs.configure()
    cfg = RunConfig(
        data_dir=args.data_dir,
        kubeconfig=args.kubeconfig,
        host=args.host,
        port=args.port,
        metrics_port=None if args.metrics_port < 0 else args.metrics_port,
        hsm=args.hsm,
        hsm_options=options,
        audiences=tuple(args.audience or ("kvault",)),
        lease_namespace=args.lease_namespace,
        lease_name=args.lease_name,
        lease_duration=args.lease_duration,
        webhook=_webhook(args),
        publish_ca=args.publish_ca,
        options=Options(
            service_selector=_pairs(args.service_selector, "--service-selector"),
            service_target=args.service_target,
            workers=args.workers,
            namespaces=tuple(args.namespace),
            fault=os.environ.get("KVAULT_FAULT", ""),
        ),
    )
    asyncio.run(run(cfg))
    return 0
