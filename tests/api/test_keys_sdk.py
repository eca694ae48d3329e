"""The official azure-keyvault-keys KeyClient and CryptographyClient (sync) against
``kvault server --dev`` on both HSM plugins (software, pkcs11 on SoftHSM2): every key type,
every operation, every algorithm, and the SDK's local public-key operations interoperating
with kvault's server-side ones."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.keys import (
    JsonWebKey,
    KeyClient,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
    KeyVaultKey,
)
from azure.keyvault.keys.crypto import (
    EncryptionAlgorithm,
    KeyWrapAlgorithm,
    SignatureAlgorithm,
)
from cryptography.hazmat.primitives import hashes, keywrap
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.api.conftest import unique
from tests.api.keys_support import (
    ES_FOR_CURVE,
    HASHES,
    RSA_CRYPT,
    RSA_SIGN,
    SPECS,
    KeyServer,
    Recorder,
    Spec,
    crypto_client,
    digest,
    key_client,
    key_server,
    remote_crypto,
)

__all__ = ["key_server"]  # the module-scoped fixture, one dev server per plugin

HEX32 = re.compile(r"[0-9a-f]{32}")
PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "k")
DEFAULT_OPS = {
    "RSA": ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"],
    "EC": ["sign", "verify"],
}
COORD = {"P-256": 32, "P-256K": 32, "P-384": 48, "P-521": 66}
CURVES = {
    "P-256": ec.SECP256R1(),
    "P-256K": ec.SECP256K1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


@pytest.fixture(scope="module")
def client(key_server: KeyServer) -> Any:
    with key_client(key_server) as c:
        yield c


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def create(client: KeyClient, spec: Spec, name: str | None = None, **kwargs: Any) -> KeyVaultKey:
    """``spec`` through the SDK's typed helpers (``hardware_protected`` for ``-HSM``)."""
    name = name or unique("k")
    if spec.base == "RSA":
        return client.create_rsa_key(name, size=spec.size, hardware_protected=spec.hsm, **kwargs)
    if spec.base == "EC":
        return client.create_ec_key(name, curve=spec.crv, hardware_protected=spec.hsm, **kwargs)
    return client.create_oct_key(name, size=spec.size, hardware_protected=spec.hsm, **kwargs)


def inner(err: pytest.ExceptionInfo[HttpResponseError]) -> tuple[int | None, str | None, Any]:
    """(status, error code, innererror code) of an SDK error."""
    e = err.value
    code = e.error.code if e.error is not None else None
    innererror = e.error.innererror if e.error is not None else {}
    return e.status_code, code, (innererror or {}).get("code")


# -- independent checks with `cryptography` ----------------------------------------------------


def rsa_public(key: KeyVaultKey) -> rsa.RSAPublicKey:
    n, e = (int.from_bytes(v, "big") for v in (key.key.n, key.key.e))
    return rsa.RSAPublicNumbers(e, n).public_key()


def ec_public(key: KeyVaultKey) -> ec.EllipticCurvePublicKey:
    x, y = (int.from_bytes(v, "big") for v in (key.key.x, key.key.y))
    return ec.EllipticCurvePublicNumbers(x, y, CURVES[key.key.crv]).public_key()


def check_rsa_signature(key: KeyVaultKey, alg: str, d: bytes, signature: bytes) -> None:
    """Standard PKCS#1 v1.5 / PSS (salt = digest length) over a prehashed digest."""
    h = HASHES[alg]
    pad: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
        if alg.startswith("PS")
        else padding.PKCS1v15()
    )
    rsa_public(key).verify(signature, d, pad, utils.Prehashed(h))


def check_ec_signature(key: KeyVaultKey, alg: str, d: bytes, signature: bytes) -> None:
    """Raw fixed-width r||s, as JOSE and the SDK want."""
    width = COORD[key.key.crv]
    assert len(signature) == 2 * width
    r, s = int.from_bytes(signature[:width], "big"), int.from_bytes(signature[width:], "big")
    der = utils.encode_dss_signature(r, s)
    ec_public(key).verify(der, d, ec.ECDSA(utils.Prehashed(HASHES[alg])))


# -- the exercise of one key -------------------------------------------------------------------


