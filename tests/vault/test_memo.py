"""Rows kept decoded (the keys kind's memo) never serve what storage no longer holds."""

from __future__ import annotations

import hashlib

import pytest

from kvault.barrier.memo import Memo
from kvault.errors import IntegrityError, ItemDisabled, NotFound
from kvault.storage.base import Delete, Put
from kvault.vault.keys.kind import KEY
from kvault.vault.keys.operations import KeyInput
from kvault.vault.service import Kvault

DIGEST = hashlib.sha256(b"memo").digest()


def test_memo_answers_only_for_the_same_bytes_and_stays_bounded() -> None:
    memo: Memo[str] = Memo(2)
    memo.put("a", b"one", "A1")
    assert memo.get("a", b"one") == "A1"
    assert memo.get("a", b"two") is None  # rewritten: decode again
    memo.put("b", b"x", "B")
    assert memo.get("a", b"one") == "A1"  # a is now the most recent
    memo.put("c", b"y", "C")  # evicts b, the least recently used
    assert memo.get("b", b"x") is None
    assert (memo.get("a", b"one"), memo.get("c", b"y")) == ("A1", "C")
    with pytest.raises(ValueError):
        Memo(0)


async def _sign(kv: Kvault, version: str = "") -> str:
    result = await kv.keys.operate("v1", "k", version, "Sign", "ES256", KeyInput(value=DIGEST))
    return result.version


async def test_a_key_row_written_again_with_the_same_revision_is_read_anew(kv: Kvault) -> None:
    """A row deleted and written again starts over at revision 1: the memo, keyed by the
    stored bytes, must not mistake it for the row it saw before."""
    first = await kv.keys.create("v1", "k", "EC", crv="P-256")
    version = first.properties.version
    assert await _sign(kv, version) == version  # read, and memoised
    vault = await kv.vaults.get("v1")
    key, _ = KEY.layout.version_row(vault.id, "k", version)
    before = await kv.storage.get(key)
    assert before is not None
    await kv.keys.update("v1", "k", version, enabled=False)
    disabled = await kv.storage.get(key)
    assert disabled is not None
    await kv.storage.commit([Delete(key)])
    await kv.storage.commit([Put(key, disabled.value)])  # revision 1 again, other bytes
    assert (await kv.storage.get(key)).revision == before.revision  # type: ignore[union-attr]
    with pytest.raises(ItemDisabled):
        await _sign(kv, version)


async def test_a_tampered_key_row_is_refused_after_it_was_memoised(kv: Kvault) -> None:
    created = await kv.keys.create("v1", "k", "EC", crv="P-256")
    version = created.properties.version
    await _sign(kv, version)
    vault = await kv.vaults.get("v1")
    key, _ = KEY.layout.version_row(vault.id, "k", version)
    row = await kv.storage.get(key)
    assert row is not None
    bad = bytearray(row.value)
    bad[len(bad) // 2] ^= 0x01
    await kv.storage.commit([Put(key, bytes(bad))])
    with pytest.raises(IntegrityError):
        await _sign(kv, version)
    await kv.storage.commit([Put(key, row.value)])
    assert await _sign(kv, version) == version


async def test_a_deleted_key_is_not_usable_through_the_memo(kv: Kvault) -> None:
    created = await kv.keys.create("v1", "k", "EC", crv="P-256")
    await _sign(kv, created.properties.version)
    await kv.keys.delete("v1", "k")
    with pytest.raises(NotFound):
        await _sign(kv, created.properties.version)
