"""``kvault operator``: the data plane and the controller in one process.

Every replica serves the data plane; the holder of the ``kvault-operator`` Lease also runs
the kopf handlers (Vault provisioning, VaultSecret projection and refresh). Prints
``KVAULT_ENDPOINT=``, ``KVAULT_CA_FILE=`` (and ``KVAULT_METRICS=``) once listening.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kvault.app.defaults import DEFAULT_METRICS_PORT
from kvault.cli import flags
from kvault.cli.errors import EXIT_USAGE, CliError

if TYPE_CHECKING:
    from kvault.app.operator import WebhookSettings


def register(groups: Any) -> None:
    p = groups.add_parser("operator", help="run the data plane and the Kubernetes controller")
    p.add_argument("--data-dir", type=Path, required=True, help="kvault's data directory")
    flags.add_listener(p, what="data-plane port")
    flags.add_limits(p)
    p.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help="Prometheus /metrics port (0: any, -1: off)",
    )
    flags.add_cluster(p, audience_help="accepted token audience (kvault)")
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
    from kvault.app.operator import WebhookSettings

    if args.webhook_port < 0:
        return None
    flags.port(args.webhook_port, "--webhook-port", lowest=-1)
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


def _run(args: argparse.Namespace) -> int:
    from kvault.app.debug import dump_tasks, trace_memory

    trace_memory()  # first: the trace should see the imports below
    dump_tasks()
    from kvault.app.operator import Options, RunConfig, run_operator

    flags.port(args.port, "--port")
    if args.workers < 1:
        raise CliError("--workers must be at least 1", EXIT_USAGE)
    cfg = RunConfig(
        plane=flags.data_plane(args),
        metrics_port=None if args.metrics_port < 0 else args.metrics_port,
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
    run_operator(cfg)
    return 0