def exercise_rsa(server: KeyServer, key: KeyVaultKey, rec: Recorder) -> None:
    local, remote = crypto_client(server, key, rec), remote_crypto(server, key, rec)
    width = len(key.key.n)
    with local, remote:
        for alg in RSA_CRYPT:
            plaintext = os.urandom(32)
            rec.clear()
            sealed = local.encrypt(EncryptionAlgorithm(alg), plaintext)
            assert not rec.sent("encrypt"), f"{alg}: the SDK encrypts with the public JWK"
            assert len(sealed.ciphertext) == width
            opened = local.decrypt(EncryptionAlgorithm(alg), sealed.ciphertext)
            assert rec.sent("decrypt") and opened.plaintext == plaintext, alg
            assert opened.key_id == key.id

            rec.clear()
            sealed = remote.encrypt(EncryptionAlgorithm(alg), plaintext)
            assert rec.sent("encrypt") and len(sealed.ciphertext) == width
            assert (
                remote.decrypt(EncryptionAlgorithm(alg), sealed.ciphertext).plaintext == plaintext
            )

            cek = os.urandom(32)
            rec.clear()
            wrapped = local.wrap_key(KeyWrapAlgorithm(alg), cek)
            assert not rec.sent("wrapkey"), f"{alg}: the SDK wraps with the public JWK"
            unwrapped = local.unwrap_key(KeyWrapAlgorithm(alg), wrapped.encrypted_key)
            assert rec.sent("unwrapkey") and unwrapped.key == cek, alg
            rec.clear()
            wrapped = remote.wrap_key(KeyWrapAlgorithm(alg), cek)
            assert rec.sent("wrapkey")
            assert remote.unwrap_key(KeyWrapAlgorithm(alg), wrapped.encrypted_key).key == cek

        for alg in RSA_SIGN:
            d = digest(alg)
            rec.clear()
            signed = local.sign(SignatureAlgorithm(alg), d)
            assert rec.sent("sign") and len(signed.signature) == width
            assert signed.key_id == key.id
            check_rsa_signature(key, alg, d, signed.signature)
            rec.clear()
            assert local.verify(SignatureAlgorithm(alg), d, signed.signature).is_valid
            assert not rec.sent("verify"), f"{alg}: the SDK verifies with the public JWK"
            assert remote.verify(SignatureAlgorithm(alg), d, signed.signature).is_valid
            assert rec.sent("verify")
            bad = signed.signature[:-1] + bytes([signed.signature[-1] ^ 1])
            assert not local.verify(SignatureAlgorithm(alg), d, bad).is_valid
            assert not remote.verify(SignatureAlgorithm(alg), d, bad).is_valid
            other = digest(alg, b"another message")
            assert not remote.verify(SignatureAlgorithm(alg), other, signed.signature).is_valid


def exercise_ec(server: KeyServer, key: KeyVaultKey, rec: Recorder) -> None:
    local, remote = crypto_client(server, key, rec), remote_crypto(server, key, rec)
    alg = ES_FOR_CURVE[key.key.crv]
    d = digest(alg)
    with local, remote:
        for signer in (local, remote):
            rec.clear()
            signed = signer.sign(SignatureAlgorithm(alg), d)
            assert rec.sent("sign")
            check_ec_signature(key, alg, d, signed.signature)
            rec.clear()
            assert local.verify(SignatureAlgorithm(alg), d, signed.signature).is_valid
            assert not rec.sent("verify"), f"{alg}: the SDK verifies with the public JWK"
            assert remote.verify(SignatureAlgorithm(alg), d, signed.signature).is_valid
            assert rec.sent("verify")
            bad = signed.signature[:-1] + bytes([signed.signature[-1] ^ 1])
            assert not local.verify(SignatureAlgorithm(alg), d, bad).is_valid
            assert not remote.verify(SignatureAlgorithm(alg), d, bad).is_valid


