"""HSM-held keys live as long as their key: purging the key, or the whole vault, destroys
the HSM objects of every version (run on both plugins; on pkcs11 the token object is gone)."""

from __future__ import annotations

import hashlib

import pytest

from kvault.errors import HSMError, IntegrityError
from kvault.hsm.keys import held_keys
from kvault.vault.service import Kvault
from tests.fixtures.kvault import KvFactory

DIGEST = hashlib.sha256(b"kvault").digest()


async def _handles(kv: Kvault, vault: str, name: str) -> list[bytes]:
    info = await kv.vault(vault)
    rows = await kv.sealed.scan(
        kv.keys.kind.layout.versions(info.id, name),
        lambda v: kv.keys.kind.layout.version_context(info.id, name, v),
    )
    return [kv.keys.kind.codec.decode_version(r.plaintext).value.handle for r in rows]


async def _gone(kv: Kvault, handle: bytes, kind: str) -> None:
    held = held_keys(kv.hsm)
    assert held is not None
    if kind == "software":  # not an HSM: the handle is the key, gone with its record
        return
    with pytest.raises((HSMError, IntegrityError)):
        await held.sign(handle, "ES256", DIGEST)


@pytest.mark.parametrize("purge", ["key", "vault"])
async def test_purge_destroys_hsm_objects(
    kv_factory: KvFactory, hsm_options: tuple[str, dict[str, str]], purge: str
) -> None:
    kind = hsm_options[0]
    kv = await kv_factory()
    await kv.vaults.create("prem", sku="premium", retention_days=7)
    await kv.keys.create("prem", "sig", "EC-HSM", crv="P-256")
    await kv.keys.rotate("prem", "sig")
    handles = await _handles(kv, "prem", "sig")
    assert len(handles) == 2 and all(handles)
    held = held_keys(kv.hsm)
    assert held is not None
    for handle in handles:  # usable while the key lives
        assert len(await held.sign(handle, "ES256", DIGEST)) == 64
    if purge == "key":
        await kv.keys.delete("prem", "sig")
        await kv.keys.purge("prem", "sig")
    else:
        await kv.vaults.delete("prem")
        await kv.vaults.purge("prem")
    for handle in handles:
        await _gone(kv, handle, kind)


async def test_hsm_key_type_needs_a_premium_vault(kv: Kvault) -> None:
    from kvault.errors import BadParameter

    with pytest.raises(BadParameter, match="premium"):
        await kv.keys.create("v1", "k", "RSA-HSM")
    with pytest.raises(Exception, match="not found"):
        await kv.keys.get("v1", "k")
