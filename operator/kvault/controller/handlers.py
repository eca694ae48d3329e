"""The controller: kopf handlers wired to the projector, the refresh queue and the index.

``Vault`` objects are few: kopf's change handlers (create/update/resume/delete, one
finalizer) run them. ``VaultSecret`` objects are many: level-based ``on.event`` handlers
feed an in-memory store and a work queue (notes kopf-and-hsm §1.5), so kopf writes no
progress or diff-base annotations on them; we keep our own finalizer. Managed Secrets are
watched with a server-side label selector, so an edited or deleted one is restored at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import kopf

from kvault.controller import metrics, vaults
from kvault.controller.projection import PLURAL, Projector, interesting_items, plan_of
from kvault.controller.refresh import Key, ProjectionIndex, WorkQueue
from kvault.controller.settings import (
    ANN_HASH,
    ANN_OWNER,
    API_VERSION,
    DEFAULT_REFRESH,
    FIELD_MANAGER,
    GROUP,
    MANAGED_BY,
    PROJECTION_FINALIZER,
    VAULTS,
    VAULTSECRETS,
    VERSION,
    Options,
    configure,
)
from kvault.kube import objects
from kvault.kube.client import KubeClient
from kvault.kube.events import EventPoster
from kvault.vault.changes import Change
from kvault.vault.service import Kvault

log = logging.getLogger(__name__)
COUNTS_DELAY = 1.0
_VOLATILE = ("lastSyncTime", "lastTransitionTime")
#: The metadata a reconcile, a finalizer patch or an Event reads of a VaultSecret.
_KEPT_META = (
    "name",
    "namespace",
    "uid",
    "generation",
    "resourceVersion",
    "finalizers",
    "deletionTimestamp",
)


def fingerprint(data: Mapping[str, Any], keys: Any) -> str:
    """Which values a Secret holds for ``keys`` (a digest kept in memory only)."""
    chosen = {k: data.get(k) for k in sorted(keys)}
    return hashlib.sha256(json.dumps(chosen).encode()).hexdigest()


def slim(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a VaultSecret the store keeps: no managedFields, labels or annotations
    (whole bodies were most of the operator's memory at 10,000 objects)."""
    meta = obj.get("metadata") or {}
    out = {k: obj[k] for k in ("apiVersion", "kind", "spec", "status") if k in obj}
    out["metadata"] = {k: meta[k] for k in _KEPT_META if k in meta}
    return out


def _stable(status: Mapping[str, Any]) -> str:
    def strip(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: strip(v) for k, v in value.items() if k not in _VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(status), sort_keys=True)