def exercise_oct(server: KeyServer, key: KeyVaultKey, size: int, rec: Recorder) -> None:
    """Everything remote (the oct quirk, see keys_support); and with the SDK's ordinary client,
    the algorithms it never runs locally (GCM, CBC, CKM_*) still go to the server."""
    remote, ordinary = remote_crypto(server, key, rec), crypto_client(server, key, rec)
    with remote, ordinary:
        for client in (remote, ordinary):
            gcm = EncryptionAlgorithm(f"A{size}GCM")
            plaintext, aad = os.urandom(45), b"associated data"
            rec.clear()
            sealed = client.encrypt(gcm, plaintext, additional_authenticated_data=aad)
            assert rec.sent("encrypt")
            assert sealed.iv is not None and len(sealed.iv) == 12
            assert sealed.tag is not None and len(sealed.tag) == 16
            assert len(sealed.ciphertext) == len(plaintext)
            opened = client.decrypt(
                gcm,
                sealed.ciphertext,
                iv=sealed.iv,
                authentication_tag=sealed.tag,
                additional_authenticated_data=aad,
            )
            assert opened.plaintext == plaintext
            with pytest.raises(HttpResponseError) as err:  # another aad: authentication fails
                client.decrypt(
                    gcm,
                    sealed.ciphertext,
                    iv=sealed.iv,
                    authentication_tag=sealed.tag,
                    additional_authenticated_data=b"other",
                )
            assert inner(err)[:2] == (400, "BadParameter")

            cbc = EncryptionAlgorithm(f"A{size}CBC")
            iv, block = os.urandom(16), os.urandom(32)
            rec.clear()
            sealed = client.encrypt(cbc, block, iv=iv)
            assert rec.sent("encrypt") and sealed.iv == iv and len(sealed.ciphertext) == 32
            assert client.decrypt(cbc, sealed.ciphertext, iv=iv).plaintext == block

            for alg in ("CKM_AES_KEY_WRAP", "CKM_AES_KEY_WRAP_PAD"):
                cek = os.urandom(24 if alg == "CKM_AES_KEY_WRAP" else 20)
                rec.clear()
                wrapped = client.wrap_key(KeyWrapAlgorithm(alg), cek)
                assert rec.sent("wrapkey") and len(wrapped.encrypted_key) in (32, 40)
                unwrapped = client.unwrap_key(KeyWrapAlgorithm(alg), wrapped.encrypted_key)
                assert unwrapped.key == cek

        cbcpad = EncryptionAlgorithm(f"A{size}CBCPAD")
        iv, text = os.urandom(16), os.urandom(21)
        rec.clear()
        sealed = remote.encrypt(cbcpad, text, iv=iv)
        assert rec.sent("encrypt") and len(sealed.ciphertext) == 32
        assert remote.decrypt(cbcpad, sealed.ciphertext, iv=iv).plaintext == text
        try:  # a cut ciphertext: bad padding (400), or by chance other bytes
            assert remote.decrypt(cbcpad, sealed.ciphertext[:16], iv=iv).plaintext != text
        except HttpResponseError as e:
            assert e.status_code == 400

        kw = KeyWrapAlgorithm(f"A{size}KW")
        cek = os.urandom(32)
        rec.clear()
        wrapped = remote.wrap_key(kw, cek)
        assert rec.sent("wrapkey") and len(wrapped.encrypted_key) == 40
        assert remote.unwrap_key(kw, wrapped.encrypted_key).key == cek
        with pytest.raises(HttpResponseError) as err:
            remote.unwrap_key(kw, wrapped.encrypted_key[:-8] + os.urandom(8))
        assert inner(err)[:2] == (400, "BadParameter")


def exercise(server: KeyServer, key: KeyVaultKey, spec: Spec, rec: Recorder) -> None:
    if spec.base == "RSA":
        exercise_rsa(server, key, rec)
    elif spec.base == "EC":
        exercise_ec(server, key, rec)
    else:
        assert spec.size is not None
        exercise_oct(server, key, spec.size, rec)


def check_shape(server: KeyServer, key: KeyVaultKey, spec: Spec, name: str) -> None:
    version = key.properties.version or ""
    assert HEX32.fullmatch(version)
    assert key.id == f"{server.endpoint}/keys/{name}/{version}"
    assert (key.name, key.properties.vault_url) == (name, server.endpoint)
    assert key.key_type == spec.kty
    assert key.properties.enabled is True
    assert key.properties.created_on is not None
    assert key.properties.recovery_level == "CustomizedRecoverable+Purgeable"
    assert key.properties.recoverable_days == 7
    for member in PRIVATE:
        assert getattr(key.key, member) is None, f"{member} must never be returned"
    if spec.base == "RSA":
        assert len(key.key.n) * 8 == spec.size and key.key.e == b"\x01\x00\x01"
        assert key.key_operations == DEFAULT_OPS["RSA"]
    elif spec.base == "EC":
        assert key.key.crv == spec.crv
        assert len(key.key.x) == len(key.key.y) == COORD[spec.crv]
        assert key.key_operations == DEFAULT_OPS["EC"]
    else:
        assert key.key.n is None and key.key.x is None
        assert {"encrypt", "decrypt", "wrapKey", "unwrapKey"} <= set(key.key_operations)


# -- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_create_and_use_every_key_type(
    client: KeyClient, key_server: KeyServer, recorder: Recorder, spec: Spec
) -> None:
    name = unique("k")
    key = create(client, spec, name)
    check_shape(key_server, key, spec, name)
    got = client.get_key(name)
    assert (got.id, got.key.n, got.key.x, got.key.crv) == (
        key.id,
        key.key.n,
        key.key.x,
        key.key.crv,
    )
    exercise(key_server, key, spec, recorder)


