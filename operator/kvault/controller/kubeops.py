"""The operator's Kubernetes calls, over the one :class:`KubeClient` (paths, Events)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from kvault.controller.conditions import now_iso
from kvault.controller.settings import API_VERSION, FIELD_MANAGER, GROUP, VERSION
from kvault.errors import KvaultError
from kvault.kube.client import JSON_PATCH, KubeApiError, KubeClient

log = logging.getLogger(__name__)


def custom_path(plural: str, ns: str, name: str = "", sub: str = "") -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{plural}"
    return path + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


def core_path(plural: str, ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/{plural}" + (f"/{name}" if name else "")


def apps_path(kind: str, ns: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{ns}/{kind.lower()}s/{name}"


async def get_or_none(kube: KubeClient, path: str) -> dict[str, Any] | None:
    try:
        return await kube.get(path)
    except KubeApiError as exc:
        if exc.status == 404:
            return None
        raise


async def delete_if_exists(kube: KubeClient, path: str, uid: str | None = None) -> bool:
    """Delete; with ``uid`` only that incarnation (a precondition). False if it was gone."""
    body = {"preconditions": {"uid": uid}} if uid else None
    try:
        await kube.delete(path, body)
    except KubeApiError as exc:
        if exc.status in (404, 409):
            return False
        raise
    return True


async def patch_status(
    kube: KubeClient, plural: str, ns: str, name: str, status: Mapping[str, Any]
) -> None:
    try:
        await kube.patch(custom_path(plural, ns, name, "status"), {"status": dict(status)})
    except KubeApiError as exc:
        if exc.status != 404:  # deleted meanwhile: nothing to report on
            raise


async def remove_finalizer(
    kube: KubeClient, path: str, body: Mapping[str, Any], final: str
) -> None:
    """JSON patch with a test on the list, so a concurrent change is not overwritten."""
    finalizers = list(body.get("metadata", {}).get("finalizers") or [])
    if final not in finalizers:
        return
    index = finalizers.index(final)
    ops = [
        {"op": "test", "path": f"/metadata/finalizers/{index}", "value": final},
        {"op": "remove", "path": f"/metadata/finalizers/{index}"},
    ]
    try:
        await kube.patch(path, ops, content_type=JSON_PATCH)
    except KubeApiError as exc:
        if exc.status not in (404, 422):
            raise


async def add_finalizer(kube: KubeClient, path: str, body: Mapping[str, Any], final: str) -> None:
    meta = body.get("metadata", {})
    if final in (meta.get("finalizers") or []):
        return
    ops: list[dict[str, Any]] = (
        [{"op": "add", "path": "/metadata/finalizers/-", "value": final}]
        if meta.get("finalizers")
        else [{"op": "add", "path": "/metadata/finalizers", "value": [final]}]
    )
    await kube.patch(path, ops, content_type=JSON_PATCH)


class EventPoster:
    """Kubernetes Events about our objects, posted in the background (a failure to post
    never fails a reconcile). Messages name objects and reasons, never values."""

    #: Events in flight at once, and the backlog beyond which new ones are dropped: a cold
    #: start of thousands of objects must not starve reconciles (or the Lease) of connections.
    CONCURRENCY = 4
    BACKLOG = 2000

    def __init__(self, kube: KubeClient, component: str = "kvault-operator") -> None:
        self._kube = kube
        self._component = component
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.CONCURRENCY)
        self.dropped = 0

    def post(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        if len(self._tasks) >= self.BACKLOG:
            self.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self._post(body, type_, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        meta = body.get("metadata", {})
        ns = meta.get("namespace") or "default"
        now = now_iso()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta.get('name')}.{uuid.uuid4().hex[:12]}", "namespace": ns},
            "involvedObject": {
                "apiVersion": body.get("apiVersion", API_VERSION),
                "kind": body.get("kind"),
                "name": meta.get("name"),
                "namespace": ns,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": self._component},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": self._component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            async with self._slots:
                await self._kube.post(core_path("events", ns), event)
        except KvaultError as exc:
            log.warning("could not post Event %s on %s/%s: %s", reason, ns, meta.get("name"), exc)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