class Controller:
    def __init__(self, kv: Kvault, kube: KubeClient, options: Options) -> None:
        self.kv = kv
        self.kube = kube
        self.options = options
        self.events = EventPoster(kube, manager=FIELD_MANAGER, api_version=API_VERSION)
        self.projector = Projector(kv, kube, self.events, options)
        self.store: dict[Key, dict[str, Any]] = {}
        self.vault_bodies: dict[str, dict[str, Any]] = {}  # domain vault name -> Vault body
        self.index = ProjectionIndex()
        self.queue = WorkQueue(self.reconcile, options.workers)
        self.expected: dict[Key, tuple[str, tuple[str, ...], str]] = {}
        self.changed_at: dict[Key, float] = {}
        self._counts_due: set[str] = set()
        self._unsubscribe: Any = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self.queue.start()
        self._unsubscribe = self.kv.core.changes.subscribe(self.on_change)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.queue.stop()
        await self.events.drain()

    # -- the change feed ----------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """Called synchronously by the vault after a write: only enqueue."""
        now = time.monotonic()
        for key in self.index.affected(change):
            self.changed_at.setdefault(key, now)
            self.queue.add(key)
        if change.vault in self.vault_bodies and change.vault not in self._counts_due:
            self._counts_due.add(change.vault)
            asyncio.get_running_loop().call_later(
                COUNTS_DELAY, lambda: asyncio.ensure_future(self._counts(change.vault))
            )

    async def _counts(self, vault: str) -> None:
        self._counts_due.discard(vault)
        body = self.vault_bodies.get(vault)
        if body is None:
            return
        try:
            info = await self.kv.core.active_vault(vault)
            counts = await vaults.item_counts(self.kv, info)
            meta = body["metadata"]
            await objects.patch_status(
                self.kube, VAULTS, meta["namespace"], meta["name"], {"itemCounts": counts}
            )
        except Exception as exc:
            log.warning("item counts of %s not updated: %s", vault, type(exc).__name__)

    # -- VaultSecret --------------------------------------------------------------------------

    def on_vaultsecret_event(self, event: Mapping[str, Any]) -> None:
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if event.get("type") == "DELETED":
            self.store.pop(key, None)
            self.index.drop(key)
            self.queue.forget(key)
            self.expected.pop(key, None)
            return
        previous = self.store.get(key)
        self.store[key] = slim(obj)
        with contextlib.suppress(KeyError, TypeError, ValueError):
            self.index.put(key, *interesting_items(obj))
        needed = (
            previous is None
            or previous["metadata"].get("generation") != meta.get("generation")
            or meta.get("deletionTimestamp")
            or PROJECTION_FINALIZER not in (meta.get("finalizers") or ())
        )
        if needed:
            self.queue.add(key)

    def on_secret_event(self, event: Mapping[str, Any]) -> None:
        """A managed Secret changed or went: re-sync its VaultSecret unless it is as we left it."""
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        owner = (meta.get("annotations") or {}).get(ANN_OWNER)
        key = (str(meta.get("namespace")), str(owner))
        if owner is None or key not in self.store:
            return
        if event.get("type") == "DELETED":
            self.queue.add(key)
            return
        expected = self.expected.get(key)
        if expected is None:
            return
        digest, keys, values = expected
        have = (meta.get("annotations") or {}).get(ANN_HASH)
        if have != digest or fingerprint(obj.get("data") or {}, keys) != values:
            self.queue.add(key)

    async def reconcile(self, key: Key) -> None:
        body = self.store.get(key)
        if body is None:
            return
        meta = body["metadata"]
        if meta.get("deletionTimestamp"):
            if PROJECTION_FINALIZER in (meta.get("finalizers") or ()):
                await self.projector.finalize(body)
            return
        if PROJECTION_FINALIZER not in (meta.get("finalizers") or ()):
            await objects.add_finalizer(self.kube, VAULTSECRETS, body, PROJECTION_FINALIZER)
            meta.setdefault("finalizers", []).append(PROJECTION_FINALIZER)
        started = time.monotonic()
        result = await self.projector.sync(body)
        elapsed = time.monotonic() - started
        metrics.SYNC_SECONDS.observe(elapsed)
        if result.content_hash:
            self.expected[key] = (result.content_hash, result.keys, result.fingerprint)
        changed = self.changed_at.pop(key, None)
        if changed is not None and result.wrote:
            metrics.CHANGE_TO_WRITE.observe(time.monotonic() - changed)
        old = body.get("status") or {}
        if result.wrote or _stable(old) != _stable({**old, **result.status}):
            await objects.patch_status(self.kube, VAULTSECRETS, key[0], key[1], result.status)
            merged = {**old, **result.status}
            body["status"] = {k: v for k, v in merged.items() if v is not None}
        plan = plan_of(body, DEFAULT_REFRESH)
        if result.reason == "Retry":
            self.queue.add_after(key, 5.0)
        elif plan.refresh > 0:
            self.queue.add_after(key, plan.refresh)

    # -- Vault --------------------------------------------------------------------------------

    async def vault_changed(self, body: Mapping[str, Any], patch: kopf.Patch) -> None:
        meta = body["metadata"]
        self.vault_bodies[vaults.domain_name(meta["name"], meta["namespace"])] = dict(body)
        status, action = await vaults.reconcile(self.kv, self.kube, body, self.options)
        metrics.VAULTS.labels(action).inc()
        patch.status.update(status)
        name = vaults.domain_name(meta["name"], meta["namespace"])
        if action == "created":
            self.events.post(body, "Normal", "Provisioned", f"vault {name} created")
        elif action == "recovered":
            self.events.post(
                body, "Normal", "Recovered", f"soft-deleted vault {name} recovered with its items"
            )
        elif action == "invalid":
            self.events.post(body, "Warning", "InvalidSpec", status["conditions"][0]["message"])

    async def vault_deleted(self, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        name = vaults.domain_name(meta["name"], meta["namespace"])
        self.vault_bodies.pop(name, None)
        outcome = await vaults.remove(self.kv, body)
        metrics.VAULTS.labels(outcome).inc()
        self.events.post(body, "Normal", "Deleted", f"vault {name} {outcome}")

    # -- kopf ---------------------------------------------------------------------------------

    def registry(self) -> kopf.OperatorRegistry:
        reg = kopf.OperatorRegistry()
        ctl = self

        @kopf.on.startup(registry=reg)
        async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
            configure(settings)

        @kopf.on.login(registry=reg)
        async def login(**_: Any) -> kopf.AiohttpSession:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ssl=ctl.kube.tls),
                headers=ctl.kube.auth_headers(),
            )
            return kopf.AiohttpSession(
                server=ctl.kube.config.server,
                aiohttp_session=session,
                default_namespace=ctl.kube.config.namespace,
            )

        @kopf.on.create(GROUP, VERSION, "vaults", id="provision", registry=reg)
        @kopf.on.update(GROUP, VERSION, "vaults", id="update", registry=reg)
        @kopf.on.resume(GROUP, VERSION, "vaults", id="resume", registry=reg)
        async def vault_changed(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
            await ctl.vault_changed(body, patch)

        @kopf.on.delete(GROUP, VERSION, "vaults", id="remove", registry=reg)
        async def vault_deleted(body: kopf.Body, **_: Any) -> None:
            await ctl.vault_deleted(body)

        @kopf.on.event(GROUP, VERSION, "vaults", id="vault-cache", registry=reg)
        async def vault_event(event: kopf.RawEvent, **_: Any) -> None:
            obj = event.get("object") or {}
            meta = obj.get("metadata") or {}
            name = vaults.domain_name(str(meta.get("name")), str(meta.get("namespace")))
            if event.get("type") == "DELETED":
                ctl.vault_bodies.pop(name, None)
            else:
                ctl.vault_bodies[name] = dict(obj)

        @kopf.on.event(GROUP, VERSION, PLURAL, id="vaultsecret", registry=reg)
        async def vaultsecret_event(event: kopf.RawEvent, **_: Any) -> None:
            ctl.on_vaultsecret_event(event)

        @kopf.on.event(
            "v1", "secrets", id="managed-secret", labels={MANAGED_BY: FIELD_MANAGER}, registry=reg
        )
        async def secret_event(event: kopf.RawEvent, **_: Any) -> None:
            ctl.on_secret_event(event)

        return reg
