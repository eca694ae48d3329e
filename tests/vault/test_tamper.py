"""Tampering with stored rows gives an integrity error, never other plaintext."""

from __future__ import annotations

import random

import pytest

from kvault.errors import IntegrityError
from kvault.storage.base import Put
from kvault.vault import layout
from kvault.vault.service import Kvault


async def _version_rows(kv: Kvault) -> list[tuple[str, bytes]]:
    return [(r.key, r.value) for r in await kv.storage.list("v/") if "/sv/" in r.key]


async def test_flipping_any_byte_of_a_row_is_detected(kv: Kvault) -> None:
    s = await kv.secrets.set("v1", "target", "the-value", tags={"k": "v"})
    vault = await kv.vaults.get("v1")
    key, _ = layout.version_row(vault.id, "target", s.properties.version)
    row = await kv.storage.get(key)
    assert row is not None
    rng = random.Random(7)
    positions = sorted({*range(0, 80), *rng.sample(range(len(row.value)), 40), len(row.value) - 1})
    for pos in positions:
        bad = bytearray(row.value)
        bad[pos] ^= 1 << rng.randrange(8)
        await kv.storage.commit([Put(key, bytes(bad))])
        with pytest.raises(IntegrityError):
            await kv.secrets.get("v1", "target", s.properties.version)
    # Truncation too.
    await kv.storage.commit([Put(key, row.value[:40])])
    with pytest.raises(IntegrityError):
        await kv.secrets.get("v1", "target", s.properties.version)
    await kv.storage.commit([Put(key, row.value)])
    assert (await kv.secrets.get("v1", "target", s.properties.version)).value == "the-value"


async def test_flipping_bytes_of_head_and_vault_rows_is_detected(kv: Kvault) -> None:
    await kv.secrets.set("v1", "h", "value")
    vault = await kv.vaults.get("v1")
    for key in (layout.head_row(vault.id, "h")[0], layout.vault_row("v1")[0]):
        row = await kv.storage.get(key)
        assert row is not None
        bad = bytearray(row.value)
        bad[len(bad) // 2] ^= 0x40
        await kv.storage.commit([Put(key, bytes(bad))])
        kv.core.forget_vault("v1")
        with pytest.raises(IntegrityError):
            await kv.secrets.get("v1", "h")
        await kv.storage.commit([Put(key, row.value)])
        kv.core.forget_vault("v1")
    assert (await kv.secrets.get("v1", "h")).value == "value"


async def test_swapping_two_rows_ciphertexts_is_detected(kv: Kvault) -> None:
    a = await kv.secrets.set("v1", "alpha", "value-a")
    b = await kv.secrets.set("v1", "beta", "value-b")
    vault = await kv.vaults.get("v1")
    ka = layout.version_row(vault.id, "alpha", a.properties.version)[0]
    kb = layout.version_row(vault.id, "beta", b.properties.version)[0]
    ra, rb = await kv.storage.get(ka), await kv.storage.get(kb)
    assert ra is not None and rb is not None
    await kv.storage.commit([Put(ka, rb.value), Put(kb, ra.value)])
    with pytest.raises(IntegrityError):
        await kv.secrets.get("v1", "alpha", a.properties.version)
    with pytest.raises(IntegrityError):
        await kv.secrets.get("v1", "beta", b.properties.version)
    # Two versions of one secret swapped: bound to their version, so also detected.
    a2 = await kv.secrets.set("v1", "alpha", "value-a2")
    k2 = layout.version_row(vault.id, "alpha", a2.properties.version)[0]
    r2 = await kv.storage.get(k2)
    assert r2 is not None
    await kv.storage.commit([Put(ka, r2.value)])
    with pytest.raises(IntegrityError):
        await kv.secrets.get("v1", "alpha", a.properties.version)


async def test_replaying_an_old_version_under_a_new_name_is_detected(kv: Kvault) -> None:
    old = await kv.secrets.set("v1", "source", "old-value")
    await kv.secrets.set("v1", "source", "new-value")
    victim = await kv.secrets.set("v1", "victim", "victim-value")
    vault = await kv.vaults.get("v1")
    src = await kv.storage.get(layout.version_row(vault.id, "source", old.properties.version)[0])
    assert src is not None
    # Put the old version's row where the victim's current version lives...
    vkey = layout.version_row(vault.id, "victim", victim.properties.version)[0]
    await kv.storage.commit([Put(vkey, src.value)])
    with pytest.raises(IntegrityError):
        await kv.secrets.get("v1", "victim")
    # ...or under a version id of its own beside the victim's.
    fake = layout.version_row(vault.id, "victim", old.properties.version)[0]
    await kv.storage.commit([Put(fake, src.value)])
    with pytest.raises(IntegrityError):
        await kv.secrets.get("v1", "victim", old.properties.version)
    # Rows of another vault do not open here either.
    await kv.vaults.create("v2", retention_days=7)
    other = await kv.secrets.set("v2", "victim", "other-vault")
    v2 = await kv.vaults.get("v2")
    orow = await kv.storage.get(layout.version_row(v2.id, "victim", other.properties.version)[0])
    assert orow is not None
    await kv.storage.commit([Put(vkey, orow.value)])
    with pytest.raises(IntegrityError):
        await kv.secrets.get("v1", "victim")
