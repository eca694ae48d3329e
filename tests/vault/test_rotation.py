"""Rotating the HSM root key and a vault's KEK keeps old data readable; purge shreds a vault."""

from __future__ import annotations

import pytest

from kvault.barrier.barrier import keyring_key
from kvault.barrier.context import Context
from kvault.barrier.keyring import StoredKeyring
from kvault.errors import IntegrityError, NotFound, PurgeProtected
from kvault.storage.base import Put
from kvault.vault import layout
from kvault.vault.service import Kvault
from tests.fixtures.kvault import DAY, FakeClock, KvFactory


async def test_rotations_keep_every_old_version_readable(kv: Kvault, kv_factory: KvFactory) -> None:
    written = {}
    for i in range(3):
        s = await kv.secrets.set("v1", "rotating", f"before-{i}")
        written[s.properties.version] = f"before-{i}"
    vault = await kv.vaults.get("v1")
    root_before = kv.hsm.active_key_id

    term = await kv.barrier.rotate_kek(vault.id)
    assert term == 2
    s = await kv.secrets.set("v1", "rotating", "after-kek")
    written[s.properties.version] = "after-kek"

    new_root = await kv.barrier.rotate_root()
    assert new_root != root_before
    s = await kv.secrets.set("v1", "rotating", "after-root")
    written[s.properties.version] = "after-root"

    # Every keyring is now wrapped under the new root only.
    row = await kv.storage.get(keyring_key(vault.id))
    assert row is not None
    stored = StoredKeyring.decode(row.value)
    assert stored.active == 2
    assert {w.key_id for w in stored.wrapped.values()} == {new_root}

    # A fresh process (cold caches, plugin reopened) reads everything back.
    await kv.close()
    again = await kv_factory()
    for version, value in written.items():
        assert (await again.secrets.get("v1", "rotating", version)).value == value
    assert again.hsm.active_key_id == new_root


async def test_purged_vault_rows_cannot_be_decrypted_even_with_the_root_key(
    kv: Kvault, clock: FakeClock
) -> None:
    s = await kv.secrets.set("v1", "doomed", "shred-me")
    vault = await kv.vaults.get("v1")
    key, ctx = layout.version_row(vault.id, "doomed", s.properties.version)
    row = await kv.storage.get(key)
    assert row is not None
    stolen = row.value  # an attacker's copy of the ciphertext, taken before the purge
    stolen_ring = await kv.storage.get(keyring_key(vault.id))
    assert stolen_ring is not None

    await kv.vaults.delete("v1")
    with pytest.raises(NotFound):
        await kv.secrets.get("v1", "doomed")
    await kv.vaults.purge("v1")

    assert await kv.storage.list(layout.vault_prefix(vault.id)) == []
    assert await kv.storage.get(keyring_key(vault.id)) is None
    # The barrier (which holds the HSM root) cannot open the stolen row any more.
    with pytest.raises(IntegrityError, match="purged"):
        await kv.barrier.open(ctx, stolen)
    assert isinstance(ctx, Context)
    # The name can be used again, for a new vault with a new key.
    await kv.vaults.create("v1", retention_days=7)
    with pytest.raises(NotFound):
        await kv.secrets.get("v1", "doomed")
    # Putting back the stolen row (without the old keyring) still opens nothing.
    fresh = await kv.vaults.get("v1")
    await kv.storage.commit(
        [Put(layout.version_row(fresh.id, "doomed", s.properties.version)[0], stolen)]
    )
    with pytest.raises(IntegrityError):
        await kv.barrier.open(
            layout.version_row(fresh.id, "doomed", s.properties.version)[1], stolen
        )


async def test_deleted_vault_recovers_with_its_items(kv: Kvault, clock: FakeClock) -> None:
    await kv.secrets.set("v1", "keep", "me")
    deleted = await kv.vaults.delete("v1")
    assert deleted.scheduled_purge_date == clock.now + 30 * DAY
    assert [v.name for v in await kv.vaults.list(deleted=True)] == ["v1"]
    await kv.vaults.recover("v1")
    assert (await kv.secrets.get("v1", "keep")).value == "me"


async def test_purge_protected_vault_is_purged_only_after_retention(
    kv: Kvault, clock: FakeClock
) -> None:
    await kv.vaults.create("guarded", retention_days=7, purge_protection=True)
    await kv.secrets.set("guarded", "x", "y")
    await kv.vaults.delete("guarded")
    with pytest.raises(PurgeProtected):
        await kv.vaults.purge("guarded")
    assert await kv.vaults.purge_expired() == []
    clock.advance(7 * DAY)
    assert await kv.vaults.purge_expired() == ["guarded"]
    assert await kv.vaults.list(deleted=True) == []
