"""Issuer updates (``PATCH /certificates/issuers/{name}``) in the domain, where the write-only
password can be seen: a member left out (or null) is kept, a ``credentials`` sent replaces the
account id and password together, and a refused update changes nothing."""

from __future__ import annotations

import pytest

from kvault.errors import BadParameter
from kvault.vault.service import Kvault

ISSUER = {
    "provider": "DigiCert",
    "credentials": {"account_id": "acct", "pwd": "pw"},
    "org_details": {"id": "org", "admin_details": [{"email": "a@contoso.com", "phone": ""}]},
}


async def _state(kv: Kvault) -> tuple[object, ...]:
    r = await kv.certificates.get_issuer("v1", "corp")
    return r.provider, r.account_id, r.password, r.org_id, r.admins, r.enabled


async def test_patch_keeps_what_it_leaves_out_and_replaces_parts_whole(kv: Kvault) -> None:
    made = await kv.certificates.set_issuer("v1", "corp", ISSUER)
    assert made.admins == ({"email": "a@contoso.com"},)  # an empty field is no field
    full = ("DigiCert", "acct", "pw", "org", ({"email": "a@contoso.com"},), True)
    assert await _state(kv) == full

    for kept in ({}, {"credentials": None, "org_details": None, "provider": None}):
        await kv.certificates.set_issuer("v1", "corp", kept, patch=True)
        assert await _state(kv) == full

    # A new account id alone: the password goes with the old credentials.
    await kv.certificates.set_issuer(
        "v1", "corp", {"credentials": {"account_id": "acct-2"}}, patch=True
    )
    assert await _state(kv) == ("DigiCert", "acct-2", None, *full[3:])
    await kv.certificates.set_issuer("v1", "corp", {"credentials": {"pwd": "pw-2"}}, patch=True)
    assert await _state(kv) == ("DigiCert", None, "pw-2", *full[3:])
    await kv.certificates.set_issuer(
        "v1", "corp", {"credentials": {"account_id": None, "pwd": ""}}, patch=True
    )
    assert await _state(kv) == ("DigiCert", None, None, *full[3:])

    # A refused update (one bad field) applies none of its members.
    before = await _state(kv)
    with pytest.raises(BadParameter, match=r"org_details\.admin_details"):
        await kv.certificates.set_issuer(
            "v1",
            "corp",
            {"credentials": {"account_id": "x", "pwd": "y"}, "org_details": {"admin_details": 1}},
            patch=True,
        )
    assert await _state(kv) == before


async def test_put_replaces_the_whole_issuer(kv: Kvault) -> None:
    await kv.certificates.set_issuer("v1", "corp", ISSUER)
    await kv.certificates.set_issuer("v1", "corp", {"provider": "GlobalSign"})
    assert await _state(kv) == ("GlobalSign", None, None, None, (), True)