def test_rsa_4096_once(client: KeyClient, key_server: KeyServer, recorder: Recorder) -> None:
    """4096 is slow (worst in SoftHSM2): the software type on the software plugin, the HSM
    type on pkcs11, one sign and one decrypt each."""
    spec = Spec("RSA" if key_server.kind == "software" else "RSA-HSM", 4096)
    key = create(client, spec)
    assert len(key.key.n) == 512
    with crypto_client(key_server, key, recorder) as c:
        d = digest("PS512")
        check_rsa_signature(key, "PS512", d, c.sign(SignatureAlgorithm.ps512, d).signature)
        sealed = c.encrypt(EncryptionAlgorithm.rsa_oaep_256, b"four thousand ninety six")
        assert c.decrypt(EncryptionAlgorithm.rsa_oaep_256, sealed.ciphertext).plaintext == (
            b"four thousand ninety six"
        )


def test_create_key_defaults(client: KeyClient, key_server: KeyServer) -> None:
    """``create_key(name, kty)`` with nothing else: RSA 2048 e=65537, EC P-256 (Azure's)."""
    rsa_key = client.create_key(unique("k"), "RSA")
    assert len(rsa_key.key.n) == 256 and rsa_key.key.e == b"\x01\x00\x01"
    assert rsa_key.key_operations == DEFAULT_OPS["RSA"]
    ec_key = client.create_key(unique("k"), "EC-HSM")
    assert (ec_key.key_type, ec_key.key.crv) == ("EC-HSM", "P-256")
    oct_key = client.create_key(unique("k"), "oct-HSM")
    assert oct_key.key_type == "oct-HSM" and oct_key.key.k is None
    limited = client.create_ec_key(
        unique("k"),
        curve="P-384",
        key_operations=["sign"],
        tags={"team": "a"},
        not_before=datetime(2020, 1, 1, tzinfo=UTC),
    )
    assert limited.key_operations == ["sign"]
    assert limited.properties.tags == {"team": "a"}
    assert limited.properties.not_before == datetime(2020, 1, 1, tzinfo=UTC)


# -- import ------------------------------------------------------------------------------------


