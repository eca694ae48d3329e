"""The ``VaultSecret`` controller. VaultSecrets are many: level-based watch events (from
:mod:`kvault.kube.informer`, not kopf) feed an in-memory store and a work queue (notes
kopf-and-hsm §1.5), so nothing writes progress or diff-base annotations on them; we keep our
own finalizer. Managed Secrets are watched too, so an edited or deleted one is restored at
once."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from kvault.controller import metrics
from kvault.controller.settings import (
    ANN_HASH,
    ANN_OWNER,
    DEFAULT_REFRESH,
    PROJECTION_FINALIZER,
    VAULTSECRETS,
    Options,
)
from kvault.controller.vaultsecret.index import ProjectionIndex
from kvault.controller.vaultsecret.plan import interesting_items, plan_of
from kvault.controller.vaultsecret.projector import Projector
from kvault.controller.vaultsecret.secret import fingerprint
from kvault.controller.vaultsecret.status import stable
from kvault.controller.workqueue import Key, WorkQueue
from kvault.kube import objects
from kvault.kube.client import KubeClient
from kvault.kube.events import EventPoster
from kvault.vault.changes import Change
from kvault.vault.service import Kvault

RETRY_SECONDS = 5.0
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


def slim(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a VaultSecret the store keeps: no managedFields, labels or annotations
    (whole bodies were most of the operator's memory at 10,000 objects)."""
    meta = obj.get("metadata") or {}
    out = {k: obj[k] for k in ("apiVersion", "kind", "spec", "status") if k in obj}
    out["metadata"] = {k: meta[k] for k in _KEPT_META if k in meta}
    return out


class VaultSecretController:
    def __init__(self, kv: Kvault, kube: KubeClient, events: EventPoster, options: Options) -> None:
        self.kube = kube
        self.projector = Projector(kv, kube, events, options)
        self.store: dict[Key, dict[str, Any]] = {}
        self.index = ProjectionIndex()
        self.queue = WorkQueue(self.reconcile, options.workers)
        #: What we last wrote per VaultSecret: (content hash, keys, fingerprint of values).
        self.expected: dict[Key, tuple[str, tuple[str, ...], str]] = {}
        self.changed_at: dict[Key, float] = {}

    def on_change(self, change: Change) -> None:
        """A vault write: re-sync the VaultSecrets that read what changed."""
        now = time.monotonic()
        for key in self.index.affected(change):
            self.changed_at.setdefault(key, now)
            self.queue.add(key)

    def on_event(self, event: Mapping[str, Any]) -> None:
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
        plan = plan_of(body, DEFAULT_REFRESH)
        if meta.get("deletionTimestamp"):
            if PROJECTION_FINALIZER in (meta.get("finalizers") or ()):
                await self.projector.finalize(body, plan)
            return
        if PROJECTION_FINALIZER not in (meta.get("finalizers") or ()):
            await objects.add_finalizer(self.kube, VAULTSECRETS, body, PROJECTION_FINALIZER)
            meta.setdefault("finalizers", []).append(PROJECTION_FINALIZER)
        started = time.monotonic()
        result = await self.projector.sync(body, plan, lambda: self.queue.superseded(key))
        metrics.SYNC_SECONDS.observe(time.monotonic() - started)
        if result.content_hash:
            self.expected[key] = (result.content_hash, result.keys, result.fingerprint)
        changed = self.changed_at.pop(key, None)
        if changed is not None and result.wrote:
            metrics.CHANGE_TO_WRITE.observe(time.monotonic() - changed)
        old = body.get("status") or {}
        if result.wrote or stable(old) != stable({**old, **result.status}):
            await objects.patch_status(self.kube, VAULTSECRETS, key[0], key[1], result.status)
            merged = {**old, **result.status}
            body["status"] = {k: v for k, v in merged.items() if v is not None}
        if result.reason == "Retry":
            self.queue.add_after(key, RETRY_SECONDS)
        elif plan.refresh > 0:
            self.queue.add_after(key, plan.refresh)
