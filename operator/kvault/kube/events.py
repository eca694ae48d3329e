"""Kubernetes Events about objects, posted in the background: a failure to post never fails
the caller, and a burst never starves other calls of connections."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from kvault.errors import KvaultError
from kvault.kube.client import KubeClient
from kvault.kube.resources import EVENTS

log = logging.getLogger(__name__)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class EventPoster:
    """Events on the objects whose bodies are passed in. Messages must name objects and
    reasons, never values (they are readable by anyone who may list Events)."""

    #: Events in flight at once, and the backlog beyond which new ones are dropped: a cold
    #: start of thousands of objects must not starve reconciles (or the Lease) of connections.
    CONCURRENCY = 4
    BACKLOG = 2000

    def __init__(
        self,
        kube: KubeClient,
        component: str = "kvault-operator",
        *,
        manager: str = "kvault",
        api_version: str = "v1",
    ) -> None:
        self._kube = kube
        self._component = component
        self._manager = manager
        self._api_version = api_version  # of objects whose body does not say
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

    def event(
        self, body: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> dict[str, Any]:
        """The Event object about ``body``."""
        meta = body.get("metadata", {})
        ns = meta.get("namespace") or "default"
        now = _now()
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta.get('name')}.{uuid.uuid4().hex[:12]}", "namespace": ns},
            "involvedObject": {
                "apiVersion": body.get("apiVersion", self._api_version),
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
            "reportingComponent": self._manager,
            "reportingInstance": self._component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }

    async def _post(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        event = self.event(body, type_, reason, message)
        ns = event["metadata"]["namespace"]
        try:
            async with self._slots:
                await self._kube.post(EVENTS.path(ns), event)
        except KvaultError as exc:
            name = event["involvedObject"]["name"]
            log.warning("could not post Event %s on %s/%s: %s", reason, ns, name, exc)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
