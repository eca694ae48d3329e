"""Key rotation notices: a Notify action of a key's rotation policy becomes a ``KeyNearExpiry``
Event on the ``Vault`` object whose vault holds the key, and one more on the metric
``kvault_key_notifications_total{vault}``.

The domain vault behind ``Vault`` ``name`` in ``namespace`` is ``name.namespace``
(:func:`~kvault.controller.vault.spec.domain_name`); a namespace has no dots, so the last dot
splits it back. The Vault's body comes from the Vault controller's cache (kept from kopf's
watch) or, before the watch has delivered it, from the API server. A vault that no Vault
object stands for (one made with the CLI or by ``kvault server --dev``) gets the metric and a
log line only.

The message names the key, its version and its expiry: never key material.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from kvault.controller import metrics
from kvault.controller.settings import VAULTS
from kvault.controller.vault.spec import domain_name
from kvault.errors import KvaultError
from kvault.kube import objects
from kvault.kube.client import KubeClient
from kvault.kube.events import EventPoster
from kvault.vault.keys.scheduler import NotifyEvent

log = logging.getLogger(__name__)
REASON = "KeyNearExpiry"


def vault_object(vault: str) -> tuple[str, str] | None:
    """(namespace, name) of the Vault object behind domain vault ``vault``, or ``None`` when
    the name is not one the Vault controller makes."""
    name, dot, namespace = vault.rpartition(".")
    if not dot or not name or not namespace or domain_name(name, namespace) != vault:
        return None
    return namespace, name


def _when(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def message(event: NotifyEvent) -> str:
    expiry = "has no expiry" if event.expires is None else f"expires at {_when(event.expires)}"
    return (
        f"key {event.key} (version {event.version}) of vault {event.vault} {expiry}; "
        "its rotation policy asks for this notice"
    )


class KeyNotices:
    """The ``notify`` of :class:`~kvault.vault.keys.scheduler.RotationScheduler` in the
    operator. ``bodies`` is the Vault controller's cache (domain vault name -> Vault body)."""

    def __init__(
        self, kube: KubeClient, events: EventPoster, bodies: Mapping[str, Mapping[str, Any]]
    ) -> None:
        self._kube = kube
        self._events = events
        self._bodies = bodies

    async def __call__(self, event: NotifyEvent) -> None:
        metrics.KEY_NOTIFICATIONS.labels(event.vault).inc()
        text = message(event)
        body = await vault_body(self._kube, self._bodies, event.vault, REASON)
        if body is None:
            log.info("%s (no Vault object for this vault: no Event)", text)
            return
        log.info("%s", text)
        self._events.post(body, "Warning", REASON, text)


async def vault_body(
    kube: KubeClient, bodies: Mapping[str, Mapping[str, Any]], vault: str, reason: str
) -> Mapping[str, Any] | None:
    """The body of the Vault object behind domain vault ``vault``: from the Vault
    controller's cache, else from the API server; ``None`` when there is none (or it could not
    be read: the Event ``reason`` is best effort)."""
    cached = bodies.get(vault)
    if cached is not None:
        return cached
    where = vault_object(vault)
    if where is None:
        return None
    try:
        return await objects.get_or_none(kube, VAULTS, *where)
    except KvaultError as exc:  # the notice still counts; the Event is best effort
        log.warning("Vault %s/%s not read for a %s Event: %s", *where, reason, exc)
        return None
