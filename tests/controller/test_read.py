"""Reading a VaultSecret's plan through the sources, as its ServiceAccount, against a real
kvault (SQLite, software HSM): granted reads, dataFrom, denials before any read, and kinds
without a source. The whole projection runs against a real cluster in e2e/tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kvault.app.backends import AUDIT_FILE, open_kvault
from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import plan_of
from kvault.controller.vaultsecret.read import read
from kvault.hsm.registry import load
from kvault.identity.model import RoleAssignment
from kvault.vault.service import Kvault

SU = "Key Vault Secrets User"


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[Kvault]:
    kv = await open_kvault(
        tmp_path / "data", load("software", {"key_file": str(tmp_path / "root.key")})
    )
    roles = [
        RoleAssignment("team-a/app", SU, "/"),
        RoleAssignment("team-a/one", SU, "/secrets/db-password"),
        # Lists every secret (readMetadata) but may read the value of one only.
        RoleAssignment("team-a/lister", "Key Vault Reader", "/"),
        RoleAssignment("team-a/lister", SU, "/secrets/db-password"),
    ]
    await kv.vaults.create("main.team-a", retention_days=7, role_assignments=roles)
    await kv.secrets.set("main.team-a", "db-password", "pw-1")
    await kv.secrets.set("main.team-a", "app-token", "tok-1")
    await kv.secrets.set("main.team-a", "other", "o-1", tags={"team": "blue"})
    yield kv
    await kv.close()


def _plan(sa: str, **spec: Any) -> Any:
    body = {
        "metadata": {"namespace": "team-a", "name": "vs", "uid": "u"},
        "spec": {"vaultRef": {"name": "main"}, "serviceAccountName": sa, **spec},
    }
    return plan_of(body, 0)


async def test_data_and_data_from_are_read_with_their_versions(kv: Kvault) -> None:
    plan = _plan(
        "app",
        data=[{"secretKey": "password", "remoteRef": {"name": "db-password"}}],
        dataFrom=[{"prefix": "app-"}, {"tag": {"name": "team", "value": "blue"}}],
    )
    values, versions = await read(kv, plan)
    assert values == {"password": "pw-1", "app-token": "tok-1", "other": "o-1"}
    assert set(versions) == set(values) and all(len(v) == 32 for v in versions.values())


async def test_a_denied_item_refuses_the_whole_projection(kv: Kvault) -> None:
    plan = _plan(
        "one",
        data=[
            {"secretKey": "a", "remoteRef": {"name": "db-password"}},
            {"secretKey": "b", "remoteRef": {"name": "app-token"}},
        ],
    )
    with pytest.raises(Refused) as refused:
        await read(kv, plan)
    assert refused.value.reason == "Forbidden" and refused.value.drop
    assert "'app-token'" in refused.value.message and "tok-1" not in refused.value.message
    with pytest.raises(Refused, match="the list of secrets"):
        await read(kv, _plan("one", dataFrom=[{"prefix": ""}]))


async def test_items_found_by_data_from_are_each_authorised_before_any_is_read(
    kv: Kvault, tmp_path: Path
) -> None:
    """The per-item check (read.py) covers what dataFrom finds, not only ``data``: an
    identity that may list the secrets but read one of them gets ``Forbidden``, and nothing
    is read, not even the item it may read (the domain would refuse each unread value too,
    but only the controller's check refuses before the first read)."""
    audit = tmp_path / "data" / AUDIT_FILE
    before = len(audit.read_text().splitlines())
    plan = _plan("lister", dataFrom=[{"prefix": ""}])
    with pytest.raises(Refused) as refused:
        await read(kv, plan)
    assert refused.value.reason == "Forbidden" and refused.value.drop
    assert "may not read secret 'app-token'" in refused.value.message
    assert "tok-1" not in refused.value.message
    lines = [json.loads(ln) for ln in audit.read_text().splitlines()[before:]]
    assert [(ln["operation"], ln["item"], ln["outcome"]) for ln in lines] == [
        ("SecretList", "", "ok"),
        ("SecretGet", "app-token", "ForbiddenByRbac"),  # listed first; nothing was read
    ]
    assert {ln["principal"] for ln in lines} == {"system:serviceaccount:team-a:lister"}
    # The item it may read, named alone: projected.
    values, _ = await read(
        kv, _plan("lister", data=[{"secretKey": "pw", "remoteRef": {"name": "db-password"}}])
    )
    assert values == {"pw": "pw-1"}


async def test_missing_items_vaults_and_unknown_kinds_keep_the_secret(kv: Kvault) -> None:
    cases = [
        (_plan("app", data=[{"secretKey": "x", "remoteRef": {"name": "gone"}}]), "ItemNotFound"),
        (_plan("app", vaultRef={"name": "nope"}), "VaultNotFound"),
        (
            _plan(
                "app",
                data=[{"secretKey": "c", "remoteRef": {"name": "c", "kind": "Bogus"}}],
            ),
            "Error",
        ),
    ]
    for plan, reason in cases:
        with pytest.raises(Refused) as refused:
            await read(kv, plan)
        assert refused.value.reason == reason and not refused.value.drop
    with pytest.raises(
        Refused,
        match=r"remoteRef.kind Bogus is not supported yet \(only Certificate, Key, Secret\)",
    ):
        await read(kv, cases[2][0])
