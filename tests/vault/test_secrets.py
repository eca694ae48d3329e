"""The secrets lifecycle with Azure Key Vault semantics, against both HSM plugins."""

from __future__ import annotations

import pytest

from kvault.errors import BadParameter, Conflict, ItemDisabled, NotFound, PurgeProtected
from kvault.vault.service import Kvault
from tests.fixtures.kvault import DAY, FakeClock


async def test_set_creates_versions_and_get_reads_latest_or_fixed(kv: Kvault) -> None:
    first = await kv.secrets.set("v1", "db-password", "one", content_type="text/plain")
    second = await kv.secrets.set("v1", "db-password", "two", tags={"env": "prod"})
    assert first.properties.version != second.properties.version
    assert len(second.properties.version) == 32

    latest = await kv.secrets.get("v1", "db-password")
    assert latest.value == "two"
    assert latest.properties.version == second.properties.version
    assert latest.properties.tags == {"env": "prod"}
    old = await kv.secrets.get("v1", "db-password", first.properties.version)
    assert (old.value, old.properties.content_type) == ("one", "text/plain")
    # Names are case-insensitive, as in Azure; the stored spelling is kept.
    assert (await kv.secrets.get("v1", "DB-PASSWORD")).value == "two"


async def test_list_and_list_versions_are_paged_metadata(kv: Kvault) -> None:
    for i in range(7):
        await kv.secrets.set("v1", f"s{i}", f"value-{i}")
    for i in range(4):
        await kv.secrets.set("v1", "s0", f"again-{i}")

    seen, token = [], None
    while True:
        page = await kv.secrets.list("v1", max_results=3, token=token)
        assert len(page.items) <= 3
        seen += [p.name for p in page.items]
        token = page.next_token
        if token is None:
            break
    assert sorted(seen) == [f"s{i}" for i in range(7)]
    assert not any(hasattr(p, "value") for p in page.items)

    versions, token = [], None
    while True:
        vpage = await kv.secrets.list_versions("v1", "s0", max_results=2, token=token)
        versions += [p.version for p in vpage.items]
        token = vpage.next_token
        if token is None:
            break
    assert len(set(versions)) == 5


async def test_update_attributes_and_disabled_version_cannot_be_read(
    kv: Kvault, clock: FakeClock
) -> None:
    s = await kv.secrets.set("v1", "api-key", "k1")
    clock.advance(10)
    props = await kv.secrets.update(
        "v1", "api-key", enabled=False, expires=2_000_000_000, tags={"a": "b"}
    )
    assert props.version == s.properties.version
    assert (props.enabled, props.expires, props.tags) == (False, 2_000_000_000, {"a": "b"})
    assert props.updated == s.properties.updated + 10
    with pytest.raises(ItemDisabled, match="disabled"):
        await kv.secrets.get("v1", "api-key")
    # The listing still shows it, with its attributes.
    (listed,) = (await kv.secrets.list("v1")).items
    assert listed.enabled is False
    await kv.secrets.update("v1", "api-key", s.properties.version, enabled=True)
    assert (await kv.secrets.get("v1", "api-key")).value == "k1"


async def test_soft_delete_recover_and_purge(kv: Kvault, clock: FakeClock) -> None:
    await kv.secrets.set("v1", "gone", "bye")
    deleted = await kv.secrets.delete("v1", "gone")
    assert deleted.deleted_date == clock.now
    assert deleted.scheduled_purge_date == clock.now + 30 * DAY  # the vault keeps 30 days
    assert deleted.properties.recovery_level == "CustomizedRecoverable+Purgeable"
    with pytest.raises(NotFound):
        await kv.secrets.get("v1", "gone")
    with pytest.raises(Conflict, match="deleted but recoverable"):
        await kv.secrets.set("v1", "gone", "again")
    assert [d.properties.name for d in (await kv.secrets.list_deleted("v1")).items] == ["gone"]
    assert (await kv.secrets.get_deleted("v1", "gone")).deleted_date == clock.now

    await kv.secrets.recover("v1", "gone")
    assert (await kv.secrets.get("v1", "gone")).value == "bye"
    with pytest.raises(NotFound):
        await kv.secrets.get_deleted("v1", "gone")

    await kv.secrets.delete("v1", "gone")
    await kv.secrets.purge("v1", "gone")
    with pytest.raises(NotFound):
        await kv.secrets.get_deleted("v1", "gone")
    new = await kv.secrets.set("v1", "gone", "fresh")  # the name is free again
    page = await kv.secrets.list_versions("v1", "gone")
    assert [p.version for p in page.items] == [new.properties.version]


async def test_purge_protection_refuses_purge_until_retention_passes(
    kv: Kvault, clock: FakeClock
) -> None:
    await kv.vaults.create("locked", retention_days=7, purge_protection=True)
    await kv.secrets.set("locked", "x", "y")
    d = await kv.secrets.delete("locked", "x")
    assert d.properties.recovery_level == "CustomizedRecoverable"
    with pytest.raises(PurgeProtected, match="purge protection"):
        await kv.secrets.purge("locked", "x")
    assert await kv.secrets.purge_expired("locked") == []
    clock.advance(7 * DAY)
    assert await kv.secrets.purge_expired("locked") == ["x"]
    with pytest.raises(NotFound):
        await kv.secrets.get_deleted("locked", "x")