def rsa_jwk(private: rsa.RSAPrivateKey, **extra: Any) -> JsonWebKey:
    n = private.private_numbers()
    pub = n.public_numbers

    def b(v: int, width: int | None = None) -> bytes:
        return v.to_bytes(width or (v.bit_length() + 7) // 8, "big")

    return JsonWebKey(
        kty="RSA",
        n=b(pub.n),
        e=b(pub.e),
        d=b(n.d),
        p=b(n.p),
        q=b(n.q),
        dp=b(n.dmp1),
        dq=b(n.dmq1),
        qi=b(n.iqmp),
        **extra,
    )


def ec_jwk(private: ec.EllipticCurvePrivateKey, crv: str, **extra: Any) -> JsonWebKey:
    n = private.private_numbers()
    width = COORD[crv]
    return JsonWebKey(
        kty="EC",
        crv=crv,
        x=n.public_numbers.x.to_bytes(width, "big"),
        y=n.public_numbers.y.to_bytes(width, "big"),
        d=n.private_value.to_bytes(width, "big"),
        **extra,
    )


@pytest.mark.parametrize("hsm", [False, True], ids=["software", "hsm"])
def test_import_rsa(
    client: KeyClient, key_server: KeyServer, recorder: Recorder, hsm: bool
) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = unique("imp")
    key = client.import_key(name, rsa_jwk(private), hardware_protected=hsm, tags={"src": "jwk"})
    assert key.key_type == ("RSA-HSM" if hsm else "RSA")
    assert key.properties.tags == {"src": "jwk"}
    assert int.from_bytes(key.key.n, "big") == private.public_key().public_numbers().n
    for member in PRIVATE:
        assert getattr(key.key, member) is None
    exercise_rsa(key_server, key, recorder)
    # Cross-checks with the private key we hold: the server's own encrypt and sign are standard.
    with remote_crypto(key_server, key, recorder) as remote:
        oaep1 = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
        sha256 = hashes.SHA256()
        oaep256 = padding.OAEP(mgf=padding.MGF1(sha256), algorithm=sha256, label=None)
        pads = {"RSA1_5": padding.PKCS1v15(), "RSA-OAEP": oaep1, "RSA-OAEP-256": oaep256}
        for alg, pad in pads.items():
            sealed = remote.encrypt(EncryptionAlgorithm(alg), b"server side")
            assert private.decrypt(sealed.ciphertext, pad) == b"server side"
            mine = private.public_key().encrypt(b"client side", pad)
            assert remote.decrypt(EncryptionAlgorithm(alg), mine).plaintext == b"client side"
            wrapped = private.public_key().encrypt(b"k" * 32, pad)
            assert remote.unwrap_key(KeyWrapAlgorithm(alg), wrapped).key == b"k" * 32
        for alg in RSA_SIGN:
            d, h = digest(alg), HASHES[alg]
            pad2: padding.AsymmetricPadding = (
                padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
                if alg.startswith("PS")
                else padding.PKCS1v15()
            )
            mine = private.sign(d, pad2, utils.Prehashed(h))
            assert remote.verify(SignatureAlgorithm(alg), d, mine).is_valid, alg


@pytest.mark.parametrize("hsm", [False, True], ids=["software", "hsm"])
@pytest.mark.parametrize("crv", list(ES_FOR_CURVE))
def test_import_ec(
    client: KeyClient, key_server: KeyServer, recorder: Recorder, crv: str, hsm: bool
) -> None:
    private = ec.generate_private_key(CURVES[crv])
    key = client.import_key(unique("imp"), ec_jwk(private, crv), hardware_protected=hsm)
    assert (key.key_type, key.key.crv) == ("EC-HSM" if hsm else "EC", crv)
    assert key.key.d is None
    exercise_ec(key_server, key, recorder)
    alg = ES_FOR_CURVE[crv]
    d = digest(alg)
    der = private.sign(d, ec.ECDSA(utils.Prehashed(HASHES[alg])))
    r, s = utils.decode_dss_signature(der)
    raw = r.to_bytes(COORD[crv], "big") + s.to_bytes(COORD[crv], "big")
    with remote_crypto(key_server, key, recorder) as remote:
        assert remote.verify(SignatureAlgorithm(alg), d, raw).is_valid
        assert not remote.verify(SignatureAlgorithm(alg), d, der).is_valid  # DER is not JOSE


@pytest.mark.parametrize("hsm", [False, True], ids=["software", "hsm"])
@pytest.mark.parametrize("size", [128, 192, 256])
def test_import_oct(
    client: KeyClient, key_server: KeyServer, recorder: Recorder, size: int, hsm: bool
) -> None:
    secret = os.urandom(size // 8)
    key = client.import_key(unique("imp"), JsonWebKey(kty="oct", k=secret), hardware_protected=hsm)
    assert key.key_type == ("oct-HSM" if hsm else "oct") and key.key.k is None
    exercise_oct(key_server, key, size, recorder)
    with remote_crypto(key_server, key, recorder) as remote:
        sealed = remote.encrypt(EncryptionAlgorithm(f"A{size}GCM"), b"gcm text")
        assert (
            AESGCM(secret).decrypt(sealed.iv, sealed.ciphertext + sealed.tag, None) == b"gcm text"
        )
        iv = os.urandom(16)
        enc = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
        mine = enc.update(b"sixteen byte blk") + enc.finalize()
        opened = remote.decrypt(EncryptionAlgorithm(f"A{size}CBC"), mine, iv=iv)
        assert opened.plaintext == b"sixteen byte blk"
        wrapped = remote.wrap_key(KeyWrapAlgorithm(f"A{size}KW"), b"c" * 32)
        assert keywrap.aes_key_unwrap(secret, wrapped.encrypted_key) == b"c" * 32
        padded = keywrap.aes_key_wrap_with_padding(secret, b"odd length")
        unwrapped = remote.unwrap_key(KeyWrapAlgorithm.ckm_aes_key_wrap_pad, padded)
        assert unwrapped.key == b"odd length"


def test_import_keeps_key_ops_and_overwrites_with_a_new_version(client: KeyClient) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    name = unique("imp")
    first = client.create_ec_key(name)
    key = client.import_key(name, ec_jwk(private, "P-256", key_ops=["verify"]))
    assert key.key_operations == ["verify"]
    assert key.properties.version != first.properties.version
    versions = {p.version for p in client.list_properties_of_key_versions(name)}
    assert versions == {first.properties.version, key.properties.version}


# -- the oct quirk, as it is -------------------------------------------------------------------


def test_oct_quirk_the_sdk_encrypts_cbcpad_locally_with_a_random_key(
    client: KeyClient, key_server: KeyServer, recorder: Recorder
) -> None:
    """Documents the SDK bug of note §0.5 (not a server fault): with ``encrypt``/``wrapKey`` in
    ``key_ops``, the ordinary client encrypts A256CBCPAD and wraps A256KW locally with a random
    key, so the server (which has the real key) cannot open the result. Users must use GCM,
    CBC or CKM_* with oct keys, or a client like keys_support.remote_crypto."""
    key = client.create_oct_key(unique("quirk"), size=256)
    with (
        crypto_client(key_server, key, recorder) as ordinary,
        remote_crypto(key_server, key) as remote,
    ):
        iv = os.urandom(16)
        recorder.clear()
        sealed = ordinary.encrypt(EncryptionAlgorithm.a256_cbcpad, b"x" * 20, iv=iv)
        wrapped = ordinary.wrap_key(KeyWrapAlgorithm.aes_256, b"c" * 32)
        assert not recorder.sent("encrypt") and not recorder.sent("wrapkey")
        try:
            opened = remote.decrypt(EncryptionAlgorithm.a256_cbcpad, sealed.ciphertext, iv=iv)
            assert opened.plaintext != b"x" * 20  # wrong key: garbage that happens to unpad
        except HttpResponseError as e:
            assert e.status_code == 400
        with pytest.raises(HttpResponseError) as err:
            remote.unwrap_key(KeyWrapAlgorithm.aes_256, wrapped.encrypted_key)
        assert inner(err)[:2] == (400, "BadParameter")


# -- versions, listing, properties -------------------------------------------------------------


def test_get_by_version_and_list_versions_across_pages(
    client: KeyClient, key_server: KeyServer
) -> None:
    name = unique("ver")
    made = [client.create_ec_key(name, curve="P-256") for _ in range(27)]
    versions = [k.properties.version for k in made]
    latest = client.get_key(name)
    assert latest.properties.version == versions[-1]
    old = client.get_key(name, versions[0])
    assert (old.id, old.key.x) == (made[0].id, made[0].key.x)
    pages = list(client.list_properties_of_key_versions(name).by_page())
    assert [len(list(p)) for p in pages] == [25, 2]  # Azure's page size
    small = list(client.list_properties_of_key_versions(name, max_page_size=10).by_page())
    listed = [p.version for page in small for p in page]
    assert len(small) == 3 and sorted(listed) == sorted(versions)
    item = next(iter(client.list_properties_of_key_versions(name)))
    assert item.id == f"{key_server.endpoint}/keys/{name}/{item.version}"
    with pytest.raises(ResourceNotFoundError) as err:
        client.get_key(name, "0" * 32)
    assert inner(err)[:2] == (404, "KeyNotFound")


def test_list_keys(client: KeyClient, key_server: KeyServer) -> None:
    names = sorted(unique("lst") for _ in range(5))
    for n in names:
        client.create_ec_key(n, tags={"set": "list"})
    pages = list(client.list_properties_of_keys(max_page_size=2).by_page())
    listed = [p.name for page in pages for p in page]
    assert set(names) <= set(listed) and len(listed) == len(set(listed))
    assert len(pages) >= 3
    item = next(p for p in client.list_properties_of_keys() if p.name == names[0])
    assert item.id == f"{key_server.endpoint}/keys/{names[0]}" and item.version is None
    assert item.tags == {"set": "list"} and item.enabled is True


def test_update_properties(client: KeyClient, key_server: KeyServer, recorder: Recorder) -> None:
    name = unique("upd")
    key = client.create_rsa_key(name, hardware_protected=True)
    nbf = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    exp = nbf + timedelta(days=30)
    props = client.update_key_properties(
        name,
        key.properties.version,
        not_before=nbf,
        expires_on=exp,
        key_operations=["sign", "verify"],
        tags={"k": "v"},
    )
    assert (props.properties.not_before, props.properties.expires_on) == (nbf, exp)
    assert props.properties.tags == {"k": "v"}
    assert props.properties.version == key.properties.version
    got = client.get_key(name)
    assert got.key_operations == ["sign", "verify"]
    assert (got.properties.not_before, got.properties.expires_on) == (nbf, exp)
    assert got.key.n == key.key.n  # material never changes

    restricted = client.get_key(name)
    with (
        crypto_client(key_server, restricted, recorder) as ordinary,
        remote_crypto(key_server, restricted) as remote,
    ):
        d = digest("RS256")
        assert ordinary.verify(
            SignatureAlgorithm.rs256, d, ordinary.sign(SignatureAlgorithm.rs256, d).signature
        ).is_valid
        for c in (ordinary, remote):  # the ordinary one tries locally, is refused, asks
            with pytest.raises(HttpResponseError) as err:
                c.encrypt(EncryptionAlgorithm.rsa_oaep, b"no")
            assert inner(err) == (403, "Forbidden", "KeyOperationForbidden")
            with pytest.raises(HttpResponseError) as err:
                c.unwrap_key(KeyWrapAlgorithm.rsa_oaep, b"\0" * 256)
            assert inner(err) == (403, "Forbidden", "KeyOperationForbidden")

    # Azure answers the PATCH that disables a key with the updated bundle (200).
    disabled = client.update_key_properties(name, enabled=False)
    assert disabled.properties.enabled is False and disabled.key.n == key.key.n
    with remote_crypto(key_server, restricted) as remote:
        with pytest.raises(HttpResponseError) as err:
            remote.sign(SignatureAlgorithm.rs256, digest("RS256"))
        assert inner(err)[0::2] == (403, "KeyDisabled")
    with pytest.raises(HttpResponseError) as err:
        client.get_key(name)
    assert inner(err)[0::2] == (403, "KeyDisabled")
    props = client.update_key_properties(name, enabled=True, key_operations=DEFAULT_OPS["RSA"])
    assert props.properties.enabled is True and props.key_operations == DEFAULT_OPS["RSA"]


def test_validity_window_is_enforced(client: KeyClient, key_server: KeyServer) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    name = unique("valid")
    key = client.create_ec_key(name, curve="P-256", hardware_protected=True)
    d = digest("ES256")
    with remote_crypto(key_server, key) as remote:
        client.update_key_properties(name, not_before=now + timedelta(days=1))
        with pytest.raises(HttpResponseError) as err:
            remote.sign(SignatureAlgorithm.es256, d)
        assert inner(err)[0::2] == (403, "KeyNotYetValid")
        client.update_key_properties(name, not_before=now - timedelta(days=2))
        client.update_key_properties(name, expires_on=now - timedelta(days=1))
        with pytest.raises(HttpResponseError) as err:
            remote.sign(SignatureAlgorithm.es256, d)
        assert inner(err)[0::2] == (403, "KeyExpired")
        client.update_key_properties(name, expires_on=now + timedelta(days=1))
        assert remote.sign(SignatureAlgorithm.es256, d).signature


def test_missing_key(client: KeyClient, key_server: KeyServer) -> None:
    name = unique("missing")
    for call in (
        lambda: client.get_key(name),
        lambda: client.update_key_properties(name, enabled=False),
        lambda: client.backup_key(name),
        lambda: client.rotate_key(name),
        lambda: client.get_key_rotation_policy(name),
        lambda: client.begin_delete_key(name),
    ):
        with pytest.raises(ResourceNotFoundError) as err:
            call()
        assert inner(err)[:2] == (404, "KeyNotFound")
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_key(name)
    with pytest.raises(ResourceNotFoundError):
        client.purge_deleted_key(name)
    kid = f"{key_server.endpoint}/keys/{name}/{'a' * 32}"
    with crypto_client(key_server, kid) as c:
        with pytest.raises(ResourceNotFoundError) as err:
            c.sign(SignatureAlgorithm.es256, digest("ES256"))
        assert inner(err)[:2] == (404, "KeyNotFound")


# -- lifecycle ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [Spec("RSA", 2048), Spec("EC-HSM", crv="P-256"), Spec("oct-HSM", 256)],
    ids=lambda s: s.id,
)
def test_delete_recover_purge(
    client: KeyClient, key_server: KeyServer, recorder: Recorder, spec: Spec
) -> None:
    name = unique("del")
    key = create(client, spec, name)
    deleted = client.begin_delete_key(name).result()
    assert (
        deleted.name == name and deleted.recovery_id == f"{key_server.endpoint}/deletedkeys/{name}"
    )
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=7)
    assert deleted.key.n == key.key.n and deleted.key.x == key.key.x
    with pytest.raises(ResourceNotFoundError):
        client.get_key(name)
    again = client.get_deleted_key(name)
    assert (again.recovery_id, again.id) == (deleted.recovery_id, key.id)
    assert name in [d.name for d in client.list_deleted_keys(max_page_size=1)]
    with pytest.raises(ResourceExistsError):
        create(client, spec, name)

    recovered = client.begin_recover_deleted_key(name).result()
    assert recovered.id == key.id and recovered.key_type == spec.kty
    exercise(key_server, recovered, spec, recorder)  # the HSM object survived soft delete

    client.begin_delete_key(name).wait()
    client.purge_deleted_key(name)
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_key(name)
    fresh = create(client, spec, name)
    assert fresh.properties.version != key.properties.version


