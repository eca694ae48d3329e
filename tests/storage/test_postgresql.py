"""PostgreSQL-only guarantees: options, session settings, migrations, real concurrency,
and what happens while the database is away. The shared contract is in ``conformance.py``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from importlib.metadata import entry_points
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from kvault.errors import ConfigError, StorageConflict, Unavailable
from kvault.storage.base import ABSENT, Check, Put, Row, Storage
from kvault.storage.postgresql import (
    SCHEMA_VERSION,
    PostgreSQLStorage,
    bytes_upper_bound,
)
from tests.fixtures.postgres import PostgresServer

RACER = Path(__file__).with_name("cas_racer.py")


@pytest_asyncio.fixture
async def store(postgres_dsn: str) -> AsyncIterator[PostgreSQLStorage]:
    storage = PostgreSQLStorage(postgres_dsn, pool_size=4)
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture
def private_server() -> Iterator[PostgresServer]:
    """A server of the test's own, to stop, kill and restart."""
    with PostgresServer() as server:
        yield server


# -- configuration ------------------------------------------------------------------------


async def test_registered_as_entry_point() -> None:
    (ep,) = entry_points(group="kvault.storage", name="postgresql")
    assert ep.load() is PostgreSQLStorage


def test_dsn_from_env_or_file_never_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = "postgresql://kv:s3cret@db.example:5432/kvault"
    monkeypatch.setenv("KV_TEST_DSN", dsn)
    storage = PostgreSQLStorage.from_options({"dsn_env": "KV_TEST_DSN", "pool_size": "3"})
    assert storage.pool_size == 3 and storage.timeout == 10.0
    assert "s3cret" not in repr(storage)
    file = tmp_path / "dsn"
    file.write_text(dsn + "\n")
    storage = PostgreSQLStorage.from_options({"dsn_file": str(file), "timeout": "2.5"})
    assert storage.timeout == 2.5

    refused = {
        "exactly one": [{}, {"dsn_env": "KV_TEST_DSN", "dsn_file": str(file)}],
        "unknown postgresql storage option": [{"dsn": dsn}, {"dsn_env": "X", "host": "h"}],
        "unset or empty": [{"dsn_env": "KV_TEST_NOT_SET"}],
        "cannot read": [{"dsn_file": str(tmp_path / "missing")}],
        "must be positive": [{"dsn_env": "KV_TEST_DSN", "timeout": "0"}],
        "must be whole": [{"dsn_env": "KV_TEST_DSN", "pool_size": "2.5"}],
        "must be a number": [{"dsn_env": "KV_TEST_DSN", "pool_size": "many"}],
    }
    for message, cases in refused.items():
        for options in cases:
            with pytest.raises(ConfigError, match=message) as err:
                PostgreSQLStorage.from_options(options)
            assert "s3cret" not in str(err.value)
    monkeypatch.setenv("KV_TEST_DSN", "host=db password=s3cret")
    with pytest.raises(ConfigError, match="postgresql:// URL") as err:
        PostgreSQLStorage.from_options({"dsn_env": "KV_TEST_DSN"})
    assert "s3cret" not in str(err.value)


def test_bytes_upper_bound() -> None:
    assert bytes_upper_bound(b"a/b") == b"a/c"
    assert bytes_upper_bound(b"a\xff\xff") == b"b"
    assert bytes_upper_bound(b"\xff") is None
    assert bytes_upper_bound(b"") is None


# -- the session and the schema -----------------------------------------------------------


async def test_sessions_are_durable(store: PostgreSQLStorage) -> None:
    settings = await store.settings()
    assert settings["synchronous_commit"] == "on"
    assert settings["fsync"] == "on"
    assert settings["full_page_writes"] == "on"


async def test_rows_are_bytea(store: PostgreSQLStorage, postgres_server: PostgresServer) -> None:
    await store.commit([Put("s/a\x00b", b"\x00\xffciphertext")])
    out = postgres_server.psql(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'kvault_rows' ORDER BY ordinal_position",
        await _database(store),
    )
    assert out.split() == ["key|bytea", "value|bytea", "revision|bigint"]
    assert await store.get("s/a\x00b") == Row("s/a\x00b", b"\x00\xffciphertext", 1)


async def _database(store: PostgreSQLStorage) -> str:
    async with store._connection() as conn:
        return str(await conn.fetchval("SELECT current_database()"))


