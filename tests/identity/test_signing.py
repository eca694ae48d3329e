"""The signing keys live in storage sealed by the barrier, survive restarts, and racing
replicas end with one key. Runs over real SQLite and both HSM plugins."""

from __future__ import annotations

import asyncio

import pytest

from kvault.barrier.barrier import Barrier
from kvault.errors import IntegrityError
from kvault.identity import jws
from kvault.identity.model import Principal
from kvault.identity.signing import ROW, SigningKeys
from kvault.identity.tokens import AccessTokens
from kvault.storage.base import Put, Row, Storage
from kvault.vault.service import Kvault
from tests.fixtures.kvault import FakeClock, KvFactory


async def test_created_on_first_use_and_never_stored_in_plaintext(kv: Kvault) -> None:
    assert await kv.storage.get(ROW) is None
    keys = await SigningKeys(kv.sealed).ensure()
    row = await kv.storage.get(ROW)
    assert row is not None and row.revision == 1
    d = keys.active.private.private_numbers().private_value.to_bytes(32, "big")
    for needle in (d, jws.b64url(d).encode(), keys.active.kid.encode(), b'"keys"'):
        assert needle not in row.value
    # The key id is the public key's thumbprint: every replica derives the same one.
    assert keys.active.kid == jws.thumbprint(keys.active.public)


async def test_same_key_after_restart(kv: Kvault, kv_factory: KvFactory, clock: FakeClock) -> None:
    tokens = AccessTokens(SigningKeys(kv.sealed), clock=clock)
    issued = await tokens.mint(Principal("system:serviceaccount:a:b"))
    await kv.close()
    again = await kv_factory()
    verifier = AccessTokens(SigningKeys(again.sealed), clock=clock)
    await verifier.start()
    assert verifier.is_ours(issued.token)
    assert (await verifier.authenticate(issued.token)).name == "system:serviceaccount:a:b"


class GatedStorage:
    """Lets both replicas read "no key yet" before either writes, forcing the race."""

    def __init__(self, inner: Storage, gate: asyncio.Barrier) -> None:
        self._inner = inner
        self._gate = gate
        self.gated = True

    async def get(self, key: str) -> Row | None:
        row = await self._inner.get(key)
        if key == ROW and self.gated:
            self.gated = False
            await self._gate.wait()
        return row

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


async def test_racing_replicas_end_with_one_key(kv: Kvault) -> None:
    gate = asyncio.Barrier(2)
    replicas = [
        SigningKeys(Barrier(s, kv.hsm).view)  # type: ignore[arg-type]
        for s in (GatedStorage(kv.storage, gate), GatedStorage(kv.storage, gate))
    ]
    a, b = await asyncio.gather(*(r.ensure() for r in replicas))
    assert a.active.kid == b.active.kid
    assert len(a.keys) == len(b.keys) == 1
    row = await kv.storage.get(ROW)
    assert row is not None and row.revision == 1
    assert (await SigningKeys(kv.sealed).ensure()).active.kid == a.active.kid


async def test_rotation_keeps_previous_keys(kv: Kvault) -> None:
    keys = SigningKeys(kv.sealed)
    first = (await keys.ensure()).active.kid
    second = await keys.rotate()
    other = SigningKeys(kv.sealed)
    assert [k.kid for k in (await other.ensure()).keys] == [second, first]
    third = await other.rotate(keep=2)
    assert [k.kid for k in (await keys.refresh()).keys] == [third, second]


async def test_tampered_key_row_is_refused(kv: Kvault) -> None:
    await SigningKeys(kv.sealed).ensure()
    row = await kv.storage.get(ROW)
    assert row is not None
    bad = bytearray(row.value)
    bad[-1] ^= 1
    await kv.storage.commit([Put(ROW, bytes(bad))])
    kv.barrier.clear_caches()
    with pytest.raises(IntegrityError):
        await SigningKeys(kv.sealed).ensure()
