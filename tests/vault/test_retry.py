"""The one compare-and-set retry: bounded, and a lost race ends as Conflict (HTTP 409)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kvault.errors import Conflict, StorageConflict
from kvault.storage.base import Op, Row, Storage
from kvault.vault.model import RoleAssignment
from kvault.vault.service import Kvault


class Contended:
    """Storage whose commits lose every compare-and-set race while ``contended`` is set."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.contended = False
        self.commits = 0

    async def get(self, key: str) -> Row | None:
        return await self.inner.get(key)

    async def list(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> list[Row]:
        return await self.inner.list(prefix, start_after=start_after, limit=limit)

    async def commit(self, ops: Sequence[Op]) -> dict[str, int]:
        if self.contended:
            self.commits += 1
            raise StorageConflict("another writer won")
        return await self.inner.commit(ops)

    async def close(self) -> None:
        return None


async def _contended(kv: Kvault) -> tuple[Kvault, Contended]:
    storage = Contended(kv.storage)
    other = Kvault(storage, kv.hsm)
    await other.start()
    return other, storage


async def test_a_secret_write_that_never_wins_is_a_conflict(kv: Kvault) -> None:
    other, storage = await _contended(kv)
    await other.secrets.set("v1", "pw", "one")
    storage.contended = True
    with pytest.raises(Conflict, match="concurrently"):
        await other.secrets.update("v1", "pw", enabled=False)
    with pytest.raises(Conflict, match="concurrently"):
        await other.secrets.delete("v1", "pw")
    assert storage.commits == 40  # two operations, each given up after 20 attempts
    storage.contended = False
    assert (await other.secrets.get("v1", "pw")).value == "one"


async def test_a_vault_update_that_never_wins_is_a_conflict(kv: Kvault) -> None:
    """It used to retry forever."""
    other, storage = await _contended(kv)
    storage.contended = True
    with pytest.raises(Conflict, match="concurrently"):
        await other.vaults.update(
            "v1", role_assignments=[RoleAssignment("team/app", "Secrets User")]
        )
    assert storage.commits == 20
    storage.contended = False
    assert (await other.vaults.get("v1")).role_assignments == ()


async def test_a_kek_rotation_that_never_wins_is_a_conflict(kv: Kvault) -> None:
    other, storage = await _contended(kv)
    vault = await other.vaults.get("v1")
    storage.contended = True
    with pytest.raises(Conflict, match="concurrently"):
        await other.barrier.rotate_kek(vault.id)
    assert storage.commits == 20


async def test_a_purge_that_never_wins_is_a_conflict(kv: Kvault) -> None:
    """It used to surface the storage layer's StorageConflict (an HTTP 500)."""
    other, storage = await _contended(kv)
    await other.secrets.set("v1", "pw", "one")
    await other.secrets.delete("v1", "pw")
    storage.contended = True
    with pytest.raises(Conflict, match="concurrently"):
        await other.secrets.purge("v1", "pw")
    storage.contended = False
    await other.secrets.purge("v1", "pw")
    await other.vaults.delete("v1")
    storage.contended = True
    with pytest.raises(Conflict, match="concurrently"):
        await other.vaults.purge("v1")