async def test_order_is_bytewise_under_a_linguistic_collation(
    postgres_server: PostgresServer,
) -> None:
    """A database whose default collation sorts "a" < "B" still lists bytewise ("B" < "a")."""
    name = "icu_en"
    postgres_server.psql(
        f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
        "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
    )
    storage = PostgreSQLStorage(postgres_server.dsn(name))
    try:
        assert postgres_server.psql("SELECT 'a' < 'B'", name).strip() == "t"
        await storage.open()
        keys = ["k/a", "k/B", "k/\u00e9", "k/Z", "k/_", "k/\U0001f600", "k/e"]
        await storage.commit([Put(k, b"v") for k in keys])
        listed = [r.key for r in await storage.list("k/")]
        assert listed == sorted(keys, key=lambda k: k.encode()) == sorted(keys)
        page = await storage.list("k/", start_after="k/Z", limit=2)
        assert [r.key for r in page] == ["k/_", "k/a"]
    finally:
        await storage.close()
        postgres_server.drop_database(name)


async def test_replicas_starting_together_migrate_once(postgres_dsn: str) -> None:
    stores = [PostgreSQLStorage(postgres_dsn, pool_size=1) for _ in range(8)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        assert {await s.schema_version() for s in stores} == {SCHEMA_VERSION}
        async with stores[0]._connection() as conn:
            applied = await conn.fetch("SELECT version FROM kvault_schema ORDER BY version")
        assert [r["version"] for r in applied] == list(range(1, SCHEMA_VERSION + 1))
        await stores[3].commit([Put("m/x", b"1")])
        assert await stores[5].get("m/x") == Row("m/x", b"1", 1)
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_schema_from_a_newer_kvault_is_refused(
    store: PostgreSQLStorage, postgres_dsn: str
) -> None:
    async with store._connection() as conn:
        await conn.execute("INSERT INTO kvault_schema (version) VALUES ($1)", SCHEMA_VERSION + 1)
    newer = PostgreSQLStorage(postgres_dsn)
    with pytest.raises(ConfigError, match=f"schema version {SCHEMA_VERSION + 1}"):
        await newer.open()
    await newer.close()


async def test_wrong_password_is_a_config_error(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.dsn().replace(postgres_server.password, "not-the-password")
    storage = PostgreSQLStorage(dsn)
    with pytest.raises(ConfigError, match="refused") as err:
        await storage.open()
    assert "not-the-password" not in str(err.value)


# -- real concurrency ---------------------------------------------------------------------


async def test_conflicting_commits_exactly_one_wins(postgres_dsn: str) -> None:
    """Like replicas: separate pools, every task on its own connection, all at once."""
    tasks, rounds = 8, 25
    stores = [PostgreSQLStorage(postgres_dsn, pool_size=1) for _ in range(tasks)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        for n in range(rounds):
            key = f"race/{n}"
            start = asyncio.Event()

            async def create(i: int, storage: Storage, key: str, start: asyncio.Event) -> int:
                await start.wait()
                await storage.commit([Put(key, b"%d" % i, expect=ABSENT)])
                return i

            racers = [asyncio.create_task(create(i, s, key, start)) for i, s in enumerate(stores)]
            await asyncio.sleep(0)
            start.set()
            results = await asyncio.gather(*racers, return_exceptions=True)
            winners = [r for r in results if isinstance(r, int)]
            assert len(winners) == 1, results
            assert all(isinstance(r, StorageConflict) for r in results if r is not winners[0])
            row = await stores[0].get(key)
            assert row == Row(key, b"%d" % winners[0], 1)

            # The same with an expected revision: every task updates revision 1.
            async def update(i: int, storage: Storage, key: str) -> int:
                await storage.commit([Put(key, b"u%d" % i, expect=1)])
                return i

            results = await asyncio.gather(
                *(update(i, s, key) for i, s in enumerate(stores)), return_exceptions=True
            )
            winners = [r for r in results if isinstance(r, int)]
            assert len(winners) == 1, results
            assert await stores[0].get(key) == Row(key, b"u%d" % winners[0], 2)
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_write_skew_is_impossible(postgres_dsn: str) -> None:
    """Each commit checks that the *other* key is absent and writes its own. In any serial
    order the second one's check fails, so exactly one may land; row locks alone (nothing
    to lock: both rows are absent) would let both through when they overlap."""
    first, second = PostgreSQLStorage(postgres_dsn), PostgreSQLStorage(postgres_dsn)
    await asyncio.gather(first.open(), second.open())
    try:
        for n in range(40):
            a, b = f"skew/{n}/a", f"skew/{n}/b"
            results = await asyncio.gather(
                first.commit([Check(b, ABSENT), Put(a, b"a")]),
                second.commit([Check(a, ABSENT), Put(b, b"b")]),
                return_exceptions=True,
            )
            landed = [r for r in results if isinstance(r, dict)]
            assert len(landed) == 1, results
            assert [type(r) for r in results if not isinstance(r, dict)] == [StorageConflict]
            assert len(await first.list(f"skew/{n}/")) == 1
    finally:
        await asyncio.gather(first.close(), second.close())


async def test_conflicting_processes_exactly_one_wins(postgres_dsn: str) -> None:
    """Separate OS processes (replicas) race to create the same keys: one winner per key."""
    procs, rounds = 4, 30
    start_at = time.time() + 2.0
    env = {**os.environ, "KVAULT_RACE_DSN": postgres_dsn}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(RACER),
            str(i),
            str(rounds),
            repr(start_at),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(procs)
    ]
    outputs = [await asyncio.wait_for(c.communicate(), timeout=60) for c in children]
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err.decode()
    wins: dict[int, list[int]] = {}
    for i, (out, _) in enumerate(outputs):
        for line in out.decode().split():
            n, outcome = line.split(":")
            if outcome == "won":
                wins.setdefault(int(n), []).append(i)
    assert sorted(wins) == list(range(rounds))
    assert all(len(w) == 1 for w in wins.values()), wins
    storage = PostgreSQLStorage(postgres_dsn)
    await storage.open()
    try:
        for n, (winner,) in wins.items():
            assert await storage.get(f"race/{n}") == Row(f"race/{n}", b"%d" % winner, 1)
    finally:
        await storage.close()


# -- the database away --------------------------------------------------------------------


async def test_database_away_fails_fast_then_recovers(private_server: PostgresServer) -> None:
    storage = PostgreSQLStorage(private_server.create_database("kv"), timeout=3)
    await storage.open()
    try:
        await storage.commit([Put("up/a", b"1")])
        private_server.stop()
        with pytest.raises(Unavailable) as err:
            await storage.get("up/a")
        assert private_server.password not in err.value.message
        assert not storage.available
        for op in (storage.get("up/a"), storage.list("up/"), storage.commit([Put("x", b"")])):
            began = time.monotonic()
            with pytest.raises(Unavailable, match="unavailable"):
                await op
            assert time.monotonic() - began < 0.05, "did not fail fast"
        private_server.start()
        deadline = time.monotonic() + 15
        while not storage.available:
            assert time.monotonic() < deadline, "never reconnected"
            await asyncio.sleep(0.05)
        assert await storage.get("up/a") == Row("up/a", b"1", 1)
        assert await storage.commit([Put("up/a", b"2", expect=1)]) == {"up/a": 2}
    finally:
        await storage.close()


async def test_postmaster_killed_fails_fast_then_recovers(
    private_server: PostgresServer,
) -> None:
    storage = PostgreSQLStorage(private_server.create_database("kv"), timeout=3)
    await storage.open()
    try:
        await storage.commit([Put("k", b"1")])
        private_server.kill()
        began = time.monotonic()
        with pytest.raises(Unavailable):
            await storage.commit([Put("k", b"2")])
        assert time.monotonic() - began < 3.5
        private_server.start()  # crash recovery
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(Unavailable):
                row = await storage.get("k")
                break
            assert time.monotonic() < deadline, "never reconnected"
            await asyncio.sleep(0.1)
        assert row is not None and row.key == "k"
    finally:
        await storage.close()


async def test_open_against_nothing_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    storage = PostgreSQLStorage(f"postgresql://kv:pw@127.0.0.1:{port}/kv", timeout=2)
    began = time.monotonic()
    with pytest.raises(Unavailable, match="cannot be reached"):
        await storage.open()
    assert time.monotonic() - began < 2.5


async def test_silent_server_times_out_instead_of_hanging() -> None:
    """A peer that accepts TCP and never answers: bounded by ``timeout``, then 503."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        storage = PostgreSQLStorage(f"postgresql://kv:pw@127.0.0.1:{port}/kv", timeout=0.5)
        began = time.monotonic()
        with pytest.raises(Unavailable):
            await storage.open()
        assert time.monotonic() - began < 2
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_blocked_query_is_bounded(store: PostgreSQLStorage, postgres_dsn: str) -> None:
    """A commit stuck behind another session's lock gives up after ``timeout`` (503)."""
    await store.commit([Put("l/a", b"1")])
    quick = PostgreSQLStorage(postgres_dsn, timeout=0.5)
    await quick.open()
    blocker = await asyncpg.connect(postgres_dsn)
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE kvault_rows IN ACCESS EXCLUSIVE MODE")
            began = time.monotonic()
            with pytest.raises(Unavailable):
                await quick.commit([Put("l/a", b"2")])
            assert time.monotonic() - began < 1.5
        deadline = time.monotonic() + 10
        while not quick.available:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert await quick.commit([Put("l/a", b"3", expect=1)]) == {"l/a": 2}
    finally:
        await blocker.close()
        await quick.close()
