"""The domain authorises item operations itself and audits the decision, allowed or denied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvault.app.backends import AUDIT_FILE
from kvault.errors import ForbiddenByRbac
from kvault.identity.model import Principal, RoleAssignment
from kvault.vault.core import Caller
from kvault.vault.service import Kvault

APP = Principal("system:serviceaccount:team-a:app", ("system:serviceaccounts",))


def _lines(tmp_path: Path) -> list[dict[str, str]]:
    text = (tmp_path / "data" / AUDIT_FILE).read_text()
    return [json.loads(line) for line in text.splitlines()]


async def test_an_identity_without_a_role_is_refused_and_audited(
    kv: Kvault, tmp_path: Path
) -> None:
    await kv.secrets.set("v1", "pw", "hunter2-value")
    caller = Caller.of(APP, "req-1")
    with pytest.raises(ForbiddenByRbac):
        await kv.secrets.get("v1", "pw", caller=caller)
    with pytest.raises(ForbiddenByRbac):
        await kv.secrets.list("v1", caller=caller)
    await kv.close()
    denied = [(ln["operation"], ln["item"], ln["outcome"]) for ln in _lines(tmp_path)[-2:]]
    assert denied == [("SecretGet", "pw", "ForbiddenByRbac"), ("SecretList", "", "ForbiddenByRbac")]
    assert _lines(tmp_path)[-1]["principal"] == APP.name


async def test_an_item_scoped_role_allows_that_item_only(kv: Kvault) -> None:
    await kv.secrets.set("v1", "pw", "one")
    await kv.secrets.set("v1", "other", "two")
    await kv.vaults.update(
        "v1", role_assignments=[RoleAssignment("team-a/app", "Secrets User", "/secrets/pw")]
    )
    caller = Caller.of(APP, "req-2")
    assert (await kv.secrets.get("v1", "PW", caller=caller)).value == "one"
    with pytest.raises(ForbiddenByRbac):
        await kv.secrets.get("v1", "other", caller=caller)
    with pytest.raises(ForbiddenByRbac):  # an item scope never covers listings
        await kv.secrets.list("v1", caller=caller)


async def test_the_pre_check_refuses_before_input_is_read_and_audits(
    kv: Kvault, tmp_path: Path
) -> None:
    vault = await kv.vault("v1")
    caller = Caller.of(APP, "req-3")
    with pytest.raises(ForbiddenByRbac):
        kv.authorize(caller, vault, "SecretSet", "pw")
    kv.authorize(Caller("kvault:tool"), vault, "SecretSet", "pw")  # in-process: trusted
    await kv.close()
    last = _lines(tmp_path)[-1]
    assert (last["operation"], last["item"], last["outcome"], last["request_id"]) == (
        "SecretSet",
        "pw",
        "ForbiddenByRbac",
        "req-3",
    )
