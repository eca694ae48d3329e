"""One active controller among replicas: a ``coordination.k8s.io/v1`` Lease.

kopf's peering only pauses lower-priority peers and pauses everyone on a tie (notes §2.1),
so it is not leader election. This is the client-go protocol in small: acquire when the
lease is free or expired, renew every ``renew`` seconds, compare-and-swap on
``resourceVersion``; a leader that cannot renew within the lease duration steps down, and
a graceful exit releases the lease so a successor takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from kvault.errors import KvaultError
from kvault.kube.client import KubeClient
from kvault.kube.errors import Conflict, NotFound
from kvault.kube.resources import LEASES

log = logging.getLogger(__name__)


def _micro(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> float:
    if not text:
        return 0.0
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class Lease:
    """Leader election on Lease ``namespace/name``; ``held_changed`` is the hook a subclass
    uses to report leadership (a metric, say)."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        duration: float = 15.0,
        renew: float | None = None,
    ) -> None:
        self.kube = kube
        self.path = LEASES.path(namespace, name)
        self.create_path = LEASES.path(namespace)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.duration = duration
        self.renew = renew or max(duration / 3, 0.5)
        self.held = False

    def held_changed(self, held: bool) -> None:
        """Called when leadership is taken or given up."""

    def _spec(self, now: float, transitions: int, acquired: float) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(int(self.duration), 1),
            "acquireTime": _micro(acquired),
            "renewTime": _micro(now),
            "leaseTransitions": transitions,
        }

    async def try_acquire(self) -> bool:
        """One attempt to take or renew the lease; True while we hold it."""
        now = time.time()
        try:
            lease = await self.kube.get(self.path)
        except NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, 0, now),
            }
            try:
                await self.kube.post(self.create_path, body)
            except Conflict:
                return False
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        renewed = _parse(spec.get("renewTime"))
        expired = now > renewed + float(spec.get("leaseDurationSeconds") or self.duration)
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            acquired = _parse(spec.get("acquireTime")) or now
        else:
            transitions += 1
            acquired = now
        lease["spec"] = self._spec(now, transitions, acquired)
        try:
            await self.kube.request("PUT", self.path, body=lease)
        except Conflict:
            return False
        return True

    async def release(self) -> None:
        if not self.held:
            return
        self.held = False
        self.held_changed(False)
        try:
            lease = await self.kube.get(self.path)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["renewTime"] = _micro(0)
                await self.kube.request("PUT", self.path, body=lease)
        except KvaultError as exc:
            log.warning("could not release lease %s: %s", self.name, exc)

    async def run(
        self,
        lead: Callable[[asyncio.Event], Coroutine[None, None, None]],
        stop: asyncio.Event,
    ) -> None:
        """Until ``stop``: acquire, then run ``lead(lost)`` while renewing; ``lost`` is set
        when the lease cannot be renewed in time (``lead`` must then stop leading)."""
        while not stop.is_set():
            try:
                got = await self.try_acquire()
            except KvaultError as exc:
                log.warning("lease %s: %s", self.name, exc)
                got = False
            if not got:
                await _wait(stop, self.renew)
                continue
            self.held = True
            self.held_changed(True)
            log.info("acquired lease %s/%s as %s", self.namespace, self.name, self.identity)
            lost = asyncio.Event()
            leader = asyncio.create_task(lead(lost))
            renewer = asyncio.create_task(self._keep(lost, stop))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([leader, renewer, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            lost.set()
            await asyncio.gather(leader, return_exceptions=True)
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            if stop.is_set():
                await self.release()
                return
            self.held = False
            self.held_changed(False)
            log.warning("lost lease %s/%s", self.namespace, self.name)

    async def _keep(self, lost: asyncio.Event, stop: asyncio.Event) -> None:
        last = time.monotonic()
        while not stop.is_set() and not lost.is_set():
            await _wait(stop, self.renew)
            try:
                if not await self.try_acquire():
                    return  # somebody else holds it now
                last = time.monotonic()
                continue
            except KvaultError as exc:
                log.warning("lease renewal failed: %s", exc)
            if time.monotonic() - last > self.duration * 2 / 3:
                return  # step down before anybody else may take over


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
