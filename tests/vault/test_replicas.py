"""Two replicas on one PostgreSQL database: each hears the other's writes (vault/replicas.py).

Both kvaults run in this process against the test server, with one software root key: what
the second one caches (vault records with their role assignments, unwrapped keyrings) must
follow what the first one commits, and the first one's changes must reach the second one's
change feed, as the Lease holder's controller needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from kvault.barrier import envelope
from kvault.errors import ForbiddenByRbac, NotFound
from kvault.hsm.software import SoftwareHSM
from kvault.identity.model import Principal, RoleAssignment
from kvault.storage.postgresql import LISTENER_APPLICATION, PostgreSQLStorage
from kvault.vault import replicas
from kvault.vault.changes import Change
from kvault.vault.core import Caller
from kvault.vault.replicas import NOTE_BYTES, RESYNC, Replicas, decode_changes, encode_changes
from kvault.vault.service import Kvault
from tests.fixtures.postgres import PostgresServer, database_of

APP = Principal("system:serviceaccount:team-a:app", ("system:serviceaccounts",))
READER = [RoleAssignment("team-a/app", "Secrets User")]


async def _open(dsn: str, key_file: Path) -> Kvault:
    storage = PostgreSQLStorage(dsn, pool_size=4)
    await storage.open()
    hsm = SoftwareHSM(key_file=key_file)
    await hsm.open()
    return await Kvault.open(storage, hsm)


@pytest.fixture
async def pair(
    postgres_server: PostgresServer, tmp_path: Path
) -> AsyncIterator[tuple[Kvault, Kvault]]:
    dsn = postgres_server.create_database()
    key = tmp_path / "hsm.key"
    a = await _open(dsn, key)
    b = await _open(dsn, key)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()
        postgres_server.drop_database(database_of(dsn))


async def _eventually(check: Callable[[], object], what: str, within: float = 5.0) -> float:
    """Seconds until ``check()`` stops raising and returns truthy (async-polled)."""
    start = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - start
        except Exception:
            pass
        if time.monotonic() - start > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.002)


async def _until(probe: Callable[[], object], what: str, within: float = 5.0) -> float:
    """Like :func:`_eventually` for an async probe: seconds until it returns without raising."""
    start = time.monotonic()
    while True:
        try:
            await probe()  # type: ignore[misc]
            return time.monotonic() - start
        except (Exception, pytest.fail.Exception):  # a probe's pytest.raises fails with the latter
            if time.monotonic() - start > within:
                raise AssertionError(f"not within {within} s: {what}") from None
        await asyncio.sleep(0.002)


async def test_both_kvaults_are_replicas_of_one_store(pair: tuple[Kvault, Kvault]) -> None:
    a, b = pair
    assert a.replicas is not None and b.replicas is not None


async def test_a_role_revoked_on_one_replica_is_refused_by_the_other(
    pair: tuple[Kvault, Kvault],
) -> None:
    a, b = pair
    await a.vaults.create("v1", role_assignments=READER)
    await a.secrets.set("v1", "pw", "value-1")
    caller = Caller.of(APP, "req")
    assert (await b.secrets.get("v1", "pw", caller=caller)).value == "value-1"  # b caches v1

    await a.vaults.update("v1", role_assignments=[])

    async def refused() -> None:
        with pytest.raises(ForbiddenByRbac):
            await b.secrets.get("v1", "pw", caller=caller)

    took = await _until(refused, "the revocation to reach the other replica")
    print(f"revocation seen by the other replica after {took * 1000:.1f} ms")


async def test_a_vault_purged_on_one_replica_is_gone_on_the_other(
    pair: tuple[Kvault, Kvault],
) -> None:
    a, b = pair
    await a.vaults.create("v1", retention_days=7)
    await b.secrets.set("v1", "pw", "value-1")  # b caches the vault and its keyring
    await a.vaults.delete("v1")
    await a.vaults.purge("v1")

    async def gone() -> None:
        with pytest.raises(NotFound):
            await b.vault("v1")

    await _until(gone, "the purge to reach the other replica")
    with pytest.raises(NotFound):
        await b.secrets.set("v1", "pw", "after-purge")
    assert await b.storage.list("v/") == []  # nothing written into the purged vault


async def test_a_kek_rotated_on_one_replica_seals_the_others_next_writes(
    pair: tuple[Kvault, Kvault],
) -> None:
    a, b = pair
    await a.vaults.create("v1")
    info = await b.vault("v1")
    await b.secrets.set("v1", "pw", "under-term-1")  # b holds term 1 as the active KEK
    term = await a.barrier.rotate_kek(info.id)
    assert term == 2

    async def sealed_under_new_term() -> None:
        props = await b.secrets.set("v1", "pw", "under-new-term")
        rows = await b.storage.list(f"v/{info.id}/")
        latest = [r for r in rows if r.key.endswith("/" + props.properties.version)]
        assert latest and envelope.kek_term(latest[0].value) == term

    await _until(sealed_under_new_term, "the rotation to reach the other replica")
    assert (await a.secrets.get("v1", "pw")).value == "under-new-term"


async def test_a_change_on_one_replica_reaches_the_others_feed(
    pair: tuple[Kvault, Kvault],
) -> None:
    a, b = pair
    heard: list[Change] = []
    a.subscribe(heard.append)
    await a.vaults.create("v1")
    props = await b.secrets.set("v1", "db", "value")
    want = Change("v1", "SecretSet", "db", props.properties.version, remote=True)
    took = await _eventually(lambda: want in heard, "b's SecretSet on a's feed")
    print(f"change heard by the other replica after {took * 1000:.1f} ms")
    assert all(c.remote for c in heard if c.operation == "SecretSet")
    assert not [c for c in heard if c.operation == "VaultCreate" and c.remote]  # a's own


async def test_a_burst_of_changes_reaches_the_others_feed_whole(
    pair: tuple[Kvault, Kvault],
) -> None:
    """Writes that finish together are announced together: every one arrives, once."""
    a, b = pair
    heard: list[Change] = []
    a.subscribe(heard.append)
    await a.vaults.create("v1")
    done = await asyncio.gather(*(b.secrets.set("v1", f"s{i}", "value") for i in range(60)))
    want = {(s.properties.name, s.properties.version) for s in done}

    def arrived() -> bool:
        return {(c.item, c.version) for c in heard if c.operation == "SecretSet"} == want

    await _eventually(arrived, "all 60 SecretSet changes on a's feed")
    assert len([c for c in heard if c.operation == "SecretSet"]) == 60


async def test_a_lost_listening_connection_forgets_everything_and_resyncs(
    pair: tuple[Kvault, Kvault], postgres_server: PostgresServer
) -> None:
    a, b = pair
    heard: list[Change] = []
    b.subscribe(heard.append)
    await a.vaults.create("v1", role_assignments=READER)
    await b.secrets.set("v1", "pw", "one")
    caller = Caller.of(APP, "req")
    assert (await b.secrets.get("v1", "pw", caller=caller)).value == "one"
    database = database_of(b.storage._dsn)  # type: ignore[attr-defined]
    # Every listening session of the database dropped (as a failover of the server would):
    postgres_server.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND application_name = '{LISTENER_APPLICATION}'",
        database,
    )
    await _eventually(
        lambda: Change("v1", RESYNC, remote=True) in heard, "a resync after listening anew"
    )
    # Listening again: a revocation still reaches b.
    await a.vaults.update("v1", role_assignments=[])

    async def refused() -> None:
        with pytest.raises(ForbiddenByRbac):
            await b.secrets.get("v1", "pw", caller=caller)

    await _until(refused, "a revocation after listening anew")


async def test_a_value_set_on_one_replica_is_read_on_the_other(
    pair: tuple[Kvault, Kvault],
) -> None:
    a, b = pair
    await a.vaults.create("v1")
    await a.secrets.set("v1", "pw", "one")
    for _ in range(3):  # b now serves the rows from memory (storage/row_cache.py)
        assert (await b.secrets.get("v1", "pw")).value == "one"
    await a.secrets.set("v1", "pw", "two")

    async def fresh() -> None:
        assert (await b.secrets.get("v1", "pw")).value == "two"

    took = await _until(fresh, "the new value on the other replica")
    print(f"a new value read on the other replica after {took * 1000:.1f} ms")
    assert b.storage.cache.hits > 0  # type: ignore[attr-defined]


def test_changes_that_finish_together_share_a_notice() -> None:
    one = Change("v", "SecretSet", "a", "1" * 32)
    assert list(encode_changes([one])) == ['["v","SecretSet","a","' + "1" * 32 + '"]']
    many = [Change("v", "SecretSet", f"item-{i}", f"{i:032x}") for i in range(100)]
    notes = list(encode_changes(many))
    assert len(notes) > 1 and all(len(n) <= NOTE_BYTES for n in notes)
    decoded = [c for n in notes for c in decode_changes(n)]
    assert [(c.item, c.version, c.remote) for c in decoded] == [
        (c.item, c.version, True) for c in many
    ]
    # a note of one change (as replicas before batching sent it) and foreign notes
    assert [c.item for c in decode_changes(notes[0][1:].split("],")[0] + "]")] == ["item-0"]
    assert decode_changes("not json") == [] and decode_changes('{"a": 1}') == []


async def test_changes_finishing_within_the_gather_window_share_one_notice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each notice is a round trip to the database: the changes of operations that finish
    within ``GATHER`` of each other go out together, and nothing waits longer than that."""
    monkeypatch.setattr(replicas, "GATHER", 0.05)
    sent: list[str] = []

    class Store:
        origin = "test"

        async def watch(self, watcher: object) -> None: ...

        async def announce(self, note: str) -> None:
            sent.append(note)

    async def no_vaults() -> list[str]:
        return []

    joined = Replicas(Store(), cast(Any, None), cast(Any, None), no_vaults)
    for i in range(10):
        joined._announce(Change("v", "SecretSet", f"s{i}", f"{i:032x}"))
        await asyncio.sleep(0)  # each change in a loop turn of its own
    await joined.drain()
    assert len(sent) == 1
    assert [c.item for c in decode_changes(sent[0])] == [f"s{i}" for i in range(10)]
    joined._announce(Change("v", "SecretSet", "late", "f" * 32))
    await joined.drain()
    assert len(sent) == 2 and [c.item for c in decode_changes(sent[1])] == ["late"]
