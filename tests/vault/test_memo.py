"""Rows kept decoded (the keys kind's memo) never serve what storage no longer holds."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from kvault.barrier.memo import Memo
from kvault.errors import IntegrityError, ItemDisabled, NotFound
from kvault.storage.base import Delete, Put
from kvault.vault.keys.kind import KEY
from kvault.vault.keys.operations import KeyInput
from kvault.vault.secrets import SECRET
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


# -- secrets: heads and version metadata (issue 14), never values ---------------------------


async def _rows(kv: Kvault, name: str, version: str) -> tuple[str, str]:
    vault = await kv.vaults.get("v1")
    head, _ = SECRET.layout.head_row(vault.id, name)
    row, _ = SECRET.layout.version_row(vault.id, name, version)
    return head, row


async def test_a_secret_read_follows_its_rows_bytes_not_their_revisions(kv: Kvault) -> None:
    """Head and version metadata are kept decoded by the bytes they came from: rows put back
    as they were (revision 1 again) are read as what they now hold."""
    first = await kv.secrets.set("v1", "s", "one", tags={"t": "1"})
    version = first.properties.version
    assert (await kv.secrets.get("v1", "s")).properties.tags == {"t": "1"}  # kept
    head_key, version_key = await _rows(kv, "s", version)
    old = [await kv.storage.get(k) for k in (head_key, version_key)]
    await kv.secrets.update("v1", "s", version, tags={"t": "2"}, content_type="text/x")
    got = await kv.secrets.get("v1", "s")
    assert (got.properties.tags, got.properties.content_type, got.value) == (
        {"t": "2"},
        "text/x",
        "one",
    )
    for key, row in zip((head_key, version_key), old, strict=True):
        assert row is not None
        await kv.storage.commit([Delete(key)])
        await kv.storage.commit([Put(key, row.value)])
    again = await kv.secrets.get("v1", "s", version)
    assert (again.properties.tags, again.properties.content_type) == ({"t": "1"}, None)
    assert (await kv.secrets.get("v1", "s")).properties.tags == {"t": "1"}


async def test_a_tampered_secret_version_is_refused_after_its_metadata_was_kept(
    kv: Kvault,
) -> None:
    created = await kv.secrets.set("v1", "s", "value")
    version = created.properties.version
    await kv.secrets.get("v1", "s")
    _, key = await _rows(kv, "s", version)
    row = await kv.storage.get(key)
    assert row is not None
    bad = bytearray(row.value)
    bad[len(bad) // 2] ^= 0x01  # inside the sealed value: the fingerprint is unchanged
    await kv.storage.commit([Put(key, bytes(bad))])
    with pytest.raises(IntegrityError):
        await kv.secrets.get("v1", "s")
    await kv.storage.commit([Put(key, row.value)])
    assert (await kv.secrets.get("v1", "s")).value == "value"


async def test_a_new_version_and_a_vault_change_show_in_the_next_read(kv: Kvault) -> None:
    await kv.secrets.set("v1", "s", "one")
    before = await kv.secrets.get("v1", "s")
    assert before.properties.recovery_level == "CustomizedRecoverable+Purgeable"
    second = await kv.secrets.set("v1", "s", "two")
    got = await kv.secrets.get("v1", "s")
    assert (got.value, got.properties.version) == ("two", second.properties.version)
    await kv.vaults.update("v1", purge_protection=True)  # a new VaultInfo: properties rebuilt
    after = await kv.secrets.get("v1", "s")
    assert after.properties.recovery_level == "CustomizedRecoverable"
    assert (await kv.secrets.get("v1", "s", before.properties.version)).value == "one"
    await kv.secrets.delete("v1", "s")
    with pytest.raises(NotFound):
        await kv.secrets.get("v1", "s")


async def test_a_write_remembers_the_head_it_wrote_exactly_as_a_read_decodes_it(
    kv: Kvault,
) -> None:
    """A commit puts the head rows it wrote into the heads memo (the next SET reads that head):
    what it puts must equal what decoding the stored row gives, for every kind and every
    write that replaces a head (new version, metadata update, a certificate's managed items)."""
    await kv.secrets.set("v1", "s", "value", tags={"t": "1"}, content_type="text/plain")
    await kv.keys.create("v1", "k", "EC", crv="P-256", key_ops=["sign", "verify"])
    await kv.keys.update("v1", "k", "", enabled=False, tags={"u": "2"})
    policy = {
        "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
        "secret_props": {"contentType": "application/x-pem-file"},
        "x509_props": {"subject": "CN=web.example", "validity_months": 12},
        "issuer": {"name": "Self"},
    }
    await kv.certificates.create("v1", "c", policy, tags={"c": "3"})
    vault = await kv.vaults.get("v1")
    engines: list[tuple[Any, str]] = [
        (kv.secrets, "s"),
        (kv.keys, "k"),
        (kv.certificates, "c"),
        (kv.keys, "c"),
        (kv.secrets, "c"),
    ]
    for engine, name in engines:
        key, ctx = engine.kind.layout.head_row(vault.id, name)
        row = await kv.storage.get(key)
        assert row is not None
        remembered = engine._heads.get(key, row.value)
        assert remembered is not None, f"{engine.kind.name} {name}: head not remembered"
        found = await kv.core.read(key, ctx)
        assert found is not None
        assert remembered == engine._codec.decode_head(found[1]), f"{engine.kind.name} {name}"