@pytest.mark.parametrize(
    "spec",
    [Spec("RSA-HSM", 2048), Spec("EC-HSM", crv="P-256"), Spec("EC", crv="P-384"), Spec("oct", 128)],
    ids=lambda s: s.id,
)
def test_backup_restore(
    client: KeyClient, key_server: KeyServer, recorder: Recorder, spec: Spec
) -> None:
    """Restore after purge gives back every version, usable. The one acceptable exception:
    an HSM key on pkcs11, whose non-extractable token object purge destroyed, may be refused
    (4xx, nothing restored); a restored key that then fails every private operation is not."""
    name = unique("bak")
    v1 = create(client, spec, name)
    v2 = create(client, spec, name, tags={"t": "1"})
    blob = client.backup_key(name)
    assert isinstance(blob, bytes)
    with pytest.raises(ResourceExistsError):
        client.restore_key_backup(blob)
    with pytest.raises(HttpResponseError) as err:
        client.restore_key_backup(blob[:-4] + b"abcd")
    assert inner(err)[:2] == (400, "BadParameter")
    client.begin_delete_key(name).wait()
    client.purge_deleted_key(name)

    try:
        restored = client.restore_key_backup(blob)
    except HttpResponseError as e:
        assert spec.hsm and key_server.kind == "pkcs11", f"restore refused: {e.message}"
        assert e.status_code is not None and 400 <= e.status_code < 500, e.message
        with pytest.raises(ResourceNotFoundError):
            client.get_key(name)  # nothing half-restored
        return
    assert (restored.name, restored.properties.version) == (name, v2.properties.version)
    assert restored.properties.tags == {"t": "1"} and restored.key_type == spec.kty
    assert client.get_key(name, v1.properties.version).key.x == v1.key.x
    exercise(key_server, restored, spec, recorder)
    exercise(key_server, client.get_key(name, v1.properties.version), spec, recorder)


