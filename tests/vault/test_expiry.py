"""Deleted items and vaults past their scheduled purge date: recover refuses them (as Azure
does, whether or not the purge already ran) and the Lease holder's pass purges them, each
purge audited, a certificate together with its key and secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvault.app.backends import AUDIT_FILE
from kvault.errors import NotFound
from kvault.vault.expiry import ExpiryScheduler
from kvault.vault.service import Kvault
from tests.fixtures.kvault import DAY, FakeClock, KvFactory

SELF_SIGNED = {"issuer": {"name": "Self"}, "x509_props": {"subject": "CN=web"}}


@pytest.fixture
async def kv7(kv_factory: KvFactory) -> Kvault:
    kv = await kv_factory()
    await kv.vaults.create("v7", retention_days=7)
    return kv


def _purges(tmp_path: Path) -> list[tuple[str, str, str]]:
    lines = (tmp_path / "data" / AUDIT_FILE).read_text().splitlines()
    return [
        (e["operation"], e["item"] or e["vault"], e["principal"])
        for e in map(json.loads, lines)
        if e["operation"].endswith("Purge")
    ]


async def test_recover_is_refused_once_the_retention_passed(kv7: Kvault, clock: FakeClock) -> None:
    await kv7.secrets.set("v7", "early", "x")
    await kv7.secrets.set("v7", "late", "x")
    await kv7.secrets.delete("v7", "early")
    await kv7.secrets.delete("v7", "late")
    clock.advance(7 * DAY - 1)
    await kv7.secrets.recover("v7", "early")  # the last second of its retention
    clock.advance(1)
    with pytest.raises(NotFound):
        await kv7.secrets.recover("v7", "late")


async def test_a_pass_purges_expired_items_of_every_kind_and_nothing_else(
    kv7: Kvault, clock: FakeClock, tmp_path: Path
) -> None:
    await kv7.secrets.set("v7", "old", "x")
    await kv7.secrets.set("v7", "young", "x")
    await kv7.keys.create("v7", "k", "EC")
    await kv7.certificates.create("v7", "web", SELF_SIGNED)
    for delete in (
        kv7.secrets.delete("v7", "old"),
        kv7.keys.delete("v7", "k"),
        kv7.certificates.delete("v7", "web"),
    ):
        await delete
    clock.advance(3 * DAY)
    await kv7.secrets.delete("v7", "young")
    scheduler = ExpiryScheduler(kv7)
    assert await scheduler.tick() == {}
    clock.advance(4 * DAY)
    assert await scheduler.tick() == {
        "v7/secrets": ["old"],
        "v7/keys": ["k"],
        "v7/certificates": ["web"],
    }
    for kind in (kv7.secrets, kv7.keys, kv7.certificates):
        names = {d.properties.name for d in (await kind.list_deleted("v7")).items}
        assert names == ({"young"} if kind is kv7.secrets else set())
    assert ("SecretPurge", "old", "kvault") in _purges(tmp_path)
    assert ("CertificatePurge", "web", "kvault") in _purges(tmp_path)


async def test_a_pass_purges_expired_vaults(kv7: Kvault, clock: FakeClock) -> None:
    await kv7.vaults.delete("v7")
    clock.advance(7 * DAY)
    with pytest.raises(NotFound):
        await kv7.vaults.recover("v7")
    assert await ExpiryScheduler(kv7).tick() == {"vaults": ["v7"]}
    assert [v.name for v in await kv7.vaults.list(deleted=True)] == []
