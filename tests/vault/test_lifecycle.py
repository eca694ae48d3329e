"""The items engine's lifecycle (``vault/items/lifecycle.py``) at its edges: every operation
authorised for its own item and audited with it, precise refusals, a certificate's key and
secret moving with it (and never alone), backups that carry them, paging of deleted items, and
compare-and-set against the operation that commits first (a racing write, recover or purge
never leaves a head without versions or a version unrecoverable)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kvault.app.backends import AUDIT_FILE
from kvault.errors import (
    BadParameter,
    Conflict,
    Forbidden,
    ForbiddenByRbac,
    IntegrityError,
    NotFound,
    PurgeProtected,
)
from kvault.identity.model import Principal, RoleAssignment
from kvault.vault.core import Caller
from kvault.vault.service import Kvault
from tests.fixtures.kvault import DAY, FakeClock

APP = Principal("system:serviceaccount:team-a:app", ("system:serviceaccounts",))
SELF_SIGNED = {"issuer": {"name": "Self"}, "x509_props": {"subject": "CN=web"}}


def _audit(tmp_path: Path, request_id: str) -> list[tuple[str, str, str, str]]:
    lines = [json.loads(ln) for ln in (tmp_path / "data" / AUDIT_FILE).read_text().splitlines()]
    return [
        (ln["operation"], ln["vault"], ln["item"], ln["outcome"])
        for ln in lines
        if ln["request_id"] == request_id and ln["outcome"] != "committing"
    ]


def _race(monkeypatch: pytest.MonkeyPatch, kv: Kvault, racer: Callable[[], Awaitable[Any]]) -> None:
    """Run ``racer`` (another client's operation) just before the next commit goes in."""
    store = kv.core.store
    real = store.commit
    armed = [True]

    async def commit(txn: Any) -> None:
        if armed[0]:
            armed[0] = False
            await racer()
        await real(txn)

    monkeypatch.setattr(store, "commit", commit)


# -- authorised and audited per item ---------------------------------------------------------


async def test_every_lifecycle_operation_is_audited_with_its_vault_and_item(
    kv: Kvault, tmp_path: Path
) -> None:
    await kv.vaults.update(
        "v1", role_assignments=[RoleAssignment("team-a/app", "Secrets Officer", "/")]
    )
    caller = Caller.of(APP, "req-life")
    first = await kv.secrets.set("v1", "Db", "value")
    await kv.secrets.delete("v1", "db", caller=caller)
    await kv.secrets.get_deleted("v1", "db", caller=caller)
    await kv.secrets.list_deleted("v1", caller=caller)
    await kv.secrets.recover("v1", "db", caller=caller)
    blob = await kv.secrets.backup("v1", "db", caller=caller)
    await kv.secrets.delete("v1", "db", caller=caller)
    await kv.secrets.purge("v1", "db", caller=caller)
    restored = await kv.secrets.restore("v1", blob, caller=caller)
    assert (restored.name, restored.version) == ("Db", first.properties.version)
    await kv.close()
    assert _audit(tmp_path, "req-life") == [
        ("SecretDelete", "v1", "db", "ok"),
        ("SecretGetDeleted", "v1", "db", "ok"),
        ("SecretListDeleted", "v1", "", "ok"),
        ("SecretRecover", "v1", "db", "ok"),
        ("SecretBackup", "v1", "db", "ok"),
        ("SecretDelete", "v1", "db", "ok"),
        ("SecretPurge", "v1", "db", "ok"),
        ("SecretRestore", "v1", "Db", "ok"),
    ]


async def test_an_item_scoped_officer_runs_the_lifecycle_of_its_item_only(kv: Kvault) -> None:
    for name in ("mine", "other"):
        await kv.secrets.set("v1", name, "x")
    blob = await kv.secrets.backup("v1", "other")
    await kv.vaults.update(
        "v1", role_assignments=[RoleAssignment("team-a/app", "Secrets Officer", "/secrets/mine")]
    )
    caller = Caller.of(APP, "req-scope")
    s = kv.secrets
    for call in (
        lambda: s.backup("v1", "other", caller=caller),
        lambda: s.delete("v1", "other", caller=caller),
        lambda: s.list_deleted("v1", caller=caller),  # vault-wide: no item scope reaches it
        lambda: s.restore("v1", blob, caller=caller),
    ):
        with pytest.raises(ForbiddenByRbac):
            await call()
    assert await s.backup("v1", "mine", caller=caller)
    await s.delete("v1", "mine", caller=caller)
    await s.delete("v1", "other")
    for call in (
        lambda: s.get_deleted("v1", "other", caller=caller),
        lambda: s.recover("v1", "other", caller=caller),
        lambda: s.purge("v1", "other", caller=caller),
    ):
        with pytest.raises(ForbiddenByRbac):
            await call()
    assert (await s.get_deleted("v1", "mine", caller=caller)).properties.name == "mine"
    await s.recover("v1", "mine", caller=caller)
    await s.delete("v1", "mine", caller=caller)
    await s.purge("v1", "mine", caller=caller)


async def test_a_reader_may_not_change_the_lifecycle(kv: Kvault) -> None:
    await kv.secrets.set("v1", "x", "v")
    await kv.vaults.update(
        "v1", role_assignments=[RoleAssignment("team-a/app", "Secrets User", "/")]
    )
    caller = Caller.of(APP, "req-read")
    for call in (kv.secrets.delete, kv.secrets.backup):
        with pytest.raises(ForbiddenByRbac):
            await call("v1", "x", caller=caller)
    await kv.secrets.delete("v1", "x")
    assert (await kv.secrets.get_deleted("v1", "x", caller=caller)).properties.name == "x"
    assert len((await kv.secrets.list_deleted("v1", caller=caller)).items) == 1
    for call in (kv.secrets.recover, kv.secrets.purge):
        with pytest.raises(ForbiddenByRbac):
            await call("v1", "x", caller=caller)


# -- precise refusals ----------------------------------------------------------------------------


async def test_missing_items_are_named(kv: Kvault) -> None:
    missing = "A secret with (name/id) nope was not found in this key vault."
    deleted = "Deleted secret nope was not found in this key vault."
    for call, message in (
        (kv.secrets.delete, missing),
        (kv.secrets.backup, missing),
        (kv.secrets.get_deleted, deleted),
        (kv.secrets.recover, deleted),
        (kv.secrets.purge, deleted),
    ):
        with pytest.raises(NotFound) as info:
            await call("v1", "nope")
        assert info.value.message == message


async def test_purge_protection_says_when_the_item_goes(kv: Kvault, clock: FakeClock) -> None:
    await kv.vaults.create("locked", retention_days=7, purge_protection=True)
    await kv.secrets.set("locked", "x", "y")
    await kv.secrets.delete("locked", "x")
    with pytest.raises(PurgeProtected) as info:
        await kv.secrets.purge("locked", "x")
    assert info.value.message == (
        'Operation "purge" is not allowed because purge protection is enabled for this vault. '
        "Key Vault service will automatically purge it after the retention period has passed."
    )


async def test_restore_refuses_what_is_not_a_backup_of_its_kind(kv: Kvault) -> None:
    for blob in (b"", "text", bytearray()):
        with pytest.raises(BadParameter) as empty:
            await kv.secrets.restore("v1", blob)  # type: ignore[arg-type]
        assert empty.value.message == "the backup blob is empty"
    await kv.secrets.set("v1", "s", "x")
    with pytest.raises(IntegrityError):  # a secret's backup is no key's backup
        await kv.keys.restore("v1", await kv.secrets.backup("v1", "s"))
    purpose = kv.secrets.kind.backup_purpose
    for content in (b"not json", b'{"linked": 5}', b'{"versions": []}', b'{"head": {}}'):
        blob = await kv.barrier.seal_portable(purpose, content)
        with pytest.raises(IntegrityError) as info:
            await kv.secrets.restore("v1", blob)
        # A head the codec refuses says so itself (its own "stored ... malformed" message).
        assert info.value.message.endswith("malformed"), content
        if b"head" not in content:
            assert info.value.message == "the backup blob's content is malformed", content
    blob = await kv.secrets.backup("v1", "s")
    with pytest.raises(Conflict) as taken:
        await kv.secrets.restore("v1", blob)
    assert taken.value.message == (
        "Secret s already exists (or is deleted and recoverable) in this vault; "
        "restore refuses to overwrite it"
    )


@pytest.mark.parametrize("content", [b"[]", b"5", b'"text"'])
async def test_a_backup_whose_content_is_not_an_object_is_malformed(
    kv: Kvault, content: bytes
) -> None:
    blob = await kv.barrier.seal_portable(kv.secrets.kind.backup_purpose, content)
    with pytest.raises(IntegrityError, match="the backup blob's content is malformed"):
        await kv.secrets.restore("v1", blob)


# -- a certificate's key and secret ------------------------------------------------------------


def _managed(verb: str) -> str:
    return f'Operation "{verb}" is not allowed as this object\'s lifetime is managed by Key Vault.'


async def test_a_certificates_key_and_secret_change_only_with_it(kv: Kvault) -> None:
    await kv.certificates.create("v1", "web", SELF_SIGNED)
    for kind, code in ((kv.secrets, "SecretManagedByKeyVault"), (kv.keys, "KeyManagedByKeyVault")):
        for call, verb in ((kind.delete, "delete"), (kind.backup, "backup")):
            with pytest.raises(Forbidden) as info:
                await call("v1", "web")
            assert (info.value.message, info.value.inner_code) == (_managed(verb), code)
    await kv.certificates.delete("v1", "web")
    for kind in (kv.secrets, kv.keys):
        assert (await kind.get_deleted("v1", "web")).properties.name == "web"
        for call, verb in ((kind.recover, "recover"), (kind.purge, "purge")):
            with pytest.raises(Forbidden) as info:
                await call("v1", "web")
            assert info.value.message == _managed(verb)
    await kv.certificates.recover("v1", "web")
    assert (await kv.secrets.get("v1", "web")).value
    assert (await kv.keys.get("v1", "web")).properties.name == "web"
    await kv.certificates.delete("v1", "web")
    await kv.certificates.purge("v1", "web")
    for kind in (kv.secrets, kv.keys, kv.certificates):
        with pytest.raises(NotFound):
            await kind.get_deleted("v1", "web")


async def test_a_certificate_backup_restores_its_key_and_secret(kv: Kvault) -> None:
    await kv.certificates.create("v1", "web", SELF_SIGNED)
    cert = await kv.certificates.get("v1", "web")
    secret = await kv.secrets.get("v1", "web")
    key = await kv.keys.get("v1", "web")
    blob = await kv.certificates.backup("v1", "web")
    await kv.vaults.create("v2", retention_days=7)
    restored = await kv.certificates.restore("v2", blob)
    assert restored.version == cert.properties.version
    assert (await kv.secrets.get("v2", "web")).value == secret.value
    assert (await kv.keys.get("v2", "web")).properties.version == key.properties.version
    with pytest.raises(Forbidden):  # restored as the certificate's, managed as before
        await kv.secrets.delete("v2", "web")


# -- deleted items page like the others ---------------------------------------------------------


async def test_deleted_items_are_listed_page_by_page(kv: Kvault) -> None:
    names = [f"d{i}" for i in range(5)]
    for name in names:
        await kv.secrets.set("v1", name, "x")
        await kv.secrets.delete("v1", name)
    seen, token, pages = [], None, 0
    while True:
        page = await kv.secrets.list_deleted("v1", max_results=2, token=token)
        assert len(page.items) <= 2
        seen += [d.properties.name for d in page.items]
        pages += 1
        token = page.next_token
        if token is None:
            break
    assert (seen, pages) == (names, 3)
    with pytest.raises(BadParameter):
        await kv.secrets.list_deleted("v1", max_results=26)


# -- compare-and-set against a racing client ------------------------------------------------------


async def test_a_write_racing_a_delete_is_deleted_with_it(
    kv: Kvault, monkeypatch: pytest.MonkeyPatch
) -> None:
    await kv.secrets.set("v1", "a", "first")
    newer: list[str] = []

    async def write() -> None:
        newer.append((await kv.secrets.set("v1", "a", "second")).properties.version)

    _race(monkeypatch, kv, write)
    gone = await kv.secrets.delete("v1", "a")
    assert gone.properties.version == newer[0]  # the delete read again and took it along
    await kv.secrets.recover("v1", "a")
    assert (await kv.secrets.get("v1", "a")).value == "second"


async def test_a_recover_racing_a_purge_wins_and_keeps_every_version(
    kv: Kvault, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await kv.secrets.set("v1", "a", "one")
    await kv.secrets.set("v1", "a", "two")
    await kv.secrets.delete("v1", "a")
    _race(monkeypatch, kv, lambda: kv.secrets.recover("v1", "a"))
    with pytest.raises(NotFound):  # recovered meanwhile: nothing deleted to purge
        await kv.secrets.purge("v1", "a")
    assert (await kv.secrets.get("v1", "a")).value == "two"
    assert (await kv.secrets.get("v1", "a", first.properties.version)).value == "one"


async def test_a_purge_racing_a_recover_leaves_no_head_without_versions(
    kv: Kvault, monkeypatch: pytest.MonkeyPatch
) -> None:
    await kv.secrets.set("v1", "a", "one")
    await kv.secrets.delete("v1", "a")
    _race(monkeypatch, kv, lambda: kv.secrets.purge("v1", "a"))
    with pytest.raises(NotFound):
        await kv.secrets.recover("v1", "a")
    with pytest.raises(NotFound):
        await kv.secrets.get("v1", "a")
    assert (await kv.secrets.set("v1", "a", "fresh")).value == "fresh"  # the name is free


async def test_the_expiry_pass_goes_on_past_a_purge_that_raced_it(
    kv: Kvault, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("x1", "x2"):
        await kv.secrets.set("v1", name, "x")
        await kv.secrets.delete("v1", name)
    clock.advance(30 * DAY)
    _race(monkeypatch, kv, lambda: kv.secrets.purge("v1", "x1"))
    assert await kv.secrets.purge_expired("v1") == ["x2"]
    assert (await kv.secrets.list_deleted("v1")).items == []
    await kv.close()
    lines = [json.loads(ln) for ln in (tmp_path / "data" / AUDIT_FILE).read_text().splitlines()]
    purges = [
        (ln["operation"], ln["vault"], ln["item"], ln["principal"], ln["outcome"])
        for ln in lines
        if ln["operation"] == "SecretPurge" and ln["outcome"] != "committing"
    ]
    assert purges[-1] == ("SecretPurge", "v1", "x2", "kvault", "ok")  # the pass, as kvault


async def test_the_expiry_pass_leaves_a_certificates_items_to_it(
    kv: Kvault, clock: FakeClock
) -> None:
    await kv.certificates.create("v1", "a-web", SELF_SIGNED)
    await kv.certificates.delete("v1", "a-web")
    await kv.secrets.set("v1", "z-plain", "x")
    await kv.secrets.delete("v1", "z-plain")
    clock.advance(30 * DAY)
    assert await kv.secrets.purge_expired("v1") == ["z-plain"]  # past the managed a-web
    assert [d.properties.name for d in (await kv.secrets.list_deleted("v1")).items] == ["a-web"]
    assert await kv.certificates.purge_expired("v1") == ["a-web"]
    assert (await kv.secrets.list_deleted("v1")).items == []
