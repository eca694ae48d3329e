"""The PostgreSQL store's connection pool, against a real server: bounded, never lends a
connection that may be mid-statement, in a transaction or from before an outage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from kvault.storage.pg_pool import Connection, Pool, PoolClosed


class Counted:
    """A ``connect`` that counts its calls and fails when told to."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.calls = 0
        self.fail = 0

    async def __call__(self) -> Connection:
        self.calls += 1
        if self.fail:
            self.fail -= 1
            raise OSError("connection refused (test)")
        return await asyncpg.connect(self.dsn)


@pytest.fixture
async def connect(postgres_dsn: str) -> AsyncIterator[Counted]:
    yield Counted(postgres_dsn)


async def test_at_most_size_connections_and_every_caller_served(connect: Counted) -> None:
    pool = Pool(connect, size=2, timeout=10)
    busiest = 0

    async def use(i: int) -> int:
        nonlocal busiest
        conn = await pool.acquire()
        try:
            busiest = max(busiest, pool.open)
            await conn.execute("SELECT pg_sleep(0.02)")  # held a while: the others wait
            return int(await conn.fetchval("SELECT $1::int", i))
        finally:
            pool.release(conn)

    results = await asyncio.gather(*(use(i) for i in range(12)))
    assert results == list(range(12))
    assert busiest == 2 and connect.calls == 2  # idle connections are lent again
    await pool.close()


async def test_a_caller_waits_at_most_the_timeout(connect: Counted) -> None:
    pool = Pool(connect, size=1, timeout=0.2)
    held = await pool.acquire()
    with pytest.raises(TimeoutError):
        await pool.acquire()
    pool.release(held)
    assert await pool.acquire() is held  # the one that gave up left nothing behind
    await pool.close()


async def test_a_broken_or_mid_transaction_connection_is_never_lent_again(
    connect: Counted,
) -> None:
    pool = Pool(connect, size=1, timeout=5)
    first = await pool.acquire()
    pool.release(first, broken=True)
    assert first.is_closed()
    second = await pool.acquire()
    assert second is not first
    await second.execute("BEGIN")
    pool.release(second)  # left inside a transaction
    assert second.is_closed()
    third = await pool.acquire()
    assert await third.fetchval("SELECT 1") == 1 and not third.is_in_transaction()
    pool.release(third)
    await pool.close()


async def test_expired_connections_are_replaced_idle_at_once_and_lent_on_return(
    connect: Counted,
) -> None:
    pool = Pool(connect, size=2, timeout=5)
    idle, lent = await pool.acquire(), await pool.acquire()
    pool.release(idle)
    pool.expire()  # e.g. the database came back after an outage
    assert idle.is_closed() and not lent.is_closed()
    pool.release(lent)
    assert lent.is_closed() and pool.open == 0
    fresh = await pool.acquire()
    assert fresh not in (idle, lent) and await fresh.fetchval("SELECT 1") == 1
    pool.release(fresh)
    await pool.close()


async def test_a_failed_connect_frees_its_room_for_the_next_caller(connect: Counted) -> None:
    pool = Pool(connect, size=1, timeout=5)
    connect.fail = 1
    with pytest.raises(OSError):
        await pool.acquire()
    assert pool.open == 0
    conn = await pool.acquire()
    assert await conn.fetchval("SELECT 1") == 1
    pool.release(conn)
    await pool.close()


async def test_a_waiter_woken_as_it_is_cancelled_hands_its_connection_on(
    connect: Counted,
) -> None:
    pool = Pool(connect, size=1, timeout=5)
    held = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)  # it now waits for a connection
    pool.release(held)  # handed to the waiter...
    waiting.cancel()  # ...which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await pool.acquire() is held and connect.calls == 1
    await pool.close()


async def test_close_wakes_waiters_and_closes_what_comes_back(connect: Counted) -> None:
    pool = Pool(connect, size=1, timeout=5)
    held = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    await pool.close()
    with pytest.raises(PoolClosed):
        await waiting
    pool.release(held)
    assert held.is_closed()
    with pytest.raises(PoolClosed):
        await pool.acquire()
