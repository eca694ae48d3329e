"""SIGKILL a writer at random moments: every acknowledged write must survive, intact.

The writer (``crash_writer.py``) announces each commit before and after ``commit()``. After a
kill the store must equal the acknowledged history, plus possibly the one in-flight commit
applied *entirely* (atomicity), and pass ``PRAGMA integrity_check``. Rounds reuse one database,
so recovery of an already-recovered file is exercised too.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from kvault.storage.sqlite import SQLiteStorage

WRITER = Path(__file__).with_name("crash_writer.py")
State = dict[str, str]


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


async def snapshot(db: Path) -> tuple[State, str]:
    storage = SQLiteStorage(db)
    await storage.open()
    try:
        rows = await storage.list("")
        return {r.key: hashlib.sha256(r.value).hexdigest() for r in rows}, (
            await storage.integrity_check()
        )
    finally:
        await storage.close()


async def crash_round(db: Path, seed: int, delay: float, base: State) -> tuple[State, int]:
    """One writer life; returns the verified state and how many commits were acknowledged."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WRITER),
        str(db),
        str(seed),
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
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await reader
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = (await proc.stderr.read()).decode()
    assert proc.returncode == -signal.SIGKILL, f"writer died on its own:\n{stderr}"

    intents: dict[int, list[tuple[str, str]]] = {}
    acked: set[int] = set()
    for line in lines:
        kind, number, key, digest = line.split()
        if kind == "intent":
            intents.setdefault(int(number), []).append((key, digest))
        else:
            acked.add(int(number))
    last = max(intents, default=0)
    assert acked >= set(intents) - {last}, "writer started a commit before the previous returned"

    expected = base
    for seq in sorted(acked):
        expected = apply(expected, intents[seq])
    in_flight = apply(expected, intents[last]) if last and last not in acked else None

    actual, integrity = await snapshot(db)
    assert integrity == "ok"
    if actual != expected:
        wrong = sorted(
            k for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k)
        )
        assert actual == in_flight, f"store differs from acknowledged writes at {wrong}"
    return actual, len(acked)


@pytest.mark.parametrize("rounds", [5, pytest.param(50, marks=pytest.mark.slow)])
async def test_acknowledged_writes_survive_sigkill(tmp_path: Path, rounds: int) -> None:
    master = int(os.environ.get("KVAULT_CRASH_SEED", random.SystemRandom().randrange(2**32)))
    rng = random.Random(master)
    db = tmp_path / "crash" / "kvault.db"
    state: State = {}
    acknowledged = 0
    for n in range(rounds):
        seed, delay = rng.randrange(2**32), rng.uniform(0.05, 0.5)
        try:
            state, acks = await crash_round(db, seed, delay, state)
        except AssertionError as exc:
            raise AssertionError(f"round {n} (KVAULT_CRASH_SEED={master}): {exc}") from exc
        acknowledged += acks
    assert acknowledged > rounds, "the writer barely wrote: the kills tested nothing"
    assert state, "the store is empty after all rounds"
