"""Lease-based leader election against an in-memory API (compare-and-swap on resourceVersion)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any, cast

from kvault.controller.lease import Lease
from kvault.kube.client import KubeApiError, KubeClient


class FakeApi:
    """Just enough of the API server for one Lease."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] | None = None
        self.rv = 0

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        if self.obj is None:
            raise KubeApiError(404, "Not Found", "lease not found")
        return copy.deepcopy(self.obj)

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if self.obj is not None:
            raise KubeApiError(409, "Conflict", "exists")
        self.rv += 1
        self.obj = {**copy.deepcopy(dict(body)), "metadata": {"resourceVersion": str(self.rv)}}
        return copy.deepcopy(self.obj)

    async def request(self, method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        assert method == "PUT" and self.obj is not None
        if body["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise KubeApiError(409, "Conflict", "stale")
        self.rv += 1
        self.obj = copy.deepcopy(body)
        self.obj["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.obj)


def _lease(api: FakeApi, who: str, duration: float = 2.0) -> Lease:
    return Lease(cast(KubeClient, api), "ns", "kvault", who, duration=duration, renew=0.05)


async def test_only_one_holder_and_takeover_after_expiry() -> None:
    api = FakeApi()
    a, b = _lease(api, "a", duration=1), _lease(api, "b", duration=1)
    assert await a.try_acquire()
    assert not await b.try_acquire()
    assert await a.try_acquire()  # renewal
    assert api.obj is not None
    api.obj["spec"]["renewTime"] = "2000-01-01T00:00:00.000000Z"  # a stopped leader
    assert await b.try_acquire()
    assert api.obj["spec"]["holderIdentity"] == "b"
    assert api.obj["spec"]["leaseTransitions"] == 1
    assert not await a.try_acquire()


async def test_run_leads_until_stopped_and_releases() -> None:
    api = FakeApi()
    lease = _lease(api, "a")
    stop = asyncio.Event()
    led = asyncio.Event()

    async def lead(lost: asyncio.Event) -> None:
        led.set()
        await lost.wait()

    task = asyncio.create_task(lease.run(lead, stop))
    await asyncio.wait_for(led.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert api.obj is not None and api.obj["spec"]["holderIdentity"] == ""
    assert await _lease(api, "b").try_acquire()  # released: a successor needs no expiry


async def test_leader_steps_down_when_another_holds_the_lease() -> None:
    api = FakeApi()
    lease = _lease(api, "a")
    stop = asyncio.Event()
    stepped_down = asyncio.Event()
    led = asyncio.Event()

    async def lead(lost: asyncio.Event) -> None:
        led.set()
        await lost.wait()
        stepped_down.set()
        stop.set()

    task = asyncio.create_task(lease.run(lead, stop))
    await asyncio.wait_for(led.wait(), 5)
    assert api.obj is not None
    api.obj["spec"]["holderIdentity"] = "intruder"  # e.g. after a partition
    await asyncio.wait_for(stepped_down.wait(), 5)
    await asyncio.wait_for(task, 5)
