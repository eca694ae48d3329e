"""Projecting a key's public part (``remoteRef.kind: Key``) through the sources, as the
VaultSecret's ServiceAccount, against a real kvault (SQLite, software HSM): PEM and JWK, never
private material, oct refused, denials before any read, and a rotation followed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kvault.app.backends import AUDIT_FILE, open_kvault
from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import plan_of
from kvault.controller.vaultsecret.read import read
from kvault.crypto.jwk import public_key
from kvault.hsm.registry import load
from kvault.identity.model import RoleAssignment
from kvault.vault.model import Key
from kvault.vault.service import Kvault

VAULT = "main.team-a"


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[Kvault]:
    kv = await open_kvault(
        tmp_path / "data", load("software", {"key_file": str(tmp_path / "root.key")})
    )
    roles = [
        RoleAssignment("team-a/app", "Key Vault Crypto User", "/"),
        RoleAssignment("team-a/one", "Key Vault Crypto User", "/keys/signer"),
        RoleAssignment("team-a/secrets", "Key Vault Secrets User", "/"),
    ]
    await kv.vaults.create(VAULT, retention_days=7, role_assignments=roles)
    yield kv
    await kv.close()


def _plan(sa: str, *refs: dict[str, Any]) -> Any:
    body = {
        "metadata": {"namespace": "team-a", "name": "vs", "uid": "u"},
        "spec": {
            "vaultRef": {"name": "main"},
            "serviceAccountName": sa,
            "data": [
                {"secretKey": r.pop("secretKey"), "remoteRef": {"kind": "Key", **r}} for r in refs
            ],
        },
    }
    return plan_of(body, 0)


def _same_public(pem: str, key: Key) -> bool:
    loaded = serialization.load_pem_public_key(pem.encode())
    expected = public_key(key.public)
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return loaded.public_bytes(*raw) == expected.public_bytes(*raw)


async def test_rsa_and_ec_keys_project_as_pem_of_the_same_public_key(kv: Kvault) -> None:
    rsa_key = await kv.keys.create(VAULT, "wrapper", "RSA", size=2048)
    ec_key = await kv.keys.create(VAULT, "signer", "EC", crv="P-384")
    plan = _plan(
        "app",
        {"secretKey": "wrap.pem", "name": "wrapper"},
        {"secretKey": "sign.pem", "name": "signer", "format": "PEM"},
    )
    values, versions = await read(kv, plan)
    assert values["wrap.pem"].startswith("-----BEGIN PUBLIC KEY-----\n")
    assert "PRIVATE" not in values["wrap.pem"] + values["sign.pem"]
    assert _same_public(values["wrap.pem"], rsa_key) and _same_public(values["sign.pem"], ec_key)
    assert isinstance(
        serialization.load_pem_public_key(values["wrap.pem"].encode()), rsa.RSAPublicKey
    )
    loaded = serialization.load_pem_public_key(values["sign.pem"].encode())
    assert isinstance(loaded, ec.EllipticCurvePublicKey) and loaded.curve.name == "secp384r1"
    assert versions == {
        "wrap.pem": rsa_key.properties.version,
        "sign.pem": ec_key.properties.version,
    }


async def test_jwk_format_holds_the_public_members_only(kv: Kvault) -> None:
    ec_key = await kv.keys.create(VAULT, "signer", "EC", crv="P-256")
    rsa_key = await kv.keys.create(VAULT, "wrapper", "RSA", size=2048)
    plan = _plan(
        "app",
        {"secretKey": "ec.jwk", "name": "signer", "format": "JWK"},
        {"secretKey": "rsa.jwk", "name": "wrapper", "format": "JWK"},
    )
    values, _ = await read(kv, plan)
    ec_jwk, rsa_jwk = json.loads(values["ec.jwk"]), json.loads(values["rsa.jwk"])
    assert ec_jwk == {k: ec_key.public[k] for k in ("crv", "x", "y")} | {"kty": "EC"}
    assert rsa_jwk == {k: rsa_key.public[k] for k in ("n", "e")} | {"kty": "RSA"}
    assert values["ec.jwk"] == json.dumps(ec_jwk, sort_keys=True, separators=(",", ":"))


async def test_an_oct_key_has_no_public_part_and_is_refused(kv: Kvault) -> None:
    await kv.keys.create(VAULT, "aes", "oct", size=256)
    with pytest.raises(Refused) as refused:
        await read(kv, _plan("app", {"secretKey": "k", "name": "aes"}))
    assert refused.value.reason == "Error" and not refused.value.drop
    assert "an oct key has no public part" in refused.value.message


async def test_a_bad_format_and_a_missing_key_keep_the_secret(kv: Kvault) -> None:
    await kv.keys.create(VAULT, "signer", "EC", crv="P-256")
    with pytest.raises(Refused, match=r"data\[k\]\.remoteRef\.format must be one of PEM, JWK"):
        await read(kv, _plan("app", {"secretKey": "k", "name": "signer", "format": "DER"}))
    with pytest.raises(Refused) as refused:
        await read(kv, _plan("app", {"secretKey": "k", "name": "gone"}))
    assert refused.value.reason == "ItemNotFound" and not refused.value.drop
    assert "key 'gone' was not found" in refused.value.message


async def test_an_identity_without_key_get_is_refused_before_anything_is_read(
    kv: Kvault, tmp_path: Path
) -> None:
    await kv.keys.create(VAULT, "signer", "EC", crv="P-256")
    await kv.keys.create(VAULT, "other", "EC", crv="P-256")
    lines_before = len((tmp_path / "data" / AUDIT_FILE).read_text().splitlines())
    cases = (
        _plan("secrets", {"secretKey": "a", "name": "signer"}),  # no keys/read at all
        _plan(  # an item scope covers that key only
            "one", {"secretKey": "a", "name": "signer"}, {"secretKey": "b", "name": "other"}
        ),
    )
    for plan in cases:
        with pytest.raises(Refused) as refused:
            await read(kv, plan)
        assert refused.value.reason == "Forbidden" and refused.value.drop
        assert "may not read key " in refused.value.message
        assert "keys/read" in refused.value.message
    lines = [
        json.loads(line)
        for line in (tmp_path / "data" / AUDIT_FILE).read_text().splitlines()[lines_before:]
    ]
    assert [(ln["operation"], ln["item"], ln["outcome"]) for ln in lines] == [
        ("KeyGet", "signer", "ForbiddenByRbac"),  # refused at the first: nothing read
        ("KeyGet", "other", "ForbiddenByRbac"),  # "signer" allowed, "other" refused: none read
    ]


async def test_the_projection_follows_a_rotation(kv: Kvault) -> None:
    first = await kv.keys.create(VAULT, "signer", "EC", crv="P-256")
    plan = _plan("app", {"secretKey": "pub.pem", "name": "signer"})
    before, versions = await read(kv, plan)
    assert versions["pub.pem"] == first.properties.version

    rotated = await kv.keys.rotate(VAULT, "signer")
    after, versions = await read(kv, plan)
    assert versions["pub.pem"] == rotated.properties.version != first.properties.version
    assert after["pub.pem"] != before["pub.pem"] and _same_public(after["pub.pem"], rotated)

    pinned = _plan(
        "one", {"secretKey": "pub.pem", "name": "signer", "version": first.properties.version}
    )
    old, versions = await read(kv, pinned)  # a fixed version stays where it is
    assert old == before and versions["pub.pem"] == first.properties.version
