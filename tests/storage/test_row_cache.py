"""Rows kept in memory by a watched PostgreSQL store, and forgotten when any replica writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest

from kvault.storage import row_cache
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


def test_invalidations_of_other_rows_do_not_stop_a_row_being_kept() -> None:
    """Under load other commits run while a read or commit is under way: only a change of
    its own row stops it being kept."""
    cache = RowCache()
    cache.resume()
    epoch = cache.epoch
    cache.forget(["a", "b"])
    cache.put(Row("c", b"c1", 1), cache.epoch)
    assert cache.keep(Row("k", b"v", 1), epoch)
    assert cache.get("k") == Row("k", b"v", 1)


def test_a_read_older_than_a_commit_never_replaces_what_it_wrote() -> None:
    cache = RowCache()
    cache.resume()
    read_started = cache.epoch  # a read of k begins; it will see the old row
    commit_started = cache.epoch
    cache.put(Row("k", b"new", 2), commit_started)
    assert not cache.keep(Row("k", b"old", 1), read_started)
    assert cache.get("k") == Row("k", b"new", 2)


def test_a_commit_that_raced_a_change_of_its_row_keeps_nothing() -> None:
    cache = RowCache()
    cache.resume()
    commit_started = cache.epoch
    cache.forget(["k"])  # another replica's commit of k heard meanwhile
    cache.put(Row("k", b"mine", 2), commit_started)
    assert cache.get("k") is None


def test_when_marks_are_dropped_for_the_bound_only_more_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(row_cache, "MARKS", 3)
    cache = RowCache()
    cache.resume()
    epoch = cache.epoch
    cache.forget(["k"])
    cache.forget(["a", "b", "c"])  # k's mark is dropped: the floor rises past it
    assert not cache.keep(Row("k", b"old", 1), epoch)
    assert not cache.keep(Row("z", b"z", 1), epoch)  # conservative: read before the floor
    assert cache.keep(Row("z", b"z", 1), cache.epoch)
    assert cache.keep(Row("k", b"new", 2), cache.epoch)


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


async def test_a_commit_that_raced_a_notice_of_its_row_keeps_nothing(
    stores: tuple[PostgreSQLStorage, ...],
) -> None:
    """Another replica's notice of the same row, arriving while our commit runs, may be of a
    newer row: what the commit wrote is forgotten, not kept. A notice of other rows does not
    matter."""
    a, b = stores
    commit = a._commit

    async def slow(ops: Sequence[Op], notice: str | None) -> dict[str, int]:
        written = await commit(ops, notice)
        for key in ("other", "k"):
            epoch = a.cache.epoch
            await b.commit([Put(key, b"theirs")])

            async def heard(since: int = epoch) -> bool:
                return a.cache.epoch > since

            await _until(heard, f"b's notice of {key} heard")
        return written

    a._commit = slow  # type: ignore[method-assign]
    await a.commit([Put("k", b"one"), Put("mine", b"m")])
    a._commit = commit  # type: ignore[method-assign]
    assert a.cache.get("k") is None
    assert a.cache.get("mine") == Row("mine", b"m", 1)
    hits = a.cache.hits
    assert await a.get("k") == Row("k", b"theirs", 2)
    assert a.cache.hits == hits  # read from the database


async def test_a_row_read_while_its_delete_commits_is_not_served_after(
    stores: tuple[PostgreSQLStorage, ...],
) -> None:
    """A read that finishes while a delete of its row is in flight keeps the old row; the
    delete, once committed, forgets it again."""
    a, _ = stores
    await a.commit([Put("k", b"one")])
    commit = a._commit

    async def read_first(ops: Sequence[Op], notice: str | None) -> dict[str, int]:
        assert await a.get("k") == Row("k", b"one", 1)  # before the delete lands
        return await commit(ops, notice)

    a._commit = read_first  # type: ignore[method-assign]
    await a.commit([Delete("k")])
    a._commit = commit  # type: ignore[method-assign]
    assert await a.get("k") is None


async def test_own_commits_are_kept_while_many_others_run(
    stores: tuple[PostgreSQLStorage, ...],
) -> None:
    """32 writers at once, each of its own row (a SET load): the next read of every row is
    served from memory, at the revision its commit gave it."""
    a, _ = stores
    keys = [f"k{i}" for i in range(32)]
    await asyncio.gather(*(a.commit([Put(k, b"one")]) for k in keys))
    await asyncio.gather(*(a.commit([Put(k, b"two", expect=1)]) for k in keys))
    hits = a.cache.hits
    for key in keys:
        assert await a.get(key) == Row(key, b"two", 2)
    assert a.cache.hits == hits + len(keys)


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
