"""The async KeyClient and CryptographyClient (aiohttp transport) against ``kvault server
--dev`` on both HSM plugins: every key type and algorithm, every operation, the errors; and an
in-process standard vault that refuses HSM key types."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.keys import (
    JsonWebKey,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
    KeyVaultKey,
)
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.keys.crypto import EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kvault.api.config import ApiConfig
from kvault.identity.model import Principal
from kvault.identity.static import StaticTokens
from kvault.vault.service import Kvault
from tests.api.conftest import AsyncStaticCredential, unique
from tests.api.keys_support import (
    ES_FOR_CURVE,
    RSA_CRYPT,
    RSA_SIGN,
    SPECS,
    KeyServer,
    Recorder,
    Spec,
    aclosing_all,
    async_crypto_client,
    async_key_client,
    async_remote_crypto,
    digest,
    key_server,
)
from tests.api.test_keys_sdk import (
    COORD,
    PRIVATE,
    check_ec_signature,
    check_rsa_signature,
    check_shape,
    ec_jwk,
    inner,
    rsa_jwk,
)

__all__ = ["key_server"]


@pytest.fixture
async def aclient(key_server: KeyServer) -> AsyncIterator[KeyClient]:
    async with async_key_client(key_server) as c:
        yield c


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def create(client: KeyClient, spec: Spec, name: str, **kwargs: Any) -> KeyVaultKey:
    if spec.base == "RSA":
        return await client.create_rsa_key(
            name, size=spec.size, hardware_protected=spec.hsm, **kwargs
        )
    if spec.base == "EC":
        return await client.create_ec_key(
            name, curve=spec.crv, hardware_protected=spec.hsm, **kwargs
        )
    return await client.create_oct_key(name, size=spec.size, hardware_protected=spec.hsm, **kwargs)


# -- the exercise of one key, async ------------------------------------------------------------


async def exercise_rsa(server: KeyServer, key: KeyVaultKey, rec: Recorder) -> None:
    local = async_crypto_client(server, key, rec)
    remote = async_remote_crypto(server, key, rec)
    async with aclosing_all(local, remote):
        for alg in RSA_CRYPT:
            text, cek = os.urandom(24), os.urandom(32)
            rec.clear()
            sealed = await local.encrypt(EncryptionAlgorithm(alg), text)
            wrapped = await local.wrap_key(KeyWrapAlgorithm(alg), cek)
            assert not rec.sent("encrypt") and not rec.sent("wrapkey"), alg  # done locally
            assert (await local.decrypt(EncryptionAlgorithm(alg), sealed.ciphertext)).plaintext == (
                text
            )
            assert (await local.unwrap_key(KeyWrapAlgorithm(alg), wrapped.encrypted_key)).key == cek
            assert rec.sent("decrypt") and rec.sent("unwrapkey")
            rec.clear()
            sealed = await remote.encrypt(EncryptionAlgorithm(alg), text)
            wrapped = await remote.wrap_key(KeyWrapAlgorithm(alg), cek)
            assert rec.sent("encrypt") and rec.sent("wrapkey")
            assert (
                await remote.decrypt(EncryptionAlgorithm(alg), sealed.ciphertext)
            ).plaintext == (text)
            assert (
                await remote.unwrap_key(KeyWrapAlgorithm(alg), wrapped.encrypted_key)
            ).key == cek
        for alg in RSA_SIGN:
            d = digest(alg)
            signed = await local.sign(SignatureAlgorithm(alg), d)
            check_rsa_signature(key, alg, d, signed.signature)
            rec.clear()
            assert (await local.verify(SignatureAlgorithm(alg), d, signed.signature)).is_valid
            assert not rec.sent("verify")
            assert (await remote.verify(SignatureAlgorithm(alg), d, signed.signature)).is_valid
            assert rec.sent("verify")
            bad = signed.signature[:-1] + bytes([signed.signature[-1] ^ 1])
            assert not (await local.verify(SignatureAlgorithm(alg), d, bad)).is_valid
            assert not (await remote.verify(SignatureAlgorithm(alg), d, bad)).is_valid


async def exercise_ec(server: KeyServer, key: KeyVaultKey, rec: Recorder) -> None:
    local = async_crypto_client(server, key, rec)
    remote = async_remote_crypto(server, key, rec)
    alg = ES_FOR_CURVE[key.key.crv]
    d = digest(alg)
    async with aclosing_all(local, remote):
        signed = await local.sign(SignatureAlgorithm(alg), d)
        assert len(signed.signature) == 2 * COORD[key.key.crv]
        check_ec_signature(key, alg, d, signed.signature)
        rec.clear()
        assert (await local.verify(SignatureAlgorithm(alg), d, signed.signature)).is_valid
        assert not rec.sent("verify")
        assert (await remote.verify(SignatureAlgorithm(alg), d, signed.signature)).is_valid
        assert rec.sent("verify")
        bad = signed.signature[:-1] + bytes([signed.signature[-1] ^ 1])
        assert not (await local.verify(SignatureAlgorithm(alg), d, bad)).is_valid
        assert not (await remote.verify(SignatureAlgorithm(alg), d, bad)).is_valid


async def exercise_oct(server: KeyServer, key: KeyVaultKey, size: int, rec: Recorder) -> None:
    remote = async_remote_crypto(server, key, rec)  # the oct quirk: see keys_support
    async with aclosing_all(remote):
        text, aad = os.urandom(33), b"aad"
        gcm = EncryptionAlgorithm(f"A{size}GCM")
        sealed = await remote.encrypt(gcm, text, additional_authenticated_data=aad)
        opened = await remote.decrypt(
            gcm,
            sealed.ciphertext,
            iv=sealed.iv,
            authentication_tag=sealed.tag,
            additional_authenticated_data=aad,
        )
        assert opened.plaintext == text
        for alg, data in ((f"A{size}CBC", os.urandom(48)), (f"A{size}CBCPAD", text)):
            iv = os.urandom(16)
            sealed = await remote.encrypt(EncryptionAlgorithm(alg), data, iv=iv)
            assert len(sealed.ciphertext) % 16 == 0 and sealed.iv == iv
            opened = await remote.decrypt(EncryptionAlgorithm(alg), sealed.ciphertext, iv=iv)
            assert opened.plaintext == data, alg
        for alg, cek in (
            (f"A{size}KW", os.urandom(32)),
            ("CKM_AES_KEY_WRAP", os.urandom(16)),
            ("CKM_AES_KEY_WRAP_PAD", os.urandom(13)),
        ):
            rec.clear()
            wrapped = await remote.wrap_key(KeyWrapAlgorithm(alg), cek)
            assert rec.sent("wrapkey")
            assert (
                await remote.unwrap_key(KeyWrapAlgorithm(alg), wrapped.encrypted_key)
            ).key == cek


async def exercise(server: KeyServer, key: KeyVaultKey, spec: Spec, rec: Recorder) -> None:
    if spec.base == "RSA":
        await exercise_rsa(server, key, rec)
    elif spec.base == "EC":
        await exercise_ec(server, key, rec)
    else:
        assert spec.size is not None
        await exercise_oct(server, key, spec.size, rec)


# -- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
async def test_every_key_type(
    aclient: KeyClient, key_server: KeyServer, recorder: Recorder, spec: Spec
) -> None:
    name = unique("aio")
    key = await create(aclient, spec, name)
    check_shape(key_server, key, spec, name)
    await exercise(key_server, key, spec, recorder)


@pytest.mark.parametrize("hsm", [False, True], ids=["software", "hsm"])
async def test_import(
    aclient: KeyClient, key_server: KeyServer, recorder: Recorder, hsm: bool
) -> None:
    rsa_key = await aclient.import_key(
        unique("aimp"),
        rsa_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        hardware_protected=hsm,
    )
    assert rsa_key.key_type == ("RSA-HSM" if hsm else "RSA")
    ec_key = await aclient.import_key(
        unique("aimp"),
        ec_jwk(ec.generate_private_key(ec.SECP521R1()), "P-521"),
        hardware_protected=hsm,
    )
    assert (ec_key.key_type, ec_key.key.crv) == ("EC-HSM" if hsm else "EC", "P-521")
    oct_key = await aclient.import_key(
        unique("aimp"), JsonWebKey(kty="oct", k=os.urandom(24)), hardware_protected=hsm
    )
    assert oct_key.key_type == ("oct-HSM" if hsm else "oct")
    for key in (rsa_key, ec_key, oct_key):
        for member in PRIVATE:
            assert getattr(key.key, member) is None
    await exercise_rsa(key_server, rsa_key, recorder)
    await exercise_ec(key_server, ec_key, recorder)
    await exercise_oct(key_server, oct_key, 192, recorder)


async def test_every_operation(
    aclient: KeyClient, key_server: KeyServer, recorder: Recorder
) -> None:
    name = unique("aio")
    spec = Spec("EC-HSM", crv="P-384")
    first = await create(aclient, spec, name)
    second = await create(aclient, spec, name, tags={"a": "b"})
    assert (await aclient.get_key(name)).id == second.id
    assert (await aclient.get_key(name, first.properties.version)).key.x == first.key.x
    for _ in range(3):
        await create(aclient, spec, name)
    pages = [
        [p.version async for p in page]
        async for page in aclient.list_properties_of_key_versions(name, max_page_size=2).by_page()
    ]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert name in [p.name async for p in aclient.list_properties_of_keys(max_page_size=3)]

    now = datetime.now(UTC).replace(microsecond=0)
    updated = await aclient.update_key_properties(
        name,
        not_before=now - timedelta(hours=1),
        expires_on=now + timedelta(days=10),
        key_operations=["sign", "verify"],
        tags={"c": "d"},
    )
    assert updated.properties.tags == {"c": "d"} and updated.key_operations == ["sign", "verify"]
    assert updated.properties.expires_on == now + timedelta(days=10)

    policy = await aclient.update_key_rotation_policy(
        name,
        KeyRotationPolicy(
            expires_in="P90D",
            lifetime_actions=[
                KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_before_expiry="P30D")
            ],
        ),
    )
    assert policy.expires_in == "P90D"
    got = await aclient.get_key_rotation_policy(name)
    actions = [
        (a.action.lower(), a.time_after_create, a.time_before_expiry) for a in got.lifetime_actions
    ]
    assert ("rotate", None, "P30D") in actions
    rotated = await aclient.rotate_key(name)
    assert rotated.key.crv == "P-384" and rotated.key_type == "EC-HSM"
    assert rotated.key_operations == ["sign", "verify"]
    assert rotated.properties.expires_on is not None
    assert abs(rotated.properties.expires_on - (now + timedelta(days=90))) < timedelta(days=1)
    await exercise_ec(key_server, rotated, recorder)

    blob = await aclient.backup_key(name)
    deleted = await aclient.delete_key(name)
    assert deleted.recovery_id == f"{key_server.endpoint}/deletedkeys/{name}"
    assert (await aclient.get_deleted_key(name)).name == name
    assert name in [d.name async for d in aclient.list_deleted_keys(max_page_size=1)]
    with pytest.raises(ResourceExistsError):
        await create(aclient, spec, name)
    recovered = await aclient.recover_deleted_key(name)
    assert recovered.id == rotated.id
    await exercise_ec(key_server, recovered, recorder)

    await aclient.delete_key(name)
    await aclient.purge_deleted_key(name)
    with pytest.raises(ResourceNotFoundError):
        await aclient.get_deleted_key(name)
    try:
        restored = await aclient.restore_key_backup(blob)
    except HttpResponseError as e:  # see test_keys_sdk.test_backup_restore
        assert key_server.kind == "pkcs11" and e.status_code is not None, e.message
        assert 400 <= e.status_code < 500, e.message
    else:
        assert restored.id == rotated.id
        await exercise_ec(key_server, restored, recorder)

    assert len(await aclient.get_random_bytes(16)) == 16


async def test_errors(aclient: KeyClient, key_server: KeyServer) -> None:
    name = unique("aerr")
    key = await aclient.create_rsa_key(name, hardware_protected=True, key_operations=["sign"])
    remote = async_remote_crypto(key_server, key)
    ordinary = async_crypto_client(key_server, key)
    async with aclosing_all(remote, ordinary):
        for c in (remote, ordinary):
            with pytest.raises(HttpResponseError) as err:
                await c.encrypt(EncryptionAlgorithm.rsa_oaep_256, b"x")
            assert inner(err) == (403, "Forbidden", "KeyOperationForbidden")
            with pytest.raises(HttpResponseError) as err:
                await c.verify(SignatureAlgorithm.rs256, digest("RS256"), b"\0" * 256)
            assert inner(err) == (403, "Forbidden", "KeyOperationForbidden")
        assert (await remote.sign(SignatureAlgorithm.rs256, digest("RS256"))).signature

        now = datetime.now(UTC).replace(microsecond=0)
        await aclient.update_key_properties(name, not_before=now + timedelta(days=1))
        with pytest.raises(HttpResponseError) as err:
            await remote.sign(SignatureAlgorithm.rs256, digest("RS256"))
        assert inner(err)[0::2] == (403, "KeyNotYetValid")
        await aclient.update_key_properties(
            name, not_before=now - timedelta(days=2), expires_on=now - timedelta(days=1)
        )
        with pytest.raises(HttpResponseError) as err:
            await remote.sign(SignatureAlgorithm.rs256, digest("RS256"))
        assert inner(err)[0::2] == (403, "KeyExpired")
        disabled = await aclient.update_key_properties(
            name, expires_on=now + timedelta(days=1), enabled=False
        )
        assert disabled.properties.enabled is False
        with pytest.raises(HttpResponseError) as err:
            await remote.sign(SignatureAlgorithm.rs256, digest("RS256"))
        assert inner(err)[0::2] == (403, "KeyDisabled")

    missing = unique("amissing")
    with pytest.raises(ResourceNotFoundError) as err:
        await aclient.get_key(missing)
    assert inner(err)[:2] == (404, "KeyNotFound")
    ghost = async_crypto_client(key_server, f"{key_server.endpoint}/keys/{missing}/{'b' * 32}")
    async with aclosing_all(ghost):
        with pytest.raises(ResourceNotFoundError) as err:
            await ghost.decrypt(EncryptionAlgorithm.rsa_oaep, b"\0" * 256)
        assert inner(err)[:2] == (404, "KeyNotFound")


# -- a standard vault (in process) ------------------------------------------------------------


async def test_standard_vault_refuses_hsm_key_types(domain: Kvault, local_server: Any) -> None:
    """HSM-protected key types need a premium vault (Azure: 400 BadParameter); nothing is
    created, and software keys work on the same vault."""
    await domain.vaults.create("std", retention_days=7)  # sku standard
    tokens = StaticTokens({"root-token": Principal("root", superuser=True)})
    server = await local_server(ApiConfig(domain, tokens, default_vault="std"))
    client = KeyClient(
        server.url,
        AsyncStaticCredential("root-token"),
        verify_challenge_resource=False,
        connection_verify=server.ca_file,
        retry_total=0,
    )
    async with client:
        name = unique("std")
        hsm_jwk = ec_jwk(ec.generate_private_key(ec.SECP256R1()), "P-256")
        hsm_jwk.kty = "EC-HSM"
        for make in (
            lambda: client.create_rsa_key(name, hardware_protected=True),
            lambda: client.create_ec_key(name, hardware_protected=True),
            lambda: client.create_oct_key(name, hardware_protected=True),
            lambda: client.create_key(name, "RSA-HSM", size=3072),
            lambda: client.import_key(
                name, rsa_jwk(rsa.generate_private_key(65537, 2048)), hardware_protected=True
            ),
            lambda: client.import_key(name, hsm_jwk),
        ):
            with pytest.raises(HttpResponseError) as err:
                await make()
            assert inner(err)[:2] == (400, "BadParameter")
            assert "premium" in (err.value.error.message or "")
            with pytest.raises(ResourceNotFoundError):
                await client.get_key(name)
        key = await client.create_rsa_key(name)
        assert key.key_type == "RSA"
        assert [p.version async for p in client.list_properties_of_key_versions(name)] == [
            key.properties.version
        ]