def test_rotate_and_rotation_policy(
    client: KeyClient, key_server: KeyServer, recorder: Recorder
) -> None:
    name = unique("rot")
    key = client.create_rsa_key(
        name, size=3072, hardware_protected=True, key_operations=["sign", "verify"]
    )
    empty = client.get_key_rotation_policy(name)
    assert empty.lifetime_actions == [] and empty.expires_in is None

    policy = KeyRotationPolicy(
        expires_in="P2Y",
        lifetime_actions=[
            KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P90D"),
            KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_before_expiry="P30D"),
        ],
    )
    updated = client.update_key_rotation_policy(name, policy)
    assert updated.id == f"{key_server.endpoint}/keys/{name}/rotationpolicy"
    assert updated.expires_in == "P2Y"
    got = client.get_key_rotation_policy(name)
    actions = {
        (a.action.lower(), a.time_after_create, a.time_before_expiry) for a in got.lifetime_actions
    }
    assert actions == {("rotate", "P90D", None), ("notify", None, "P30D")}
    assert got.created_on is not None and got.updated_on is not None

    before = datetime.now(UTC)
    rotated = client.rotate_key(name)
    assert rotated.properties.version != key.properties.version
    assert (rotated.key_type, len(rotated.key.n), rotated.key.e) == ("RSA-HSM", 384, key.key.e)
    assert rotated.key_operations == ["sign", "verify"]
    assert rotated.key.n != key.key.n
    assert rotated.properties.expires_on is not None
    expected = before + timedelta(days=730)
    assert abs(rotated.properties.expires_on - expected) < timedelta(days=2)
    assert client.get_key(name).properties.version == rotated.properties.version
    versions = {p.version for p in client.list_properties_of_key_versions(name)}
    assert versions == {key.properties.version, rotated.properties.version}
    exercise_rsa_sign_only(key_server, rotated, recorder)
    exercise_rsa_sign_only(key_server, client.get_key(name, key.properties.version), recorder)

    cleared = client.update_key_rotation_policy(name, KeyRotationPolicy(lifetime_actions=[]))
    assert cleared.lifetime_actions == []


def exercise_rsa_sign_only(server: KeyServer, key: KeyVaultKey, rec: Recorder) -> None:
    with crypto_client(server, key, rec) as c:
        d = digest("PS256")
        signed = c.sign(SignatureAlgorithm.ps256, d)
        check_rsa_signature(key, "PS256", d, signed.signature)
        assert signed.key_id == key.id


def test_get_random_bytes(client: KeyClient) -> None:
    first, second = client.get_random_bytes(32), client.get_random_bytes(32)
    assert len(first) == len(second) == 32 and first != second
    assert len(client.get_random_bytes(1)) == 1
    assert len(client.get_random_bytes(128)) == 128
    with pytest.raises(HttpResponseError) as err:  # the SDK itself refuses 0
        client.get_random_bytes(129)
    assert inner(err)[:2] == (400, "BadParameter")
