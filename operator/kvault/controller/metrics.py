"""Prometheus metrics of the controller, in their own registry (served on /metrics)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry()

SYNCS = Counter(
    "kvault_vaultsecret_syncs_total",
    "VaultSecret reconciles by outcome reason (Synced, Forbidden, ...)",
    ["reason"],
    registry=REGISTRY,
)
WRITES = Counter(
    "kvault_secret_writes_total",
    "Kubernetes Secrets written (skipped when unchanged)",
    registry=REGISTRY,
)
DENIALS = Counter(
    "kvault_projection_denials_total",
    "Projections refused by role assignments",
    registry=REGISTRY,
)
SYNC_SECONDS = Histogram(
    "kvault_vaultsecret_sync_seconds",
    "Time of one VaultSecret reconcile",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
CHANGE_TO_WRITE = Histogram(
    "kvault_change_to_secret_seconds",
    "From an item change in the vault to the Secret written",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "kvault_workqueue_depth", "VaultSecrets waiting to be reconciled", registry=REGISTRY
)
VAULTS = Counter(
    "kvault_vault_reconciles_total", "Vault reconciles by outcome", ["outcome"], registry=REGISTRY
)
LEADER = Gauge(
    "kvault_leader", "1 while this replica holds the controller Lease", registry=REGISTRY
)
RESTARTS = Counter(
    "kvault_rollout_restarts_total",
    "Workloads restarted after a content change",
    registry=REGISTRY,
)

KEY_NOTIFICATIONS = Counter(
    "kvault_key_notifications_total",
    "Key rotation policy Notify actions carried out (KeyNearExpiry Events), by vault",
    ["vault"],
    registry=REGISTRY,
)

CERTIFICATE_EXPIRATION = Gauge(
    "kvault_certificate_expiration_timestamp_seconds",
    "Expiry (exp, Unix seconds) of each certificate's current version",
    ["vault", "certificate"],
    registry=REGISTRY,
)
CERTIFICATE_RENEWAL = Gauge(
    "kvault_certificate_renewal_timestamp_seconds",
    "When the renewal scheduler renews each certificate's current version (its AutoRenew due "
    "time, Unix seconds; absent when it never will: no AutoRenew, disabled, issuer Unknown)",
    ["vault", "certificate"],
    registry=REGISTRY,
)
CERTIFICATE_RENEWALS = Counter(
    "kvault_certificate_renewals_total",
    "Certificate AutoRenew attempts by vault and outcome (ok, or the error that stopped it)",
    ["vault", "outcome"],
    registry=REGISTRY,
)
CERTIFICATE_NOTIFICATIONS = Counter(
    "kvault_certificate_notifications_total",
    "Certificate EmailContacts actions carried out (CertificateNearExpiry Events), by vault",
    ["vault"],
    registry=REGISTRY,
)


def metrics_app(*others: CollectorRegistry) -> web.Application:
    """/metrics: the controller's registry and ``others`` (the data plane's) in one page."""
    registries = (REGISTRY, *others)

    async def page(_: web.Request) -> web.Response:
        body = b"".join(generate_latest(r) for r in registries)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", page)
    return app
