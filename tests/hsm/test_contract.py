"""The HSM contract, run against every plugin (``hsm_kind`` is parametrised)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kvault.errors import ConfigError, HSMError, IntegrityError
from kvault.hsm import HSM, WrappedKey, available, load
from tests.fixtures.softhsm import HSMFactory

AAD = b"kvault/kek\x1fvault-1\x1f1"


def flip(blob: bytes, index: int) -> bytes:
    b = bytearray(blob)
    b[index] ^= 0x01
    return bytes(b)


async def test_roundtrip(hsm: HSM) -> None:
    key = os.urandom(32)
    wrapped = await hsm.wrap(key, AAD)
    assert wrapped.key_id == hsm.active_key_id
    assert key not in wrapped.blob
    assert len(wrapped.blob) == 12 + 32 + 16
    assert await hsm.unwrap(wrapped, AAD) == key
    again = await hsm.wrap(key, AAD)
    assert again.blob != wrapped.blob  # fresh nonce per wrap


async def test_empty_aad_and_other_sizes(hsm: HSM) -> None:
    for size in (16, 24, 32, 64):
        key = os.urandom(size)
        assert await hsm.unwrap(await hsm.wrap(key, b""), b"") == key


async def test_wrong_aad_is_integrity_error(hsm: HSM) -> None:
    wrapped = await hsm.wrap(os.urandom(32), AAD)
    with pytest.raises(IntegrityError, match="failed authentication"):
        await hsm.unwrap(wrapped, AAD + b"x")
    with pytest.raises(IntegrityError, match="failed authentication"):
        await hsm.unwrap(wrapped, b"")
    await hsm.unwrap(wrapped, AAD)  # a failed decrypt leaves no operation behind


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
async def test_flipped_byte_is_integrity_error(hsm: HSM, where: str) -> None:
    wrapped = await hsm.wrap(os.urandom(32), AAD)
    index = {"nonce": 0, "ciphertext": 12, "tag": len(wrapped.blob) - 1}[where]
    tampered = WrappedKey(wrapped.key_id, flip(wrapped.blob, index))
    with pytest.raises(IntegrityError, match="failed authentication"):
        await hsm.unwrap(tampered, AAD)


@pytest.mark.parametrize("length", [0, 11, 27])
async def test_short_blob_is_integrity_error(hsm: HSM, length: int) -> None:
    wrapped = await hsm.wrap(os.urandom(32), AAD)
    with pytest.raises(IntegrityError):
        await hsm.unwrap(WrappedKey(wrapped.key_id, wrapped.blob[:length]), AAD)


async def test_unknown_key_id_is_config_error(hsm: HSM) -> None:
    wrapped = await hsm.wrap(os.urandom(32), AAD)
    # Garbage, and an id shaped like a real one but absent (forces a reload from the source).
    for key_id in ("nope", hsm.active_key_id + "0"):
        with pytest.raises(ConfigError, match="unknown root key id"):
            await hsm.unwrap(WrappedKey(key_id, wrapped.blob), AAD)


async def test_rotate(hsm: HSM) -> None:
    first = hsm.active_key_id
    key1 = os.urandom(32)
    w1 = await hsm.wrap(key1, AAD)

    second = await hsm.rotate()
    assert second != first
    assert hsm.active_key_id == second
    key2 = os.urandom(32)
    w2 = await hsm.wrap(key2, AAD)
    assert w2.key_id == second
    assert await hsm.unwrap(w1, AAD) == key1
    assert await hsm.unwrap(w2, AAD) == key2

    third = await hsm.rotate()
    assert len({first, second, third}) == 3
    assert await hsm.unwrap(w1, AAD) == key1
    # A blob cannot be moved to another root key id.
    with pytest.raises(IntegrityError):
        await hsm.unwrap(WrappedKey(second, w1.blob), AAD)


async def test_reopen_finds_the_same_keys(
    hsm_kind: str, hsm_factory: HSMFactory, tmp_path: Path
) -> None:
    a = hsm_factory(hsm_kind, tmp_path)
    await a.open()
    key = os.urandom(32)
    old = await a.wrap(key, AAD)
    active = await a.rotate()
    new = await a.wrap(key, AAD)
    await a.close()

    b = hsm_factory(hsm_kind, tmp_path)
    await b.open()
    assert b.active_key_id == active
    assert await b.unwrap(old, AAD) == key
    assert await b.unwrap(new, AAD) == key
    await b.close()


async def test_other_directory_has_other_keys(
    hsm_kind: str, hsm_factory: HSMFactory, tmp_path: Path
) -> None:
    a = hsm_factory(hsm_kind, tmp_path / "a")
    b = hsm_factory(hsm_kind, tmp_path / "b")
    await a.open()
    await b.open()
    wrapped = await a.wrap(os.urandom(32), AAD)
    with pytest.raises((ConfigError, IntegrityError)):
        await b.unwrap(wrapped, AAD)


async def test_two_open_instances_see_each_others_rotation(
    hsm_kind: str, hsm_factory: HSMFactory, tmp_path: Path
) -> None:
    a = hsm_factory(hsm_kind, tmp_path)
    b = hsm_factory(hsm_kind, tmp_path)
    await a.open()
    await b.open()
    assert a.active_key_id == b.active_key_id
    await a.rotate()
    key = os.urandom(32)
    assert await b.unwrap(await a.wrap(key, AAD), AAD) == key  # b reloads the new key
    await a.close()
    assert await b.unwrap(await b.wrap(key, AAD), AAD) == key  # b unaffected by a's close
    await b.close()


async def test_concurrent_calls_from_tasks_and_threads(hsm: HSM) -> None:
    """The crash regression test for pkcs11: many in-flight calls plus foreign threads."""

    async def roundtrip(i: int) -> None:
        key = os.urandom(32)
        aad = AAD + str(i).encode()
        assert await hsm.unwrap(await hsm.wrap(key, aad), aad) == key

    def in_thread(t: int) -> None:
        async def many() -> None:
            await asyncio.gather(*(roundtrip(10_000 * t + i) for i in range(50)))

        asyncio.run(many())  # each thread drives the plugin from its own event loop

    await asyncio.gather(
        *(roundtrip(i) for i in range(200)),
        *(asyncio.to_thread(in_thread, t) for t in range(1, 7)),
    )
    old = await hsm.wrap(b"k" * 32, AAD)
    # Rotation racing with traffic must not break anything either.
    await asyncio.gather(hsm.rotate(), *(roundtrip(i) for i in range(100)))
    assert await hsm.unwrap(old, AAD) == b"k" * 32


async def test_registry_load(hsm_kind: str, hsm_factory: HSMFactory, tmp_path: Path) -> None:
    assert {"software", "pkcs11"} <= set(available())
    plugin = load(hsm_kind, hsm_factory.options(hsm_kind, tmp_path))
    assert plugin.name == hsm_kind
    await plugin.open()
    try:
        # After open: on 3.11 the runtime Protocol check reads the active_key_id property.
        assert isinstance(plugin, HSM)
        assert await plugin.unwrap(await plugin.wrap(b"x" * 32, AAD), AAD) == b"x" * 32
    finally:
        await plugin.close()


async def test_unknown_option_refused(
    hsm_kind: str, hsm_factory: HSMFactory, tmp_path: Path
) -> None:
    options = {**hsm_factory.options(hsm_kind, tmp_path), "keyfile": "typo"}
    with pytest.raises(ConfigError, match=r"unknown option.*keyfile"):
        load(hsm_kind, options)


async def test_unopened_and_closed_refuse(
    hsm_kind: str, hsm_factory: HSMFactory, tmp_path: Path
) -> None:
    plugin = hsm_factory(hsm_kind, tmp_path)
    with pytest.raises(HSMError, match="not open"):
        await plugin.wrap(b"k" * 32, AAD)
    await plugin.open()
    wrapped = await plugin.wrap(b"k" * 32, AAD)
    await plugin.close()
    await plugin.close()  # idempotent
    with pytest.raises(HSMError, match="not open"):
        await plugin.unwrap(wrapped, AAD)


def test_unknown_plugin() -> None:
    with pytest.raises(ConfigError, match="unknown HSM plugin"):
        load("nope", {})
