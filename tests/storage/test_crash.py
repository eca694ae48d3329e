"""Kill at random moments: every acknowledged write must survive, intact.

The writer (``crash_writer.py``) announces each commit before and after ``commit()``. After a
kill the store must equal the acknowledged history, plus possibly the one in-flight commit
applied *entirely* (atomicity), and pass the backend's integrity check (SQLite's
``PRAGMA integrity_check``; PostgreSQL's ``amcheck`` on the table and its key index). Rounds
reuse one store, so recovery of an already-recovered store is exercised too.

Two kinds of kill: the writer process (SIGKILL: SQLite and PostgreSQL), and the PostgreSQL
postmaster itself (``kill -9``, then restarted: crash recovery from its WAL), which the
writer sees as the database going away.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import pytest

from kvault.storage.postgresql import PostgreSQLStorage
from kvault.storage.sqlite import SQLiteStorage
from tests.fixtures.postgres import PostgresServer, database_of

WRITER = Path(__file__).with_name("crash_writer.py")
EXIT_UNAVAILABLE = 3
State = dict[str, str]


class Target(Protocol):
    """A store the writer writes to: its argv word, its environment, and a verified read."""

    arg: str
    env: dict[str, str]

    async def snapshot(self) -> tuple[State, str]:
        """Every row's digest, and ``"ok"`` or the integrity problems found."""
        ...


class SQLiteTarget:
    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "crash" / "kvault.db"
        self.arg, self.env = str(self.db), dict(os.environ)

    async def snapshot(self) -> tuple[State, str]:
        storage = SQLiteStorage(self.db)
        await storage.open()
        try:
            rows = await storage.list("")
            return {r.key: hashlib.sha256(r.value).hexdigest() for r in rows}, (
                await storage.integrity_check()
            )
        finally:
            await storage.close()


class PostgresTarget:
    def __init__(self, server: PostgresServer, dsn: str) -> None:
        self.server, self.dsn = server, dsn
        self.arg, self.env = "postgresql", {**os.environ, "KVAULT_CRASH_DSN": dsn}

    def _wait_for_other_sessions(self) -> None:
        """A killed client's backend may still be finishing its COMMIT: wait until it is
        gone, or a commit could land after the snapshot."""
        deadline = time.monotonic() + 30
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        while self.server.psql(query, database_of(self.dsn)).strip() != "0":
            assert time.monotonic() < deadline, "the writer's session never ended"
            time.sleep(0.02)

    async def snapshot(self) -> tuple[State, str]:
        self._wait_for_other_sessions()
        database = database_of(self.dsn)
        problems = self.server.psql(
            "CREATE EXTENSION IF NOT EXISTS amcheck; "
            "SELECT bt_index_check('kvault_rows_pkey'::regclass, true); "
            "SELECT blkno, offnum, msg FROM verify_heapam('kvault_rows');",
            database,
        ).strip()
        storage = PostgreSQLStorage(self.dsn)
        await storage.open()
        try:
            rows = await storage.list("")
        finally:
            await storage.close()
        return {r.key: hashlib.sha256(r.value).hexdigest() for r in rows}, problems or "ok"


def apply(state: State, ops: list[tuple[str, str]]) -> State:
    new = dict(state)
    for key, digest in ops:
        if digest == "-":
            new.pop(key, None)
        else:
            new[key] = digest
    return new


async def read_lines(stream: asyncio.StreamReader, into: list[str]) -> None:
    """Collect complete lines only: a line cut by the kill was never fully reported."""
    while line := await stream.readline():
        if line.endswith(b"\n"):
            into.append(line.decode())