async def test_backup_and_restore_all_versions(kv: Kvault) -> None:
    a = await kv.secrets.set("v1", "cert-pass", "old", tags={"t": "1"})
    b = await kv.secrets.set("v1", "cert-pass", "new")
    blob = await kv.secrets.backup("v1", "cert-pass")
    assert b"old" not in blob and b"new" not in blob
    with pytest.raises(Conflict, match="already exists"):
        await kv.secrets.restore("v1", blob)

    await kv.vaults.create("v2", retention_days=7)
    restored = await kv.secrets.restore("v2", blob)
    assert restored.version == b.properties.version
    assert (await kv.secrets.get("v2", "cert-pass")).value == "new"
    old = await kv.secrets.get("v2", "cert-pass", a.properties.version)
    assert (old.value, old.properties.tags) == ("old", {"t": "1"})

    await kv.secrets.delete("v1", "cert-pass")
    with pytest.raises(Conflict):  # deleted-but-recoverable also blocks a restore
        await kv.secrets.restore("v1", blob)
    await kv.secrets.purge("v1", "cert-pass")
    await kv.secrets.restore("v1", blob)
    assert (await kv.secrets.get("v1", "cert-pass")).value == "new"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda kv: kv.secrets.set("v1", "bad_name", "x"), "letters, digits and hyphens"),
        (lambda kv: kv.secrets.set("v1", "", "x"), "1-127"),
        (lambda kv: kv.secrets.set("v1", "a" * 128, "x"), "1-127"),
        (lambda kv: kv.secrets.set("v1", "big", "x" * (25 * 1024 + 1)), "limit is 25600 bytes"),
        (
            lambda kv: kv.secrets.set("v1", "t", "x", tags={str(i): "" for i in range(16)}),
            "at most 15",
        ),
        (lambda kv: kv.secrets.set("v1", "t", "x", tags={"k": "v" * 257}), "at most 256"),
        (lambda kv: kv.secrets.set("v1", "t", "x", expires=-1), "exp must be a Unix time"),
        (lambda kv: kv.secrets.get("v1", "t", "not-a-version"), "32 lowercase hex"),
        (lambda kv: kv.secrets.list("v1", max_results=26), "maxresults must be 1-25"),
        (lambda kv: kv.secrets.list("v1", token="@@@"), "continuation token"),
        (lambda kv: kv.vaults.create("v3", retention_days=6), "7-90"),
        (lambda kv: kv.vaults.create("Bad_Vault"), "invalid vault name"),
    ],
)
async def test_bad_input_gets_a_precise_error_and_changes_nothing(
    kv: Kvault, call: object, message: str
) -> None:
    before = [row.key for row in await kv.storage.list("")]
    with pytest.raises(BadParameter, match=message):
        await call(kv)  # type: ignore[operator]
    assert [row.key for row in await kv.storage.list("")] == before


async def test_value_limit_is_configurable(kv_factory: object) -> None:
    kv = await kv_factory(max_value_bytes=10)  # type: ignore[operator]
    await kv.vaults.create("small")
    await kv.secrets.set("small", "ok", "x" * 10)
    with pytest.raises(BadParameter, match="limit is 10 bytes"):
        await kv.secrets.set("small", "no", "x" * 11)


async def test_missing_things_are_not_found(kv: Kvault) -> None:
    with pytest.raises(NotFound, match="was not found"):
        await kv.secrets.get("v1", "nope")
    with pytest.raises(NotFound):
        await kv.secrets.get("v1", "nope", "0" * 32)
    with pytest.raises(NotFound, match="vault 'nowhere'"):
        await kv.secrets.get("nowhere", "x")
    with pytest.raises(NotFound):
        await kv.secrets.delete("v1", "nope")
    with pytest.raises(NotFound):
        await kv.secrets.recover("v1", "nope")
    with pytest.raises(NotFound):
        await kv.secrets.purge("v1", "nope")
    with pytest.raises(NotFound):
        await kv.secrets.backup("v1", "nope")


async def test_data_survives_reopen(kv: Kvault, kv_factory: object) -> None:
    s = await kv.secrets.set("v1", "durable", "still-here")
    await kv.close()
    again = await kv_factory()  # type: ignore[operator]
    assert (await again.secrets.get("v1", "durable")).value == "still-here"
    assert (await again.secrets.get("v1", "durable")).properties.version == s.properties.version


async def test_every_successful_change_is_published_without_values(kv: Kvault) -> None:
    seen: list[object] = []
    unsubscribe = kv.core.changes.subscribe(seen.append)
    s = await kv.secrets.set("v1", "Feed", "value-not-in-feed")
    await kv.secrets.get("v1", "Feed")  # reads are not changes
    with pytest.raises(NotFound):
        await kv.secrets.delete("v1", "missing")  # failures are not changes
    await kv.secrets.delete("v1", "Feed")
    unsubscribe()
    await kv.secrets.recover("v1", "Feed")
    assert [(c.vault, c.operation, c.item) for c in seen] == [  # type: ignore[attr-defined]
        ("v1", "SecretSet", "Feed"),
        ("v1", "SecretDelete", "Feed"),
    ]
    assert seen[0].version == s.properties.version  # type: ignore[attr-defined]
    assert "value-not-in-feed" not in repr(seen)
