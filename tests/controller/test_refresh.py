"""The work queue and the item index behind instant refresh."""

from __future__ import annotations

import asyncio

from kvault.controller.vaultsecret.index import ProjectionIndex
from kvault.controller.workqueue import Key, WorkQueue
from kvault.vault.changes import Change


async def test_queue_never_runs_a_key_twice_at_once_and_loses_no_update() -> None:
    running: set[Key] = set()
    calls: list[Key] = []
    gate, started, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handler(key: Key) -> None:
        assert key not in running
        running.add(key)
        calls.append(key)
        if len(calls) == 1:
            started.set()
            await gate.wait()
        running.discard(key)
        if len(calls) == 2:
            finished.set()

    q = WorkQueue(handler, workers=4)
    q.start()
    key = ("ns", "a")
    q.add(key)
    await asyncio.wait_for(started.wait(), 5)
    assert not q.superseded(key)
    q.add(key)  # while it runs: handled once more afterwards
    q.add(key)  # de-duplicated
    assert q.superseded(key)  # what the running handler read is out of date
    gate.set()
    await asyncio.wait_for(finished.wait(), 5)
    await q.stop()
    assert calls == [key, key]


async def test_add_after_keeps_the_earliest_timer() -> None:
    seen: list[Key] = []
    done = asyncio.Event()

    async def handler(key: Key) -> None:
        seen.append(key)
        done.set()

    q = WorkQueue(handler, workers=1)
    q.start()
    q.add_after(("ns", "a"), 3600)
    q.add_after(("ns", "a"), 0.01)
    await asyncio.wait_for(done.wait(), 5)
    await q.stop()
    assert seen == [("ns", "a")]


def test_index_maps_items_and_listings_to_projections() -> None:
    idx = ProjectionIndex()
    idx.put(("ns", "one"), "main.ns", {"db-password"}, False)
    idx.put(("ns", "all"), "main.ns", set(), True)
    idx.put(("ns", "other"), "other.ns", {"db-password"}, False)
    assert idx.affected(Change("main.ns", "SecretSet", "DB-Password")) == {
        ("ns", "one"),
        ("ns", "all"),
    }
    assert idx.affected(Change("main.ns", "VaultUpdate")) == {("ns", "one"), ("ns", "all")}
    idx.put(("ns", "one"), "main.ns", {"api-key"}, False)
    assert idx.affected(Change("main.ns", "SecretSet", "db-password")) == {("ns", "all")}
    idx.drop(("ns", "all"))
    assert idx.affected(Change("main.ns", "SecretSet", "api-key")) == {("ns", "one")}