async def kill_writer(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    return -signal.SIGKILL


def kill_postmaster(
    server: PostgresServer,
) -> Callable[[asyncio.subprocess.Process], Awaitable[int]]:
    async def kill(proc: asyncio.subprocess.Process) -> int:
        server.kill()  # kill -9 the postmaster alone; its backends follow it
        await asyncio.wait_for(proc.wait(), timeout=60)  # the writer sees it go and stops
        server.start()  # crash recovery replays the WAL
        return EXIT_UNAVAILABLE

    return kill


async def crash_round(
    target: Target,
    seed: int,
    delay: float,
    base: State,
    kill: Callable[[asyncio.subprocess.Process], Awaitable[int]] = kill_writer,
) -> tuple[State, int]:
    """One writer life; returns the verified state and how many commits were acknowledged."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WRITER),
        target.arg,
        str(seed),
        env=target.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        ready = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        if ready != b"ready\n":
            await proc.wait()
            pytest.fail(f"writer did not start: {(await proc.stderr.read()).decode()}")
        lines: list[str] = []
        reader = asyncio.create_task(read_lines(proc.stdout, lines))
        await asyncio.sleep(delay)  # the deliberate random kill moment
        expected_exit = await kill(proc)
        await reader
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = (await proc.stderr.read()).decode()
    assert proc.returncode == expected_exit, f"writer ended otherwise:\n{stderr}"

    intents: dict[int, list[tuple[str, str]]] = {}
    acked: set[int] = set()
    for line in lines:
        kind, number, *rest = line.split()
        if kind == "intent":
            key, digest = rest
            intents.setdefault(int(number), []).append((key, digest))
        elif kind == "ack":
            acked.add(int(number))
    last = max(intents, default=0)
    assert acked >= set(intents) - {last}, "writer started a commit before the previous returned"

    expected = base
    for seq in sorted(acked):
        expected = apply(expected, intents[seq])
    in_flight = apply(expected, intents[last]) if last and last not in acked else None

    actual, integrity = await target.snapshot()
    assert integrity == "ok"
    if actual != expected:
        wrong = sorted(
            k for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k)
        )
        assert actual == in_flight, f"store differs from acknowledged writes at {wrong}"
    return actual, len(acked)


async def run_rounds(
    target: Target,
    rounds: int,
    kill: Callable[[asyncio.subprocess.Process], Awaitable[int]] = kill_writer,
) -> None:
    master = int(os.environ.get("KVAULT_CRASH_SEED", random.SystemRandom().randrange(2**32)))
    print(f"crash rounds: KVAULT_CRASH_SEED={master}")  # shown with any failure: rerun with it
    rng = random.Random(master)
    state: State = {}
    acknowledged = 0
    for n in range(rounds):
        seed, delay = rng.randrange(2**32), rng.uniform(0.05, 0.5)
        try:
            state, acks = await crash_round(target, seed, delay, state, kill)
        except AssertionError as exc:
            raise AssertionError(f"round {n} (KVAULT_CRASH_SEED={master}): {exc}") from exc
        acknowledged += acks
    assert acknowledged > rounds, "the writer barely wrote: the kills tested nothing"
    assert state, "the store is empty after all rounds"


@pytest.mark.parametrize("rounds", [5, pytest.param(50, marks=pytest.mark.slow)])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_acknowledged_writes_survive_sigkill(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, rounds: int
) -> None:
    target: Target
    if backend == "sqlite":
        target = SQLiteTarget(tmp_path)
    else:
        target = PostgresTarget(
            request.getfixturevalue("postgres_server"), request.getfixturevalue("postgres_dsn")
        )
    await run_rounds(target, rounds)


@pytest.mark.parametrize("rounds", [3, pytest.param(20, marks=pytest.mark.slow)])
async def test_acknowledged_writes_survive_postmaster_kill(rounds: int) -> None:
    """``kill -9`` on the PostgreSQL postmaster mid-write, then a restart: what the writer
    was told is committed is there after crash recovery (``synchronous_commit=on``)."""
    with PostgresServer() as server:
        dsn = server.create_database("crash")
        await run_rounds(PostgresTarget(server, dsn), rounds, kill_postmaster(server))
