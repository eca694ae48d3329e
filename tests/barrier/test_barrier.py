"""The barrier over real SQLite and the software HSM: keyrings created once and never
overwritten, KEK and root rotations that lose no term even when another replica changes the
keyring meanwhile, the HSM called only when a keyring must be (re)loaded, and portable blobs
bound to their purpose. A counting HSM shows every wrap and unwrap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kvault.barrier import envelope
from kvault.barrier.barrier import Barrier, keyring_key
from kvault.barrier.context import Context
from kvault.barrier.keyring import StoredKeyring
from kvault.errors import Conflict, IntegrityError, NotFound
from kvault.hsm.base import HSM, WrappedKey
from kvault.hsm.registry import load
from kvault.storage.sqlite import SQLiteStorage

Hook = Callable[[], Awaitable[None]]


class CountingHSM:
    """The software HSM, counting wraps and unwraps; ``on_wrap``/``on_rotate`` run once, right
    after the next wrap or rotation (what another replica does meanwhile)."""

    def __init__(self, inner: HSM) -> None:
        self.inner = inner
        self.wraps = 0
        self.unwraps = 0
        self.on_wrap: Hook | None = None
        self.on_rotate: Hook | None = None

    @property
    def active_key_id(self) -> str:
        return self.inner.active_key_id

    async def wrap(self, key: bytes, aad: bytes) -> WrappedKey:
        self.wraps += 1
        wrapped = await self.inner.wrap(key, aad)
        hook, self.on_wrap = self.on_wrap, None
        if hook is not None:
            await hook()
        return wrapped

    async def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        self.unwraps += 1
        await asyncio.sleep(0)  # as a real HSM call would, let other tasks run meanwhile
        return await self.inner.unwrap(wrapped, aad)

    async def rotate(self) -> str:
        root = await self.inner.rotate()
        hook, self.on_rotate = self.on_rotate, None
        if hook is not None:
            await hook()
        return root

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Replicas:
    """Two barriers (two replicas) over one database and one HSM root."""

    def __init__(self, storage: SQLiteStorage, hsm: CountingHSM) -> None:
        self.storage, self.hsm = storage, hsm
        self.a = Barrier(storage, hsm)  # type: ignore[arg-type]
        self.b = Barrier(storage, hsm)  # type: ignore[arg-type]


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[Replicas]:
    storage = SQLiteStorage(tmp_path / "kvault.db")
    await storage.open()
    inner = load("software", {"key_file": str(tmp_path / "root.key")})
    await inner.open()
    yield Replicas(storage, CountingHSM(inner))
    await storage.close()
    await inner.close()


def ctx(vault: str = "v1", name: str = "item") -> Context:
    return Context(vault, "secret-version", name, "0" * 32)


async def _stored(r: Replicas, vault: str = "v1") -> StoredKeyring:
    row = await r.storage.get(keyring_key(vault))
    assert row is not None
    return StoredKeyring.decode(row.value)


# -- keyrings ---------------------------------------------------------------------------------


async def test_a_keyring_is_created_once_and_never_overwritten(replicas: Replicas) -> None:
    a = replicas.a
    await a.create_keyring("v1")
    blob = await a.seal(ctx(), b"first")
    with pytest.raises(Conflict) as info:
        await replicas.b.create_keyring("v1")
    assert info.value.message == "vault v1 already has a keyring"
    a.clear_caches()
    assert await a.open(ctx(), blob) == b"first"  # the first KEK is still the one stored
    assert await replicas.b.open(ctx(), blob) == b"first"


async def test_ensure_keyring_creates_only_what_is_missing(
    replicas: Replicas, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = replicas.a
    await a.ensure_keyring("sys")
    wraps = replicas.hsm.wraps
    await a.ensure_keyring("sys")
    assert replicas.hsm.wraps == wraps  # there already: no new KEK made
    # Created by another replica between the check and the create: no error.
    storage = replicas.storage
    real_get = storage.get

    async def missing_once(key: str) -> Any:
        monkeypatch.setattr(storage, "get", real_get)
        return None

    monkeypatch.setattr(storage, "get", missing_once)
    await a.ensure_keyring("sys")


async def test_the_creating_replica_needs_no_unwrap(replicas: Replicas) -> None:
    a = replicas.a
    await a.create_keyring("v1")
    blob = await a.seal(ctx(), b"x")
    assert await a.open(ctx(), blob) == b"x"
    assert replicas.hsm.unwraps == 0


async def test_a_keyring_is_unwrapped_once_then_served_from_memory(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    await a.create_keyring("v1")
    await a.rotate_kek("v1")
    blobs = [await a.seal(ctx(name=f"i{i}"), b"x") for i in range(3)]
    before = replicas.hsm.unwraps
    for blob in blobs * 2:
        assert await b.open(ctx(name=f"i{blobs.index(blob)}"), blob) == b"x"
    await b.seal(ctx(), b"y")
    assert replicas.hsm.unwraps - before == 2  # both terms, once
    b.clear_caches()
    # Concurrent first uses load the keyring once, not once each.
    before = replicas.hsm.unwraps
    opened = await asyncio.gather(
        *(b.open(ctx(name=f"i{i % 3}"), blobs[i % 3]) for i in range(6)),
        *(b.seal(ctx(), b"z") for _ in range(3)),
    )
    assert opened[:6] == [b"x"] * 6
    assert replicas.hsm.unwraps - before == 2


async def test_the_barrier_keeps_deks_it_sealed_or_opened(replicas: Replicas) -> None:
    a = replicas.a
    await a.create_keyring("v1")
    blob = await a.seal(ctx(), b"x")
    assert a._deks.get(blob[5 : 5 + 60]) is not None
    a.clear_caches()
    assert a._deks.get(blob[5 : 5 + 60]) is None
    assert await a.open(ctx(), blob) == b"x"
    assert a._deks.get(blob[5 : 5 + 60]) is not None


async def test_a_term_the_keyring_lacks_is_named(replicas: Replicas) -> None:
    a = replicas.a
    await a.create_keyring("v1")
    blob = bytearray(await a.seal(ctx(), b"x"))
    blob[1:5] = (9).to_bytes(4, "big")
    with pytest.raises(IntegrityError) as info:
        await a.open(ctx(), bytes(blob))
    assert info.value.message == "ciphertext names KEK term 9, which vault does not hold"
    with pytest.raises(IntegrityError, match="no key: it was purged or never existed"):
        await a.open(ctx("v2"), bytes(blob))


# -- KEK rotation -----------------------------------------------------------------------------


async def test_a_rotation_seals_new_data_under_the_new_term(replicas: Replicas) -> None:
    a = replicas.a
    await a.create_keyring("v1")
    old = await a.seal(ctx(), b"old")
    assert await a.rotate_kek("v1") == 2
    new = await a.seal(ctx(), b"new")
    assert (envelope.kek_term(old), envelope.kek_term(new)) == (1, 2)
    a.clear_caches()
    assert await a.rotate_kek("v1") == 3  # nothing cached: fine too
    assert envelope.kek_term(await a.seal(ctx(), b"newer")) == 3
    assert (await a.open(ctx(), old), await a.open(ctx(), new)) == (b"old", b"new")
    with pytest.raises(NotFound) as info:
        await a.rotate_kek("nope")
    assert info.value.message == "vault nope has no keyring"


async def test_a_term_added_by_another_replica_is_loaded_when_first_needed(
    replicas: Replicas,
) -> None:
    a, b = replicas.a, replicas.b
    await a.create_keyring("v1")
    old = await a.seal(ctx(), b"old")  # a caches the keyring with term 1
    await b.open(ctx(), old)
    await b.rotate_kek("v1")
    new = await b.seal(ctx(), b"new")
    before = replicas.hsm.unwraps
    assert await a.open(ctx(), new) == b"new"  # term 2: a reloads the keyring
    assert await a.open(ctx(), old) == b"old"
    assert await a.open(ctx(), new) == b"new"
    assert replicas.hsm.unwraps - before == 2  # reloaded once (both terms)


async def test_concurrent_rotations_keep_every_term(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    await a.create_keyring("v1")
    sealed: dict[str, bytes] = {}

    async def b_rotates() -> None:  # while a is between reading and writing the keyring
        await b.rotate_kek("v1")
        sealed["b"] = await b.seal(ctx(), b"sealed by b")

    replicas.hsm.on_wrap = b_rotates
    assert await a.rotate_kek("v1") == 3  # a's first try lost the race: it read again
    assert sorted((await _stored(replicas)).wrapped) == [1, 2, 3]
    for barrier in (a, b):
        barrier.clear_caches()
        assert await barrier.open(ctx(), sealed["b"]) == b"sealed by b"


# -- root rotation ----------------------------------------------------------------------------


async def test_a_root_rotation_rewraps_every_vault_on_every_page(replicas: Replicas) -> None:
    a = replicas.a
    vaults = [f"v{i}" for i in range(5)]
    blobs = {}
    for vault in vaults:
        await a.create_keyring(vault)
        blobs[vault] = await a.seal(ctx(vault), vault.encode())
    old_root = replicas.hsm.active_key_id
    assert (await _stored(replicas, "v0")).wrapped[1].key_id == old_root
    new_root = await a.rotate_root()
    assert new_root != old_root
    for vault in vaults:
        stored = await _stored(replicas, vault)
        assert {w.key_id for w in stored.wrapped.values()} == {new_root}, vault
        a.clear_caches()
        assert await a.open(ctx(vault), blobs[vault]) == vault.encode()


async def test_a_term_already_under_the_new_root_is_kept_as_it_is(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    await a.create_keyring("v1")
    sealed: dict[str, bytes] = {}

    async def b_rotates_the_kek() -> None:  # after the new root is active, before rewrapping
        await b.rotate_kek("v1")
        sealed["b"] = await b.seal(ctx(), b"under the new root")

    replicas.hsm.on_rotate = b_rotates_the_kek
    root = await a.rotate_root()
    stored = await _stored(replicas)
    assert {w.key_id for w in stored.wrapped.values()} == {root}
    assert replicas.hsm.wraps == 3  # term 1, term 2 (by b), term 1 rewrapped; not term 2
    a.clear_caches()
    assert await a.open(ctx(), sealed["b"]) == b"under the new root"


async def test_a_rewrap_racing_a_kek_rotation_keeps_the_new_term(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    await a.create_keyring("v1")
    sealed: dict[str, bytes] = {}

    async def rotate_root_hook() -> None:
        async def b_rotates_the_kek() -> None:  # while a rewraps term 1
            await b.rotate_kek("v1")
            sealed["b"] = await b.seal(ctx(), b"sealed by b")

        replicas.hsm.on_wrap = b_rotates_the_kek

    replicas.hsm.on_rotate = rotate_root_hook
    root = await a.rotate_root()
    stored = await _stored(replicas)
    assert sorted(stored.wrapped) == [1, 2]
    assert {w.key_id for w in stored.wrapped.values()} == {root}
    a.clear_caches()
    assert await a.open(ctx(), sealed["b"]) == b"sealed by b"


# -- destroy and portable blobs ---------------------------------------------------------------


async def test_destroy_shreds_a_vault_cached_or_not(replicas: Replicas) -> None:
    a = replicas.a
    for vault in ("v1", "v2"):
        await a.create_keyring(vault)
    blob = await a.seal(ctx("v1"), b"x")
    await a.destroy("v1")
    with pytest.raises(IntegrityError):
        await a.open(ctx("v1"), blob)
    a.clear_caches()
    await a.destroy("v2")  # not cached: nothing to drop, no error
    assert await replicas.storage.get(keyring_key("v2")) is None


async def test_portable_blobs_open_only_for_their_purpose(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    blob = await a.seal_portable("secret-backup", b"payload")
    assert b"payload" not in blob
    assert await b.open_portable("secret-backup", blob) == b"payload"  # any replica, any vault
    with pytest.raises(IntegrityError):
        await a.open_portable("key-backup", blob)
    with pytest.raises(IntegrityError):
        await a.open_portable("secret-backup", blob[:-1] + bytes([blob[-1] ^ 1]))
