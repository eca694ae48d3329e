"""Operations that race on one name end as if they had run one after the other (issue 12,
finding 1), on real SQLite and both HSM plugins.

Two ways to race: many writers at once (``asyncio.gather``), and one writer whose commit is
preceded by another operation (:class:`Interleaved` runs it between the writer's reads and
its commit, the window a real race hits): the writer's compare-and-set fails, it reads again
and must answer as an operation that came after the other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kvault.errors import NotFound
from kvault.storage.base import Op, Row, Storage
from kvault.vault.model import VaultInfo
from kvault.vault.service import Kvault

UNKNOWN_ISSUER = {
    "issuer": {"name": "Unknown"},
    "x509_props": {"subject": "CN=race.example"},
    "key_props": {"kty": "EC", "crv": "P-256"},
}


class Interleaved:
    """Real storage whose next commit first lets another operation run and commit."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self._before: Callable[[], Awaitable[object]] | None = None

    def before_next_commit(self, other: Callable[[], Awaitable[object]]) -> None:
        self._before = other

    async def get(self, key: str) -> Row | None:
        return await self.inner.get(key)

    async def list(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> list[Row]:
        return await self.inner.list(prefix, start_after=start_after, limit=limit)

    async def commit(self, ops: Sequence[Op]) -> dict[str, int]:
        other, self._before = self._before, None
        if other is not None:
            await other()
        return await self.inner.commit(ops)

    async def close(self) -> None:
        return None


async def _interleaved(kv: Kvault) -> tuple[Kvault, Interleaved]:
    """A second kvault over the same database whose commits can be preceded by ``kv``'s."""
    storage = Interleaved(kv.storage)
    other = Kvault(storage, kv.hsm)
    await other.start()
    return other, storage


async def _versions(kv: Kvault, kind: Any, name: str) -> set[str]:
    found: set[str] = set()
    token = None
    while True:
        page = await kind.list_versions("v1", name, token=token)
        found |= {p.version for p in page.items}
        token = page.next_token
        if token is None:
            return found


async def test_racing_sets_of_one_secret_each_add_a_version(kv: Kvault) -> None:
    """They used to give up after 20 lost races each: 145 of 200 ended as 409 Conflict."""
    made = await asyncio.gather(
        *(kv.secrets.set("v1", "db-password", f"value-{i}") for i in range(200)),
        return_exceptions=True,
    )
    failed = [repr(r) for r in made if isinstance(r, BaseException)]
    assert not failed, f"{len(failed)} of 200 sets failed: {failed[:3]}"
    versions = {r.properties.version for r in made if not isinstance(r, BaseException)}
    assert await _versions(kv, kv.secrets, "db-password") == versions
    assert len(versions) == 200


async def _one_wins(coros: list[Awaitable[Any]]) -> tuple[Any, list[BaseException]]:
    results = await asyncio.gather(*coros, return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1, results
    return won[0], lost


async def test_racing_vault_deletes_and_recovers_each_succeed_once(kv: Kvault) -> None:
    """All ten used to succeed, each one moving the scheduled purge date."""
    gone, lost = await _one_wins([kv.vaults.delete("v1") for _ in range(10)])
    assert isinstance(gone, VaultInfo) and gone.deleted_date is not None
    assert [type(e) for e in lost] == [NotFound] * 9
    assert {e.code for e in lost if isinstance(e, NotFound)} == {"VaultNotFound"}
    assert (await kv.vaults.find("v1")) == gone

    back, lost = await _one_wins([kv.vaults.recover("v1") for _ in range(10)])
    assert back.deleted_date is None
    assert [type(e) for e in lost] == [NotFound] * 9
    assert (await kv.vaults.get("v1")).deleted_date is None


async def test_racing_purges_and_recovers_of_one_secret(kv: Kvault) -> None:
    await kv.secrets.set("v1", "pw", "one")
    await kv.secrets.delete("v1", "pw")
    results = await asyncio.gather(
        *(kv.secrets.purge("v1", "pw") for _ in range(10)),
        *(kv.secrets.recover("v1", "pw") for _ in range(10)),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1  # a purge or a recover; everything after it finds nothing deleted
    assert all(isinstance(r, NotFound) for r in results if isinstance(r, BaseException))
    if won[0] is None:  # a purge won
        with pytest.raises(NotFound):
            await kv.secrets.get("v1", "pw")
    else:
        assert (await kv.secrets.get("v1", "pw")).value == "one"


async def test_a_rotation_that_lost_to_a_delete_finds_no_key(kv: Kvault) -> None:
    """It used to say 409 ObjectIsDeletedButRecoverable: a rotation after the delete says
    the key is not found."""
    other, storage = await _interleaved(kv)
    first = await other.keys.create("v1", "signer", "EC")
    storage.before_next_commit(lambda: kv.keys.delete("v1", "signer"))
    with pytest.raises(NotFound) as err:
        await other.keys.rotate("v1", "signer")
    assert err.value.code == "KeyNotFound"
    await kv.keys.recover("v1", "signer")
    assert await _versions(kv, kv.keys, "signer") == {first.properties.version}


async def test_a_rotation_that_lost_to_a_purge_does_not_bring_the_key_back(kv: Kvault) -> None:
    """It used to recreate the purged key with one new version."""
    other, storage = await _interleaved(kv)
    await other.keys.create("v1", "signer", "EC")

    async def delete_and_purge() -> None:
        await kv.keys.delete("v1", "signer")
        await kv.keys.purge("v1", "signer")

    storage.before_next_commit(delete_and_purge)
    with pytest.raises(NotFound):
        await other.keys.rotate("v1", "signer")
    with pytest.raises(NotFound):
        await kv.keys.get("v1", "signer")
    with pytest.raises(NotFound):
        await kv.keys.get_deleted("v1", "signer")


def _signed(csr_der: bytes | None) -> bytes:
    """The CSR signed by a throwaway CA (the external CA of an ``Unknown`` issuer)."""
    assert csr_der is not None
    csr = x509.load_der_x509_csr(csr_der)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "race CA")])
    now = dt.datetime.now(dt.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_name)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    return leaf.public_bytes(serialization.Encoding.DER)


async def test_a_merge_that_lost_to_a_merge_finds_no_pending_operation(kv: Kvault) -> None:
    """It used to retry 20 times against the version the winner had made, then say 409."""
    other, storage = await _interleaved(kv)
    op = await other.certificates.create("v1", "web", UNKNOWN_ISSUER)
    leaf = _signed(op.csr)
    storage.before_next_commit(lambda: kv.certificates.merge("v1", "web", [leaf]))
    with pytest.raises(NotFound) as err:
        await other.certificates.merge("v1", "web", [leaf])
    assert err.value.code == "PendingCertificateNotFound"
    assert await _versions(kv, kv.certificates, "web") == {op.version}
    assert (await kv.certificates.get_operation("v1", "web")).status == "completed"


async def test_a_merge_that_lost_to_a_cancel_leaves_the_operation_cancelled(kv: Kvault) -> None:
    """It used to complete the cancelled operation (with the key the cancel had destroyed)."""
    other, storage = await _interleaved(kv)
    op = await other.certificates.create("v1", "web", UNKNOWN_ISSUER)
    leaf = _signed(op.csr)
    storage.before_next_commit(lambda: kv.certificates.cancel_operation("v1", "web"))
    with pytest.raises(NotFound) as err:
        await other.certificates.merge("v1", "web", [leaf])
    assert err.value.code == "PendingCertificateNotFound"
    assert (await kv.certificates.get_operation("v1", "web")).status == "cancelled"
    with pytest.raises(NotFound):
        await kv.certificates.get("v1", "web")
