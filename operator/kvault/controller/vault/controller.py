"""The ``Vault`` controller: kopf's change handlers call it (Vaults are few); it keeps the
bodies of the Vaults it knows, so item counts follow writes to their vaults."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from kvault.controller import metrics
from kvault.controller.settings import CA_CONFIGMAP, VAULTS, Options
from kvault.controller.vault.counts import item_counts
from kvault.controller.vault.provision import provision, remove
from kvault.controller.vault.publish import publish
from kvault.controller.vault.spec import domain_name, vault_uri
from kvault.controller.vault.status import ready_status
from kvault.errors import BadParameter, NotFound
from kvault.kube import objects
from kvault.kube.client import KubeClient
from kvault.kube.events import EventPoster
from kvault.vault.changes import Change
from kvault.vault.service import Kvault

log = logging.getLogger(__name__)
COUNTS_DELAY = 1.0


class VaultController:
    def __init__(self, kv: Kvault, kube: KubeClient, events: EventPoster, options: Options) -> None:
        self.kv = kv
        self.kube = kube
        self.events = events
        self.options = options
        self.bodies: dict[str, dict[str, Any]] = {}  # domain vault name -> Vault body
        self._counts_due: set[str] = set()

    def on_change(self, change: Change) -> None:
        """A write to a vault: its counts are refreshed once per ``COUNTS_DELAY``."""
        if change.vault in self.bodies and change.vault not in self._counts_due:
            self._counts_due.add(change.vault)
            asyncio.get_running_loop().call_later(
                COUNTS_DELAY, lambda: asyncio.ensure_future(self._counts(change.vault))
            )

    async def _counts(self, vault: str) -> None:
        self._counts_due.discard(vault)
        body = self.bodies.get(vault)
        if body is None:
            return
        try:
            info = await self.kv.vault(vault)
            counts = await item_counts(self.kv, info)
            meta = body["metadata"]
            await objects.patch_status(
                self.kube, VAULTS, meta["namespace"], meta["name"], {"itemCounts": counts}
            )
        except Exception as exc:
            log.warning("item counts of %s not updated: %s", vault, type(exc).__name__)

    def on_event(self, event: Mapping[str, Any]) -> None:
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        name = domain_name(str(meta.get("name")), str(meta.get("namespace")))
        if event.get("type") == "DELETED":
            self.bodies.pop(name, None)
        else:
            self.bodies[name] = dict(obj)

    async def reconcile(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """Provision and publish; returns the status to write and what was done."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        vault = domain_name(name, ns)
        try:
            done = await provision(self.kv, vault, body.get("spec") or {}, ns)
        except (BadParameter, NotFound) as exc:
            return ready_status(body, False, "InvalidSpec", str(exc)), "invalid"
        await publish(self.kube, body, self.options)
        counts = await item_counts(self.kv, done.info)
        status = ready_status(
            body,
            True,
            "Provisioned",
            f"vault {vault} is ready ({len(done.info.role_assignments)} role assignments)",
            vaultUri=vault_uri(name, ns),
            itemCounts=counts,
            caConfigMap=CA_CONFIGMAP if self.options.ca_pem else None,
        )
        return status, done.action

    async def changed(self, body: Mapping[str, Any], status: MutableMapping[str, Any]) -> None:
        """Created, updated or resumed: reconcile; ``status`` receives what to report."""
        meta = body["metadata"]
        name = domain_name(meta["name"], meta["namespace"])
        self.bodies[name] = dict(body)
        result, action = await self.reconcile(body)
        metrics.VAULTS.labels(action).inc()
        status.update(result)
        if action == "created":
            self.events.post(body, "Normal", "Provisioned", f"vault {name} created")
        elif action == "recovered":
            self.events.post(
                body, "Normal", "Recovered", f"soft-deleted vault {name} recovered with its items"
            )
        elif action == "invalid":
            self.events.post(body, "Warning", "InvalidSpec", result["conditions"][0]["message"])

    async def deleted(self, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        name = domain_name(meta["name"], meta["namespace"])
        self.bodies.pop(name, None)
        outcome = await remove(self.kv, name, body.get("spec") or {})
        metrics.VAULTS.labels(outcome).inc()
        self.events.post(body, "Normal", "Deleted", f"vault {name} {outcome}")
