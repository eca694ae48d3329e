"""HSM-held keys (premium vaults), run against every plugin (``hsm_kind`` is parametrised).

Interop is checked against :mod:`kvault.crypto.keys`, the software implementation: what the
HSM signs verifies there on the public JWK, what it encrypts decrypts here, and back.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kvault.crypto import jwk as jwklib
from kvault.crypto import keys as jose
from kvault.crypto.keys import JoseError, OctKey
from kvault.errors import HSMError, IntegrityError
from kvault.hsm import HSM, HsmKeys, held_keys
from kvault.hsm import _p11mech as p11mech
from kvault.hsm import _p11ops as p11ops
from kvault.hsm._softkeys import SoftwareKeys
from tests.fixtures.softhsm import HSMFactory, SoftHSMEnv, SoftHSMToken

RSA_SIGN = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "RSNULL")
RSA_CRYPT = ("RSA1_5", "RSA-OAEP", "RSA-OAEP-256")
ES_FOR = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "P-256K": "ES256K"}
COORD = {"P-256": 32, "P-384": 48, "P-521": 66, "P-256K": 32}
AES_MODES = ("GCM", "CBC", "CBCPAD")


def label() -> str:
    return f"kvault-key-test-{uuid.uuid4().hex}"


def keys_of(hsm: HSM) -> HsmKeys:
    found = held_keys(hsm)
    assert found is not None
    return found


@pytest.fixture
def keys(hsm: HSM) -> HsmKeys:
    return keys_of(hsm)


@pytest.fixture(scope="module")
def known_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def digest_for(alg: str) -> bytes:
    return os.urandom(jose.DIGEST_BYTES.get(alg, 20))  # RSNULL: any short value


# -- create and the public JWK ------------------------------------------------------------


async def test_plugins_offer_held_keys(hsm: HSM) -> None:
    assert isinstance(keys_of(hsm), HsmKeys)
    assert held_keys(object()) is None


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521", "P-256K"])
async def test_create_ec(keys: HsmKeys, crv: str) -> None:
    handle, jwk = await keys.create_key(label(), "EC", crv=crv)
    assert set(jwk) == {"kty", "crv", "x", "y"}
    assert (jwk["kty"], jwk["crv"]) == ("EC", crv)
    assert len(jwklib.unb64url(jwk["x"])) == len(jwklib.unb64url(jwk["y"])) == COORD[crv]
    public = jose.public_from_jwk(jwk)
    assert jose.public_jwk(public) == jwk  # the same encoding crypto.keys gives
    alg = ES_FOR[crv]
    digest = digest_for(alg)
    signature = await keys.sign(handle, alg, digest)
    assert len(signature) == 2 * COORD[crv]  # raw r || s, fixed width
    assert jose.verify(public, alg, digest, signature)
    assert not jose.verify(public, alg, digest_for(alg), signature)


@pytest.mark.parametrize("size", [128, 192, 256])
async def test_create_oct_and_round_trip(keys: HsmKeys, size: int) -> None:
    handle, jwk = await keys.create_key(label(), "oct", size=size)
    assert jwk == {"kty": "oct"}
    for mode in AES_MODES:
        alg = f"A{size}{mode}"
        plaintext = os.urandom(48)
        iv = None if mode == "GCM" else os.urandom(16)
        aad = b"context" if mode == "GCM" else None
        out = await keys.encrypt(handle, alg, plaintext, iv=iv, aad=aad)
        assert out.value != plaintext
        assert (len(out.iv or b""), len(out.tag or b"")) == ((12, 16) if mode == "GCM" else (16, 0))
        back = await keys.decrypt(handle, alg, out.value, iv=out.iv, aad=aad, tag=out.tag)
        assert back == plaintext
    cek = os.urandom(32)
    for alg in (f"A{size}KW", "CKM_AES_KEY_WRAP", "CKM_AES_KEY_WRAP_PAD"):
        assert await keys.unwrap(handle, alg, await keys.wrap(handle, alg, cek)) == cek


async def test_create_rsa_sign_decrypt_unwrap(keys: HsmKeys) -> None:
    handle, jwk = await keys.create_key(label(), "RSA", size=2048)
    assert set(jwk) == {"kty", "n", "e"} and jwk["e"] == "AQAB"
    public = jose.public_from_jwk(jwk)
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    for alg in RSA_SIGN:
        digest = digest_for(alg)
        assert jose.verify(public, alg, digest, await keys.sign(handle, alg, digest)), alg
    for alg in RSA_CRYPT:
        plaintext = os.urandom(32)
        ciphertext = jose.encrypt(public, alg, plaintext).value
        assert await keys.decrypt(handle, alg, ciphertext) == plaintext, alg
        assert await keys.unwrap(handle, alg, jose.wrap(public, alg, plaintext)) == plaintext
        # The public operations are offered too (in software, on the public key).
        own = await keys.encrypt(handle, alg, plaintext)
        assert await keys.decrypt(handle, alg, own.value) == plaintext
        assert await keys.unwrap(handle, alg, await keys.wrap(handle, alg, plaintext)) == plaintext


@pytest.mark.parametrize("size", [3072, 4096])
async def test_create_large_rsa(keys: HsmKeys, size: int) -> None:
    handle, jwk = await keys.create_key(label(), "RSA", size=size)
    public = jose.public_from_jwk(jwk)
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == size
    digest = digest_for("PS512")
    assert jose.verify(public, "PS512", digest, await keys.sign(handle, "PS512", digest))
    ciphertext = jose.encrypt(public, "RSA-OAEP-256", b"secret").value
    assert await keys.decrypt(handle, "RSA-OAEP-256", ciphertext) == b"secret"


async def test_rsa_public_exponent_3(keys: HsmKeys) -> None:
    _, jwk = await keys.create_key(label(), "RSA", public_exponent=3)
    assert jwk["e"] == "Aw"


# -- import -------------------------------------------------------------------------------


async def test_import_rsa(keys: HsmKeys, known_rsa: rsa.RSAPrivateKey) -> None:
    handle, jwk = await keys.import_key(label(), known_rsa)
    assert jwk == jose.public_jwk(known_rsa)
    for alg in RSA_SIGN:
        digest = digest_for(alg)
        signature = await keys.sign(handle, alg, digest)
        assert jose.verify(known_rsa.public_key(), alg, digest, signature), alg
        if not alg.startswith("PS"):  # PKCS#1 v1.5 is deterministic: byte-identical
            assert signature == jose.sign(known_rsa, alg, digest)
    for alg in RSA_CRYPT:
        ciphertext = jose.encrypt(known_rsa, alg, b"hello").value
        assert await keys.decrypt(handle, alg, ciphertext) == b"hello"


@pytest.mark.parametrize("crv", ["P-256", "P-521", "P-256K"])
async def test_import_ec(keys: HsmKeys, crv: str) -> None:
    known = ec.generate_private_key(jwklib.CURVES[crv]())
    handle, jwk = await keys.import_key(label(), known)
    assert jwk == jose.public_jwk(known)
    alg = ES_FOR[crv]
    digest = digest_for(alg)
    assert jose.verify(known.public_key(), alg, digest, await keys.sign(handle, alg, digest))


@pytest.mark.parametrize("size", [128, 192, 256])
async def test_imported_oct_interoperates(keys: HsmKeys, size: int) -> None:
    known = OctKey(os.urandom(size // 8))
    handle, jwk = await keys.import_key(label(), known)
    assert jwk == {"kty": "oct"}
    for mode in AES_MODES:
        alg = f"A{size}{mode}"
        plaintext = os.urandom(33) if mode != "CBC" else os.urandom(32)
        iv = None if mode == "GCM" else os.urandom(16)
        aad = os.urandom(5) if mode == "GCM" else None
        theirs = jose.encrypt(known, alg, plaintext, iv=iv, aad=aad)
        ours = await keys.encrypt(handle, alg, plaintext, iv=theirs.iv, aad=aad)
        assert ours == theirs, alg  # same key, iv and input: byte-identical
        assert await keys.decrypt(handle, alg, theirs.value, iv=theirs.iv, aad=aad, tag=theirs.tag)
        assert jose.decrypt(known, alg, ours.value, iv=ours.iv, aad=aad, tag=ours.tag) == plaintext
    for alg in (f"A{size}KW", "CKM_AES_KEY_WRAP"):
        cek = os.urandom(24)
        assert await keys.wrap(handle, alg, cek) == jose.wrap(known, alg, cek)
        assert await keys.unwrap(handle, alg, jose.wrap(known, alg, cek)) == cek


@pytest.mark.parametrize("length", [1, 7, 8, 9, 20, 31, 32, 33, 64])
async def test_key_wrap_with_padding_interoperates(keys: HsmKeys, length: int) -> None:
    """RFC 5649 for every length class (SoftHSM2's own wrap is wrong for 20, 33...)."""
    known = OctKey(os.urandom(32))
    handle, _ = await keys.import_key(label(), known)
    cek = os.urandom(length)
    wrapped = await keys.wrap(handle, "CKM_AES_KEY_WRAP_PAD", cek)
    assert wrapped == keywrap.aes_key_wrap_with_padding(known.secret, cek)
    assert await keys.unwrap(handle, "CKM_AES_KEY_WRAP_PAD", wrapped) == cek


# -- lifecycle ------------------------------------------------------------------------------


async def test_handle_survives_restart(
    hsm_kind: str, hsm_factory: HSMFactory, tmp_path: Path
) -> None:
    first = hsm_factory(hsm_kind, tmp_path)
    await first.open()
    ec_handle, ec_jwk = await keys_of(first).create_key(label(), "EC", crv="P-384")
    oct_handle, _ = await keys_of(first).import_key(label(), OctKey(b"k" * 16))
    await first.rotate()  # root rotation does not strand held keys
    await first.close()

    again = hsm_factory(hsm_kind, tmp_path)
    await again.open()
    digest = digest_for("ES384")
    signature = await keys_of(again).sign(ec_handle, "ES384", digest)
    assert jose.verify(jose.public_from_jwk(ec_jwk), "ES384", digest, signature)
    ct = jose.encrypt(OctKey(b"k" * 16), "A128GCM", b"data")
    assert await keys_of(again).decrypt(oct_handle, "A128GCM", ct.value, iv=ct.iv, tag=ct.tag)
    await again.close()


async def test_destroy(hsm_kind: str, keys: HsmKeys) -> None:
    handle, _ = await keys.create_key(label(), "EC")
    await keys.sign(handle, "ES256", digest_for("ES256"))
    await keys.destroy(handle)
    await keys.destroy(handle)  # idempotent
    if hsm_kind == "pkcs11":
        with pytest.raises(HSMError, match="is not in token"):
            await keys.sign(handle, "ES256", digest_for("ES256"))
    # software: deleting the (sealed) handle is what destroys the key; nothing to assert.


async def test_duplicate_label_refused_on_pkcs11(hsm_kind: str, keys: HsmKeys) -> None:
    name = label()
    await keys.create_key(name, "oct")
    if hsm_kind == "pkcs11":
        with pytest.raises(HSMError, match="already holds a key"):
            await keys.create_key(name, "oct")
    else:
        await keys.create_key(name, "oct")  # handles are independent blobs


async def test_unopened_plugin_refuses(
    hsm_kind: str, hsm_factory: HSMFactory, tmp_path: Path
) -> None:
    plugin = hsm_factory(hsm_kind, tmp_path)
    with pytest.raises(HSMError, match="not open"):
        await keys_of(plugin).create_key(label(), "EC")


async def test_concurrent_operations(keys: HsmKeys) -> None:
    handle, jwk = await keys.create_key(label(), "EC")
    public = jose.public_from_jwk(jwk)
    oct_handle, _ = await keys.create_key(label(), "oct")

    async def one(i: int) -> None:
        digest = digest_for("ES256")
        assert jose.verify(public, "ES256", digest, await keys.sign(handle, "ES256", digest))
        out = await keys.encrypt(oct_handle, "A256GCM", str(i).encode())
        back = await keys.decrypt(oct_handle, "A256GCM", out.value, iv=out.iv, tag=out.tag)
        assert back == str(i).encode()

    def in_thread(t: int) -> None:
        async def many() -> None:
            await asyncio.gather(*(one(1000 * t + i) for i in range(30)))

        asyncio.run(many())

    await asyncio.gather(
        *(one(i) for i in range(100)), *(asyncio.to_thread(in_thread, t) for t in range(3))
    )


# -- refusals -------------------------------------------------------------------------------


async def test_bad_algorithms_are_jose_errors(keys: HsmKeys) -> None:
    ec_handle, _ = await keys.create_key(label(), "EC", crv="P-256")
    oct_handle, _ = await keys.create_key(label(), "oct", size=256)
    refusals: list[tuple[Callable[[], Awaitable[object]], str]] = [
        (lambda: keys.sign(ec_handle, "RS256", digest_for("RS256")), "not valid for an EC key"),
        (lambda: keys.sign(ec_handle, "ES384", digest_for("ES384")), "needs a P-384 key"),
        (lambda: keys.sign(ec_handle, "ES256", b"short"), "digest must be 32 bytes"),
        (lambda: keys.sign(ec_handle, "HS256", digest_for("ES256")), "not supported"),
        (lambda: keys.sign(oct_handle, "ES256", digest_for("ES256")), "not valid for an oct key"),
        (lambda: keys.decrypt(ec_handle, "RSA-OAEP", b"x" * 64), "not valid for an EC key"),
        (lambda: keys.encrypt(ec_handle, "A256GCM", b"x"), "not valid for an EC key"),
        (lambda: keys.wrap(ec_handle, "RSA-OAEP", b"x" * 16), "not valid for an EC key"),
        (lambda: keys.encrypt(oct_handle, "A128GCM", b"x"), "needs a 128-bit key"),
        (lambda: keys.encrypt(oct_handle, "A256CBC", b"x" * 16), "iv is required"),
        (lambda: keys.encrypt(oct_handle, "A256CBC", b"x" * 15, iv=b"i" * 16), "multiple of 16"),
        (lambda: keys.encrypt(oct_handle, "A256CBC", b"x" * 16, iv=b"i" * 16, aad=b"a"), "aad"),
        (lambda: keys.encrypt(oct_handle, "A256GCM", b"x", iv=b"short"), "iv must be 12 bytes"),
        (lambda: keys.encrypt(oct_handle, "A256KW", b"x" * 16), "not valid for encrypt"),
        (lambda: keys.decrypt(oct_handle, "A256GCM", b"x", iv=b"i" * 12), "tag is required"),
        (lambda: keys.decrypt(oct_handle, "A256CBC", b"x" * 15, iv=b"i" * 16), "multiple of 16"),
        (lambda: keys.wrap(oct_handle, "A256KW", b"x" * 20), "multiple of 8 bytes"),
        (lambda: keys.wrap(oct_handle, "CKM_AES_KEY_WRAP_PAD", b""), "must not be empty"),
        (lambda: keys.wrap(oct_handle, "A256GCM", b"x" * 16), "not valid for wrapKey"),
        (lambda: keys.unwrap(oct_handle, "A256GCM", b"x" * 24), "not valid for unwrapKey"),
        (lambda: keys.create_key(label(), "RSA", size=1024), "key_size 1024 is not supported"),
        (lambda: keys.create_key(label(), "RSA", public_exponent=5), "public_exponent 5"),
        (lambda: keys.create_key(label(), "EC", crv="P-192"), "not supported"),
        (lambda: keys.create_key(label(), "EC", size=256), "key_size is not valid"),
        (lambda: keys.create_key(label(), "oct", size=512), "key_size 512 is not supported"),
        (lambda: keys.create_key(label(), "DSA"), "not supported"),
    ]
    for call, message in refusals:
        with pytest.raises(JoseError, match=message):
            await call()


async def test_bad_ciphertext_is_one_jose_error(
    keys: HsmKeys, known_rsa: rsa.RSAPrivateKey
) -> None:
    rsa_handle, _ = await keys.import_key(label(), known_rsa)
    known_oct = OctKey(os.urandom(32))
    oct_handle, _ = await keys.import_key(label(), known_oct)
    for alg in ("RSA-OAEP", "RSA-OAEP-256"):
        ct = bytearray(jose.encrypt(known_rsa, alg, b"hello").value)
        ct[5] ^= 1
        with pytest.raises(JoseError, match="could not be decrypted"):
            await keys.decrypt(rsa_handle, alg, bytes(ct))
        with pytest.raises(JoseError, match="could not be unwrapped"):
            await keys.unwrap(rsa_handle, alg, bytes(ct))
    with pytest.raises(JoseError, match="could not be decrypted"):
        await keys.decrypt(rsa_handle, "RSA-OAEP", b"short")
    out = await keys.encrypt(oct_handle, "A256GCM", b"data", aad=b"a")
    with pytest.raises(JoseError, match="could not be decrypted"):
        await keys.decrypt(oct_handle, "A256GCM", out.value, iv=out.iv, aad=b"b", tag=out.tag)
    # A last block ending in 0x00 is never valid PKCS#7 padding.
    unpadded = jose.encrypt(known_oct, "A256CBC", os.urandom(31) + b"\0", iv=b"i" * 16)
    with pytest.raises(JoseError, match="could not be decrypted"):
        await keys.decrypt(oct_handle, "A256CBCPAD", unpadded.value, iv=unpadded.iv)
    with pytest.raises(JoseError, match="could not be unwrapped"):
        await keys.unwrap(oct_handle, "A256KW", os.urandom(40))
    with pytest.raises(JoseError, match="could not be unwrapped"):
        await keys.unwrap(oct_handle, "CKM_AES_KEY_WRAP_PAD", os.urandom(24))


async def test_foreign_handles_are_integrity_errors(
    hsm_factory: HSMFactory, tmp_path: Path
) -> None:
    software = hsm_factory("software", tmp_path / "s")
    pkcs11 = hsm_factory("pkcs11", tmp_path / "p")
    await software.open()
    await pkcs11.open()
    soft_handle, _ = await keys_of(software).create_key(label(), "EC")
    p11_handle, _ = await keys_of(pkcs11).create_key(label(), "EC")
    digest = digest_for("ES256")
    for plugin, foreign in ((pkcs11, soft_handle), (software, p11_handle), (software, b"junk")):
        with pytest.raises(IntegrityError, match="handle"):
            await keys_of(plugin).sign(foreign, "ES256", digest)


# -- pkcs11 only: what the token really holds ---------------------------------------------

# Runs in a separate process: an independent look at the token's objects by label.
INSPECT = textwrap.dedent(
    """
    import json, sys
    import pkcs11
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.exceptions import AttributeSensitive
    module, token_label, pin, labels = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    token = pkcs11.lib(module).get_token(token_label=token_label)
    out = {}
    flags = (Attribute.TOKEN, Attribute.PRIVATE, Attribute.SENSITIVE, Attribute.EXTRACTABLE,
             Attribute.ALWAYS_SENSITIVE, Attribute.NEVER_EXTRACTABLE)
    with token.open(user_pin=pin) as s:
        for label in labels:
            found = out[label] = {}
            for obj in s.get_objects({Attribute.LABEL: label}):
                cls = obj[Attribute.CLASS]
                if cls == ObjectClass.PUBLIC_KEY:
                    found["public"] = {"TOKEN": bool(obj[Attribute.TOKEN])}
                    continue
                attrs = {a.name: bool(obj[a]) for a in flags}
                secret = (Attribute.PRIVATE_EXPONENT if obj.key_type.name == "RSA"
                          else Attribute.VALUE)
                try:
                    obj[secret]
                    attrs["secret_readable"] = True
                except AttributeSensitive:
                    attrs["secret_readable"] = False
                found["private"] = attrs
    print(json.dumps(out))
    """
)

DESTROY = textwrap.dedent(
    """
    import sys
    import pkcs11
    from pkcs11 import Attribute
    module, token_label, pin, label = sys.argv[1:5]
    token = pkcs11.lib(module).get_token(token_label=token_label)
    with token.open(rw=True, user_pin=pin) as s:
        for obj in list(s.get_objects({Attribute.LABEL: label})):
            obj.destroy()
    """
)


def run_in_token(
    script: str, softhsm: SoftHSMEnv, token: SoftHSMToken, *args: str
) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", script, token.module, token.label, token.pin, *args],
        env={**os.environ, "SOFTHSM2_CONF": str(softhsm.conf)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return result


async def test_pkcs11_objects_are_sensitive_token_objects(
    softhsm: SoftHSMEnv, hsm_factory: HSMFactory, tmp_path: Path, known_rsa: rsa.RSAPrivateKey
) -> None:
    """Acceptance: an attempt to read the key's value through PKCS#11 fails."""
    plugin = hsm_factory("pkcs11", tmp_path)
    await plugin.open()
    keys = keys_of(plugin)
    made = {
        "rsa": label(),
        "ec": label(),
        "oct": label(),
        "rsa-imported": label(),
        "ec-imported": label(),
        "oct-imported": label(),
    }
    await keys.create_key(made["rsa"], "RSA")
    await keys.create_key(made["ec"], "EC", crv="P-256K")
    await keys.create_key(made["oct"], "oct")
    await keys.import_key(made["rsa-imported"], known_rsa)
    await keys.import_key(made["ec-imported"], ec.generate_private_key(ec.SECP384R1()))
    await keys.import_key(made["oct-imported"], OctKey(os.urandom(16)))
    await plugin.close()

    seen = run_in_token(INSPECT, softhsm, hsm_factory.token(tmp_path), *made.values())
    for kind, name in made.items():
        private = seen[name]["private"]
        assert private["TOKEN"] and private["PRIVATE"], kind
        assert private["SENSITIVE"] is True and private["EXTRACTABLE"] is False, kind
        assert private["secret_readable"] is False, kind
        if not kind.endswith("imported"):  # generated in the token: never out of it
            assert private["ALWAYS_SENSITIVE"] and private["NEVER_EXTRACTABLE"], kind
        if not kind.startswith("oct"):
            assert seen[name]["public"] == {"TOKEN": True}, kind


async def test_pkcs11_destroy_removes_both_halves(
    softhsm: SoftHSMEnv, hsm_factory: HSMFactory, tmp_path: Path
) -> None:
    plugin = hsm_factory("pkcs11", tmp_path)
    await plugin.open()
    name = label()
    handle, _ = await keys_of(plugin).create_key(name, "EC")
    assert handle == b"p11:" + name.encode()  # the handle names the object, nothing more
    token = hsm_factory.token(tmp_path)
    assert set(run_in_token(INSPECT, softhsm, token, name)[name]) == {"private", "public"}
    await keys_of(plugin).destroy(handle)
    assert run_in_token(INSPECT, softhsm, token, name) == {name: {}}
    with pytest.raises(HSMError, match="is not in token"):
        await keys_of(plugin).sign(handle, "ES256", digest_for("ES256"))


async def test_pkcs11_key_destroyed_by_another_process(
    softhsm: SoftHSMEnv, hsm_factory: HSMFactory, tmp_path: Path
) -> None:
    """The cached object handle goes stale: the key is looked up again, and is gone."""
    plugin = hsm_factory("pkcs11", tmp_path)
    await plugin.open()
    name = label()
    handle, _ = await keys_of(plugin).create_key(name, "EC")
    await keys_of(plugin).sign(handle, "ES256", digest_for("ES256"))  # cached now
    run_in_token(DESTROY, softhsm, hsm_factory.token(tmp_path), name)
    with pytest.raises(HSMError, match="is not in token"):
        await keys_of(plugin).sign(handle, "ES256", digest_for("ES256"))


async def test_pkcs11_handles_address_only_held_keys(
    hsm_factory: HSMFactory, tmp_path: Path
) -> None:
    """A forged handle naming a root key finds nothing: lookups also match the derived id."""
    plugin = hsm_factory("pkcs11", tmp_path)
    await plugin.open()
    forged = b"p11:" + plugin.active_key_id.encode()
    with pytest.raises(HSMError, match="is not in token"):
        await keys_of(plugin).decrypt(forged, "A256GCM", b"x", iv=b"i" * 12, tag=b"t" * 16)


def test_kwp_wrap_from_blocks_matches_rfc5649() -> None:
    kek = os.urandom(32)

    def block(data: bytes) -> bytes:
        encryptor = Cipher(algorithms.AES(kek), modes.ECB()).encryptor()
        return encryptor.update(data) + encryptor.finalize()

    for length in range(1, 70):
        cek = os.urandom(length)
        assert p11mech.kwp_wrap(block, cek) == keywrap.aes_key_wrap_with_padding(kek, cek)
    # The RFC vector the plugin uses to check a token's own wrap.
    assert keywrap.aes_key_wrap_with_padding(p11ops._KWP_KEK, p11ops._KWP_KEY) == (
        p11ops._KWP_WRAPPED
    )


@pytest.mark.parametrize(("alg", "hash_name"), [("RSA-OAEP", "sha1"), ("RSA-OAEP-256", "sha256")])
def test_oaep_decode(known_rsa: rsa.RSAPrivateKey, alg: str, hash_name: str) -> None:
    """The fallback for tokens without OAEP-SHA-256: raw RSA result -> plaintext."""
    nums = known_rsa.private_numbers()
    n, k = nums.public_numbers.n, 256

    def raw(ciphertext: bytes) -> bytes:
        return pow(int.from_bytes(ciphertext, "big"), nums.d, n).to_bytes(k, "big")

    for size in (0, 1, 32, 190):
        plaintext = os.urandom(size)
        em = raw(jose.encrypt(known_rsa, alg, plaintext).value)
        assert p11mech.oaep_decode(em, k, hash_name, "failed") == plaintext
        for index in (0, 1, 40, k - 1):
            bad = bytearray(em)
            bad[index] ^= 0x80
            with pytest.raises(JoseError, match="failed"):
                p11mech.oaep_decode(bytes(bad), k, hash_name, "failed")


# -- software only: the handle is sealed ---------------------------------------------------


async def test_software_handle_holds_no_key_material(
    hsm_factory: HSMFactory, tmp_path: Path, known_rsa: rsa.RSAPrivateKey
) -> None:
    plugin = hsm_factory("software", tmp_path)
    await plugin.open()
    keys = keys_of(plugin)
    known_ec = ec.generate_private_key(ec.SECP256R1())
    known_oct = OctKey(os.urandom(32))
    secrets: list[tuple[jose.Private, list[bytes]]] = [
        (known_rsa, [_big(known_rsa.private_numbers().d), _big(known_rsa.private_numbers().p)]),
        (known_ec, [known_ec.private_numbers().private_value.to_bytes(32, "big")]),
        (known_oct, [known_oct.secret]),
    ]
    for key, parts in secrets:
        name = label()
        handle, _ = await keys.import_key(name, key)
        assert handle.startswith(b"kvsk1" + plugin.active_key_id.encode())
        assert name.encode() in handle  # the label is bound to the handle (and authenticated)
        for part in [jose.dump_private(key), *parts]:
            assert part not in handle


async def test_software_tampered_handle_is_integrity_error(
    hsm_factory: HSMFactory, tmp_path: Path
) -> None:
    plugin = hsm_factory("software", tmp_path)
    await plugin.open()
    handle, _ = await keys_of(plugin).create_key(label(), "EC")
    fresh = hsm_factory("software", tmp_path)  # same root keys, empty cache
    await fresh.open()
    digest = digest_for("ES256")
    for index in (len(handle) - 1, len(handle) - 30, 30):  # tag, ciphertext, label
        bad = bytearray(handle)
        bad[index] ^= 1
        with pytest.raises(IntegrityError):
            await keys_of(fresh).sign(bytes(bad), "ES256", digest)
    with pytest.raises(IntegrityError, match="malformed"):
        await keys_of(fresh).sign(handle[:40], "ES256", digest)
    await keys_of(fresh).sign(handle, "ES256", digest)


async def test_software_cache_is_bounded(hsm_factory: HSMFactory, tmp_path: Path) -> None:
    plugin = hsm_factory("software", tmp_path)
    await plugin.open()
    keys = SoftwareKeys(lambda: plugin.active_key_id, plugin._cipher, cache_size=2)  # type: ignore[attr-defined]
    handles = [(await keys.create_key(label(), "EC"))[0] for _ in range(3)]
    assert len(keys._cache) == 2
    for handle in handles:  # the evicted one is unsealed again
        await keys.sign(handle, "ES256", digest_for("ES256"))
    await keys.destroy(handles[-1])  # the most recently used: surely cached
    assert len(keys._cache) == 1


def _big(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")
