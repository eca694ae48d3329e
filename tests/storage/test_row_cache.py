"""Rows kept in memory by a watched PostgreSQL store, and forgotten when any replica writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest

from kvault.storage.base import Delete, Op, Put, Row
from kvault.storage.notices import Watcher
from kvault.storage.postgresql import LISTENER_APPLICATION, PostgreSQLStorage
from kvault.storage.row_cache import RowCache
from tests.fixtures.postgres import PostgresServer, database_of

NOTHING = Watcher(lambda _n: None, lambda _n: None, lambda: None)


def test_a_read_racing_an_invalidation_is_not_kept() -> None:
    cache = RowCache()
    cache.resume()
    epoch = cache.epoch
    cache.forget(["k"])  # a commit touched k while the read was under way
    cache.keep(Row("k", b"old", 1), epoch)
    assert cache.get("k") is None
    cache.keep(Row("k", b"new", 2), cache.epoch)
    assert cache.get("k") == Row("k", b"new", 2)


def test_nothing_is_kept_while_suspended_and_the_bound_holds() -> None:
    cache = RowCache(max_bytes=1024)
    cache.keep(Row("k", b"v", 1), cache.epoch)
    assert cache.get("k") is None  # never resumed: notices are not heard
    cache.resume()
    for i in range(40):
        cache.keep(Row(f"k{i}", b"x" * 60, 1), cache.epoch)
    assert len(cache) == 1024 // 60
    assert cache.get("k0") is None and cache.get("k39") is not None
    cache.forget(prefixes=["k3"])
    assert cache.get("k39") is None and cache.get("k29") is not None
    cache.suspend()
    assert cache.get("k29") is None


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> float:
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > 5:
            raise AssertionError(f"not within 5 s: {what}")
        await asyncio.sleep(0.002)
    return time.monotonic() - start


@pytest.fixture
async def stores(postgres_server: PostgresServer) -> AsyncIterator[tuple[PostgreSQLStorage, ...]]:
    dsn = postgres_server.create_database()
    a, b = PostgreSQLStorage(dsn, pool_size=2), PostgreSQLStorage(dsn, pool_size=2)
    for s in (a, b):
        await s.open()
    await a.watch(NOTHING)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()
        postgres_server.drop_database(database_of(dsn))


async def test_another_replicas_commit_replaces_the_kept_row(
    stores: tuple[PostgreSQLStorage, ...],
) -> None:
    a, b = stores
    await b.commit([Put("k", b"one")])

    async def kept() -> bool:  # a read racing the commit's own notice is not kept
        return (await a.get("k")) is not None and len(a.cache) == 1

    await _until(kept, "the row kept")
    hits = a.cache.hits
    assert (await a.get("k")).value == b"one"  # type: ignore[union-attr]
    assert a.cache.hits == hits + 1  # served from memory
    await b.commit([Put("k", b"two")])

    async def fresh() -> bool:
        row = await a.get("k")
        return row is not None and row.value == b"two"

    took = await _until(fresh, "the other replica's write")
    print(f"another replica's write read here after {took * 1000:.1f} ms")


async def test_own_commits_are_read_back_at_once(stores: tuple[PostgreSQLStorage, ...]) -> None:
    """A commit keeps what it wrote: the next read (a SET reads the head it replaces) is
    served from memory, at the revision the commit gave it."""
    a, _ = stores
    await a.commit([Put("k", b"one")])
    hits = a.cache.hits
    assert await a.get("k") == Row("k", b"one", 1)
    await a.commit([Put("k", b"two", expect=1), Put("gone", b"x"), Delete("gone")])
    assert await a.get("k") == Row("k", b"two", 2)
    assert a.cache.hits == hits + 2
    assert await a.get("gone") is None  # put, then deleted in the same commit: not kept


async def test_a_commit_that_raced_a_notice_keeps_nothing(
    stores: tuple[PostgreSQLStorage, ...],
) -> None:
    """Another replica's notice arriving while our commit runs may be of a newer row: what
    the commit wrote is forgotten, not kept."""
    a, b = stores
    commit = a._commit

    async def slow(ops: Sequence[Op], notice: str | None) -> dict[str, int]:
        written = await commit(ops, notice)
        epoch = a.cache.epoch
        await b.commit([Put("other", b"x")])

        async def heard() -> bool:
            return a.cache.epoch > epoch

        await _until(heard, "b's notice heard")
        return written

    a._commit = slow  # type: ignore[method-assign]
    await a.commit([Put("k", b"one")])
    assert len(a.cache) == 0
    hits = a.cache.hits
    assert await a.get("k") == Row("k", b"one", 1)
    assert a.cache.hits == hits  # read from the database


async def test_a_lost_listening_connection_stops_serving_from_memory(
    stores: tuple[PostgreSQLStorage, ...], postgres_server: PostgresServer
) -> None:
    a, b = stores
    await b.commit([Put("k", b"one")])

    async def kept() -> bool:
        return (await a.get("k")) is not None and len(a.cache) == 1

    await _until(kept, "the row kept")
    postgres_server.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE application_name = '{LISTENER_APPLICATION}'"
    )

    async def listening_again() -> bool:
        return a.cache.active and len(a.cache) == 0

    await _until(listening_again, "the cache suspended and resumed empty")
    await b.commit([Put("k", b"two")])

    async def fresh() -> bool:
        row = await a.get("k")
        return row is not None and row.value == b"two"

    await _until(fresh, "a write after listening again")


async def test_an_unwatched_store_keeps_nothing(stores: tuple[PostgreSQLStorage, ...]) -> None:
    _, b = stores
    await b.commit([Put("k", b"one")])
    await b.get("k")
    await b.get("k")
    assert len(b.cache) == 0 and b.cache.hits == 0
