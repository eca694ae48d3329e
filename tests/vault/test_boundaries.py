"""The boundaries of the domain's security rules, each checked on both sides of its edge.

Issue 12's mutation run planted small bugs in these rules that the path tests let through:
an item scope matched as a prefix, purge allowed days before the retention ends, an old
disabled version readable because only the head's ``enabled`` was checked, restore writing
over a live item. Each test here fails against one of them (see docs/mutation.md).
"""

from __future__ import annotations

import pytest

from kvault.errors import Conflict, ForbiddenByRbac, ItemDisabled, NotFound, PurgeProtected
from kvault.identity.model import Principal, RoleAssignment
from kvault.vault.core import Caller
from kvault.vault.service import Kvault
from tests.fixtures.kvault import DAY, FakeClock

APP = Principal("system:serviceaccount:team-a:app", ("system:serviceaccounts",))

# -- item scopes: the name, never a prefix --------------------------------------------------


async def test_an_item_scope_covers_that_name_and_no_name_it_prefixes(kv: Kvault) -> None:
    for name in ("db", "db2", "db-admin", "d", "dbx"):
        await kv.secrets.set("v1", name, f"value-of-{name}")
    await kv.keys.create("v1", "db", "EC", crv="P-256")
    await kv.vaults.update(
        "v1", role_assignments=[RoleAssignment("team-a/app", "Administrator", "/secrets/db")]
    )
    caller = Caller.of(APP, "req-scope")
    assert (await kv.secrets.get("v1", "db", caller=caller)).value == "value-of-db"
    assert (await kv.secrets.get("v1", "DB", caller=caller)).value == "value-of-db"
    for other in ("db2", "db-admin", "d", "dbx"):
        with pytest.raises(ForbiddenByRbac):
            await kv.secrets.get("v1", other, caller=caller)
    with pytest.raises(ForbiddenByRbac):  # same name, other kind: another item
        await kv.keys.get("v1", "db", caller=caller)


# -- purge: refused until the last second of the retention ----------------------------------


async def test_purge_protection_holds_to_the_last_second_of_the_retention(
    kv: Kvault, clock: FakeClock
) -> None:
    await kv.vaults.create("locked", retention_days=7, purge_protection=True)
    await kv.secrets.set("locked", "x", "y")
    deleted_at = clock.now
    deleted = await kv.secrets.delete("locked", "x")
    assert deleted.scheduled_purge_date == deleted_at + 7 * DAY
    for day in range(1, 7):  # every day of the retention, then its last second
        clock.now = deleted_at + day * DAY
        with pytest.raises(PurgeProtected):
            await kv.secrets.purge("locked", "x")
    clock.now = deleted_at + 7 * DAY - 1
    with pytest.raises(PurgeProtected):
        await kv.secrets.purge("locked", "x")
    assert await kv.secrets.purge_expired("locked") == []
    assert (await kv.secrets.get_deleted("locked", "x")).properties.name == "x"
    clock.advance(1)  # the scheduled purge date itself: purgeable
    await kv.secrets.purge("locked", "x")
    with pytest.raises(NotFound):
        await kv.secrets.get_deleted("locked", "x")


async def test_the_expiry_pass_purges_an_item_at_its_date_not_before(
    kv: Kvault, clock: FakeClock
) -> None:
    await kv.secrets.set("v1", "old", "x")
    deleted_at = clock.now
    assert (await kv.secrets.delete("v1", "old")).scheduled_purge_date == deleted_at + 30 * DAY
    clock.now = deleted_at + 24 * DAY  # six days before the end
    assert await kv.secrets.purge_expired("v1") == []
    clock.now = deleted_at + 30 * DAY - 1
    assert await kv.secrets.purge_expired("v1") == []
    clock.advance(1)
    assert await kv.secrets.purge_expired("v1") == ["old"]


async def test_a_purge_protected_vault_holds_to_the_last_second_of_its_retention(
    kv: Kvault, clock: FakeClock
) -> None:
    await kv.vaults.create("guarded", retention_days=7, purge_protection=True)
    deleted_at = clock.now
    assert (await kv.vaults.delete("guarded")).scheduled_purge_date == deleted_at + 7 * DAY
    for offset in (DAY, 6 * DAY, 7 * DAY - 1):
        clock.now = deleted_at + offset
        with pytest.raises(PurgeProtected):
            await kv.vaults.purge("guarded")
        assert await kv.vaults.purge_expired() == []
    clock.advance(1)
    await kv.vaults.purge("guarded")
    assert await kv.vaults.find("guarded") is None


async def test_a_vault_without_purge_protection_is_purgeable_at_once(
    kv: Kvault, clock: FakeClock
) -> None:
    await kv.vaults.create("loose", retention_days=7)
    await kv.secrets.set("loose", "x", "y")
    await kv.secrets.delete("loose", "x")
    await kv.secrets.purge("loose", "x")  # no protection: the retention is only a maximum
    await kv.vaults.delete("loose")
    await kv.vaults.purge("loose")
    assert await kv.vaults.find("loose") is None


# -- enabled is per version ------------------------------------------------------------------


async def test_a_disabled_old_version_is_refused_by_id_while_the_head_is_enabled(
    kv: Kvault,
) -> None:
    old = await kv.secrets.set("v1", "api-key", "old-value")
    new = await kv.secrets.set("v1", "api-key", "new-value")
    await kv.secrets.update("v1", "api-key", old.properties.version, enabled=False)
    with pytest.raises(ItemDisabled, match="disabled"):
        await kv.secrets.get("v1", "api-key", old.properties.version)
    assert (await kv.secrets.get("v1", "api-key")).value == "new-value"
    assert (await kv.secrets.get("v1", "api-key", new.properties.version)).value == "new-value"


async def test_an_enabled_old_version_is_readable_by_id_while_the_head_is_disabled(
    kv: Kvault,
) -> None:
    old = await kv.secrets.set("v1", "api-key", "old-value")
    await kv.secrets.set("v1", "api-key", "new-value")
    await kv.secrets.update("v1", "api-key", enabled=False)  # the current version
    with pytest.raises(ItemDisabled):
        await kv.secrets.get("v1", "api-key")
    assert (await kv.secrets.get("v1", "api-key", old.properties.version)).value == "old-value"


# -- restore never writes over what is there ---------------------------------------------------


async def test_restore_refuses_a_live_item_of_other_versions_and_changes_nothing(
    kv: Kvault,
) -> None:
    await kv.secrets.set("v1", "db", "backed-up")
    blob = await kv.secrets.backup("v1", "db")
    await kv.secrets.delete("v1", "db")
    await kv.secrets.purge("v1", "db")
    live = await kv.secrets.set("v1", "DB", "live-value")  # the name again, other versions
    with pytest.raises(Conflict, match="already exists"):
        await kv.secrets.restore("v1", blob)
    assert (await kv.secrets.get("v1", "db")).value == "live-value"
    versions = (await kv.secrets.list_versions("v1", "db")).items
    assert [v.version for v in versions] == [live.properties.version]


async def test_restore_refuses_a_deleted_item_of_other_versions(kv: Kvault) -> None:
    await kv.secrets.set("v1", "db", "backed-up")
    blob = await kv.secrets.backup("v1", "db")
    await kv.secrets.delete("v1", "db")
    await kv.secrets.purge("v1", "db")
    await kv.secrets.set("v1", "db", "newer")
    await kv.secrets.delete("v1", "db")  # deleted but recoverable
    with pytest.raises(Conflict):
        await kv.secrets.restore("v1", blob)
    await kv.secrets.recover("v1", "db")
    assert (await kv.secrets.get("v1", "db")).value == "newer"
