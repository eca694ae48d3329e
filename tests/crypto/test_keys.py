"""Key Vault key material and operations: round trips, interop with ``cryptography`` done
independently here, the official Azure SDK's local crypto (when installed), and refusals."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives import padding as blockpadding
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kvault.crypto import keys
from kvault.crypto.keys import JoseError, OctKey

DECRYPT_FAILED = "value could not be decrypted with this key and algorithm"
UNWRAP_FAILED = "value could not be unwrapped with this key and algorithm"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}
CURVES = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
    "P-256K": ec.SECP256K1,
}
ES_CURVE = {"ES256": "P-256", "ES256K": "P-256K", "ES384": "P-384", "ES512": "P-521"}
SHA = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64int(value: int, size: int | None = None) -> str:
    return b64(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


def rsa_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """A full private JWK, written here independently of the code under test."""
    nums = key.private_numbers()
    pub = nums.public_numbers
    parts = {"d": nums.d, "p": nums.p, "q": nums.q, "dp": nums.dmp1, "dq": nums.dmq1}
    return {
        "kty": "RSA",
        "n": b64int(pub.n),
        "e": b64int(pub.e),
        **{name: b64int(value) for name, value in parts.items()},
        "qi": b64int(nums.iqmp),
    }


def ec_jwk(key: ec.EllipticCurvePrivateKey, crv: str) -> dict[str, str]:
    size = (key.curve.key_size + 7) // 8
    nums = key.private_numbers()
    x, y = nums.public_numbers.x, nums.public_numbers.y
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64int(x, size),
        "y": b64int(y, size),
        "d": b64int(nums.private_value, size),
    }


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    key = keys.generate("RSA")
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope="module")
def other_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_keys() -> dict[str, ec.EllipticCurvePrivateKey]:
    made = {crv: keys.generate("EC", crv=crv) for crv in CURVES}
    return {crv: key for crv, key in made.items() if isinstance(key, ec.EllipticCurvePrivateKey)}


def refused(call: Callable[[], object]) -> str:
    """The message of the :class:`JoseError` that ``call`` raises."""
    with pytest.raises(JoseError) as caught:
        call()
    return str(caught.value)


def oct_key(bits: int) -> OctKey:
    key = keys.generate("oct", size=bits)
    assert isinstance(key, OctKey)
    return key


# --- key types and generation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kty", "base"),
    [("RSA", "RSA"), ("RSA-HSM", "RSA"), ("EC", "EC"), ("EC-HSM", "EC"), ("oct", "oct")],
)
def test_base_kty(kty: str, base: str) -> None:
    assert keys.base_kty(kty) == base


@pytest.mark.parametrize("kty", ["rsa", "RSA-hsm", "OCT", "ec", "", "RSA2", "Oct-HSM"])
def test_base_kty_is_case_sensitive_and_closed(kty: str) -> None:
    with pytest.raises(JoseError, match=r"^kty '.*' is not supported \(RSA, RSA-HSM"):
        keys.base_kty(kty)


def test_generate_defaults(rsa_key: rsa.RSAPrivateKey) -> None:
    assert rsa_key.key_size == 2048
    assert rsa_key.public_key().public_numbers().e == 65537
    ec_key = keys.generate("EC-HSM")
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    assert isinstance(ec_key.curve, ec.SECP256R1)
    assert keys.key_size(keys.generate("oct-HSM")) == 256


def test_generate_sizes_curves_and_exponent(ec_keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
    assert {crv: type(key.curve) for crv, key in ec_keys.items()} == CURVES
    assert [keys.key_size(oct_key(bits)) for bits in (128, 192, 256)] == [128, 192, 256]
    e3 = keys.generate("RSA-HSM", size=2048, public_exponent=3)
    assert isinstance(e3, rsa.RSAPrivateKey)
    assert e3.public_key().public_numbers().e == 3


def test_generate_rsa_4096() -> None:
    """The one slow generation: the largest size Azure offers."""
    key = keys.generate("RSA", size=4096)
    assert keys.key_size(key) == 4096
    digest = hashlib.sha512(b"m").digest()
    assert keys.verify(key, "PS512", digest, keys.sign(key, "PS512", digest))


@pytest.mark.parametrize(
    ("kty", "options", "message"),
    [
        ("RSA", {"size": 1024}, "key_size 1024 is not supported for RSA keys (2048, 3072 or 4096)"),
        ("RSA", {"crv": "P-256"}, "crv is not valid for an RSA key"),
        ("RSA", {"public_exponent": 5}, "public_exponent 5 is not supported for RSA keys"),
        ("RSA", {"size": True}, "key_size must be an integer"),
        ("EC", {"size": 256}, "key_size is not valid for an EC key"),
        ("EC", {"crv": "P-192"}, "crv 'P-192' is not supported (P-256, P-384, P-521 or P-256K)"),
        ("EC", {"public_exponent": 3}, "public_exponent is not valid for an EC key"),
        ("oct", {"size": 512}, "key_size 512 is not supported for oct keys (128, 192 or 256)"),
        ("oct", {"crv": "P-256"}, "crv is not valid for an oct key"),
        ("oct-HSM", {"public_exponent": 3}, "public_exponent is not valid for an oct key"),
        ("RSA256", {}, "kty 'RSA256' is not supported"),
    ],
)
def test_generate_refuses(kty: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(JoseError) as caught:
        keys.generate(kty, **options)
    assert str(caught.value).startswith(message)


# --- JWK import and export ----------------------------------------------------------------


def test_rsa_import_equals_the_exported_key(rsa_key: rsa.RSAPrivateKey) -> None:
    imported = keys.private_from_jwk(rsa_jwk(rsa_key))
    assert isinstance(imported, rsa.RSAPrivateKey)
    assert imported.private_numbers() == rsa_key.private_numbers()
    public = keys.public_from_jwk(keys.public_jwk(rsa_key))
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == rsa_key.public_key().public_numbers()


@pytest.mark.parametrize("crv", list(CURVES))
def test_ec_import_equals_the_exported_key(crv: str) -> None:
    key = ec.generate_private_key(CURVES[crv]())
    imported = keys.private_from_jwk(ec_jwk(key, crv))
    assert isinstance(imported, ec.EllipticCurvePrivateKey)
    assert imported.private_numbers() == key.private_numbers()
    doc = keys.public_jwk(key)
    assert doc == {k: v for k, v in ec_jwk(key, crv).items() if k != "d"}
    public = keys.public_from_jwk(doc)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize("size", [16, 24, 32])
def test_oct_import(size: int) -> None:
    secret = os.urandom(size)
    assert keys.private_from_jwk({"kty": "oct-HSM", "k": b64(secret)}) == OctKey(secret)


def test_padded_base64url_is_accepted(rsa_key: rsa.RSAPrivateKey) -> None:
    doc = rsa_jwk(rsa_key)
    padded = {k: v + "=" * (-len(v) % 4) if k != "kty" else v for k, v in doc.items()}
    assert any(padded[k] != doc[k] for k in doc)
    imported = keys.private_from_jwk(padded)
    assert isinstance(imported, rsa.RSAPrivateKey)
    assert imported.private_numbers() == rsa_key.private_numbers()


def test_public_jwk_has_no_private_members(
    rsa_key: rsa.RSAPrivateKey, ec_keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    docs = [keys.public_jwk(rsa_key), keys.public_jwk(oct_key(256))]
    docs += [keys.public_jwk(key) for key in ec_keys.values()]
    assert docs[1] == {"kty": "oct"}
    for doc in docs:
        assert not PRIVATE_MEMBERS & doc.keys()
        assert all("=" not in value for value in doc.values())
    assert set(docs[0]) == {"kty", "n", "e"}
    p521 = keys.public_jwk(ec_keys["P-521"])
    assert len(base64.urlsafe_b64decode(p521["x"] + "==")) == 66


def test_key_size(
    rsa_key: rsa.RSAPrivateKey, ec_keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    assert keys.key_size(rsa_key) == keys.key_size(rsa_key.public_key()) == 2048
    sizes = {crv: keys.key_size(key.public_key()) for crv, key in ec_keys.items()}
    assert sizes == {"P-256": 256, "P-384": 384, "P-521": 521, "P-256K": 256}
    assert keys.key_size(oct_key(192)) == 192


def _inconsistent_rsa(doc: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "dp": other["dp"]}


def without(member: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda doc: {k: v for k, v in doc.items() if k != member}


def _y_plus_one(doc: dict[str, Any]) -> dict[str, Any]:
    y = int.from_bytes(base64.urlsafe_b64decode(doc["y"] + "="))
    return {**doc, "y": b64int(y + 1, 32)}


# (kty, mutation, member named in the message)
MALFORMED: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]], str]] = [
    *[("RSA", without(m), m) for m in ("n", "e", "d", "p", "q", "dp", "dq", "qi")],
    ("RSA", lambda d: {**d, "n": 12345}, "n"),
    ("RSA", lambda d: {**d, "d": None}, "d"),
    ("RSA", lambda d: {**d, "e": "AQ+B"}, "e"),
    ("RSA", lambda d: {**d, "q": "AAAAA"}, "q"),
    ("RSA", lambda d: {**d, "p": d["p"] + "==="}, "p"),
    ("RSA", lambda d: {**d, "qi": ""}, "qi"),
    ("RSA", lambda d: {**d, "d": "A" * 400}, "d"),
    ("RSA", lambda d: {**d, "n": b64(os.urandom(128))}, "n"),
    ("RSA", lambda d: {**d, "e": "Ag"}, "e"),
    ("RSA", lambda d: {**d, "dq": d["dp"]}, "dq"),
    ("RSA", lambda d: {**d, "q": d["p"]}, "q"),
    *[("EC", without(m), m) for m in ("crv", "x", "y", "d")],
    ("EC", lambda d: {**d, "crv": "P-192"}, "crv"),
    ("EC", lambda d: {**d, "crv": "p-256"}, "crv"),
    ("EC", lambda d: {**d, "crv": 256}, "crv"),
    ("EC", lambda d: {**d, "x": ["x"]}, "x"),
    (
        "EC",
        lambda d: {**d, "y": b64int(int.from_bytes(base64.urlsafe_b64decode(d["y"] + "=")) + 1)},
        "y",
    ),
    ("EC", lambda d: {**d, "d": b64(os.urandom(32))}, "d"),
    ("EC", lambda d: {**d, "x": b64(os.urandom(33))}, "x"),
    ("oct", lambda d: {**d, "k": b64(os.urandom(20))}, "k"),
    ("oct", lambda d: {"kty": "oct"}, "k"),
    ("oct", lambda d: {**d, "k": "not base64!"}, "k"),
    ("RSA", lambda d: {**d, "kty": "RSA2"}, "kty"),
    ("RSA", lambda d: {**d, "kty": "rsa"}, "kty"),
    ("EC", without("kty"), "kty"),
    ("oct", lambda d: {**d, "kty": ["oct"]}, "kty"),
]


@pytest.mark.parametrize(
    ("kty", "mutate", "member"),
    MALFORMED,
    ids=[f"{kty}-{member}-{i}" for i, (kty, _, member) in enumerate(MALFORMED)],
)
def test_malformed_private_jwk_names_the_member_and_no_secret(
    kty: str,
    mutate: Callable[[dict[str, Any]], dict[str, Any]],
    member: str,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    valid = {
        "RSA": rsa_jwk(rsa_key),
        "EC": ec_jwk(ec.generate_private_key(ec.SECP256R1()), "P-256"),
        "oct": {"kty": "oct", "k": b64(os.urandom(32))},
    }[kty]
    doc = mutate(dict(valid))
    with pytest.raises(JoseError) as caught:
        keys.private_from_jwk(doc)
    message = str(caught.value)
    assert f"key.{member} " in message
    secrets = [v for k, v in {**valid, **doc}.items() if k in PRIVATE_MEMBERS]
    assert not [s for s in secrets if isinstance(s, str) and len(s) > 8 and s in message]


def test_inconsistent_rsa_private_exponent(
    rsa_key: rsa.RSAPrivateKey, other_rsa: rsa.RSAPrivateKey
) -> None:
    doc = {**rsa_jwk(rsa_key), "d": rsa_jwk(other_rsa)["d"]}
    with pytest.raises(
        JoseError, match=r"^key\.d, key\.dp, key\.dq and key\.qi are not consistent"
    ):
        keys.private_from_jwk(doc)
    foreign = {**rsa_jwk(rsa_key), "p": rsa_jwk(other_rsa)["p"]}
    with pytest.raises(JoseError, match=r"^key\.p and key\.q are not the factors of key\.n$"):
        keys.private_from_jwk(foreign)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"kty": "oct", "k": "AAAAAAAAAAAAAAAAAAAAAA"}, "key.kty oct has no public key"),
        ({"kty": "RSA", "n": "AQAB"}, "key.n is a 17-bit modulus"),
        ({"kty": "EC", "crv": "P-256", "x": "AA"}, "key.y is required"),
        ({"kty": "EC", "crv": "P-256", "x": "AQ", "y": "AQ"}, "key.x and key.y are not a point on"),
        ({"crv": "P-256"}, "key.kty is required"),
    ],
)
def test_malformed_public_jwk(doc: dict[str, str], message: str) -> None:
    with pytest.raises(JoseError) as caught:
        keys.public_from_jwk(doc)
    assert str(caught.value).startswith(message)


def test_jwk_must_be_an_object() -> None:
    assert refused(lambda: keys.private_from_jwk("RSA")) == "key must be a JSON object"  # type: ignore[arg-type]


def test_oct_key_repr_hides_the_secret() -> None:
    key = OctKey(b"\x01" * 16)
    assert "01" not in repr(key) and "secret" not in repr(key)
    assert key == OctKey(b"\x01" * 16) != OctKey(b"\x02" * 16)
    with pytest.raises(JoseError, match="16, 24 or 32 bytes, not 5"):
        OctKey(b"short")


# --- sealed storage -----------------------------------------------------------------------


def test_dump_load_round_trip(
    rsa_key: rsa.RSAPrivateKey, ec_keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    loaded = keys.load_private(keys.dump_private(rsa_key))
    assert isinstance(loaded, rsa.RSAPrivateKey)
    assert loaded.private_numbers() == rsa_key.private_numbers()
    for key in ec_keys.values():
        again = keys.load_private(keys.dump_private(key))
        assert isinstance(again, ec.EllipticCurvePrivateKey)
        assert again.private_numbers() == key.private_numbers()
    secret = oct_key(128)
    assert keys.load_private(keys.dump_private(secret)) == secret


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"oct:short",
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        ec.generate_private_key(ec.SECP192R1()).private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    ],
    ids=["empty", "garbage", "short-oct", "ed25519", "P-192"],
)
def test_load_refuses_garbage(data: bytes) -> None:
    with pytest.raises(JoseError):
        keys.load_private(data)


# --- algorithm checks ---------------------------------------------------------------------


def test_tables() -> None:
    assert (
        keys.ENCRYPT_ALGS["RSA"] == keys.WRAP_ALGS["RSA"] == {"RSA1_5", "RSA-OAEP", "RSA-OAEP-256"}
    )
    assert keys.ENCRYPT_ALGS["EC"] == keys.WRAP_ALGS["EC"] == frozenset()
    assert len(keys.ENCRYPT_ALGS["oct"]) == 9
    assert keys.WRAP_ALGS["oct"] == {
        "A128KW",
        "A192KW",
        "A256KW",
        "CKM_AES_KEY_WRAP",
        "CKM_AES_KEY_WRAP_PAD",
    }
    assert keys.SIGN_ALGS["EC"] == set(ES_CURVE)
    assert keys.SIGN_ALGS["RSA"] == {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "RSNULL"}
    expected = {f"{f}{bits}": int(bits) // 8 for f in ("RS", "PS", "ES") for bits in SHA}
    expected["ES256K"] = 32
    assert expected == keys.DIGEST_BYTES


@pytest.mark.parametrize(
    ("kty", "operation", "alg", "message"),
    [
        ("EC", "sign", "RS256", "alg RS256 is not valid for an EC key"),
        ("RSA-HSM", "sign", "ES256", "alg ES256 is not valid for an RSA key"),
        ("EC", "encrypt", "RSA-OAEP", "alg RSA-OAEP is not valid for an EC key"),
        ("RSA", "encrypt", "A128KW", "alg A128KW is not valid for encrypt"),
        ("RSA", "sign", "RSA-OAEP", "alg RSA-OAEP is not valid for sign"),
        ("oct", "wrapKey", "A128GCM", "alg A128GCM is not valid for wrapKey"),
        ("oct", "sign", "HS256", "alg 'HS256' is not supported"),
        ("RSA", "verify", "rs256", "alg 'rs256' is not supported"),
        ("RSA", "verify", "x" * 100, "alg 'xxxxxxxxxx"),
        ("RSA", "frobnicate", "RS256", "operation 'frobnicate' is not supported"),
        ("rsa", "sign", "RS256", "kty 'rsa' is not supported"),
    ],
)
def test_check_alg_refuses(kty: str, operation: str, alg: str, message: str) -> None:
    with pytest.raises(JoseError) as caught:
        keys.check_alg(kty, operation, alg)
    assert str(caught.value).startswith(message)
    assert len(str(caught.value)) < 120


def test_check_alg_with_key(
    rsa_key: rsa.RSAPrivateKey, ec_keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    for alg, crv in ES_CURVE.items():
        keys.check_alg("EC-HSM", "verify", alg, ec_keys[crv].public_key())
    assert (
        refused(lambda: keys.check_alg("EC", "sign", "ES256", ec_keys["P-384"]))
        == "alg ES256 needs a P-256 key, not P-384"
    )
    assert (
        refused(lambda: keys.check_alg("EC", "sign", "ES256", ec_keys["P-256K"]))
        == "alg ES256 needs a P-256 key, not P-256K"
    )
    assert (
        refused(lambda: keys.check_alg("oct", "encrypt", "A128GCM", oct_key(256)))
        == "alg A128GCM needs a 128-bit key, not 256-bit"
    )
    assert (
        refused(lambda: keys.check_alg("oct", "unwrapKey", "A256KW", oct_key(192)))
        == "alg A256KW needs a 256-bit key, not 192-bit"
    )
    for bits in (128, 192, 256):
        keys.check_alg("oct", "wrapKey", "CKM_AES_KEY_WRAP", oct_key(bits))
    assert (
        refused(lambda: keys.check_alg("RSA", "decrypt", "RSA-OAEP", rsa_key.public_key()))
        == "decrypt needs the private key"
    )
    assert (
        refused(lambda: keys.check_alg("RSA", "verify", "RS256", ec_keys["P-256"]))
        == "key is an EC key, not RSA"
    )


# --- encrypt / decrypt --------------------------------------------------------------------

RSA_LIMITS = {"RSA1_5": 245, "RSA-OAEP": 214, "RSA-OAEP-256": 190}


def _rsa_padding(alg: str) -> padding.AsymmetricPadding:
    if alg == "RSA1_5":
        return padding.PKCS1v15()
    digest = hashes.SHA1() if alg == "RSA-OAEP" else hashes.SHA256()
    return padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)


@pytest.mark.parametrize("alg", list(RSA_LIMITS))
def test_rsa_encryption_round_trips_and_interop(alg: str, rsa_key: rsa.RSAPrivateKey) -> None:
    plaintext = os.urandom(RSA_LIMITS[alg])
    sealed = keys.encrypt(rsa_key.public_key(), alg, plaintext)
    assert sealed.iv is None and sealed.tag is None and len(sealed.value) == 256
    assert keys.decrypt(rsa_key, alg, sealed.value) == plaintext
    assert rsa_key.decrypt(sealed.value, _rsa_padding(alg)) == plaintext
    theirs = rsa_key.public_key().encrypt(b"from cryptography", _rsa_padding(alg))
    assert keys.decrypt(rsa_key, alg, theirs) == b"from cryptography"
    wrapped = keys.wrap(rsa_key, alg, b"k" * 32)
    assert keys.unwrap(rsa_key, alg, wrapped) == b"k" * 32
    assert rsa_key.decrypt(wrapped, _rsa_padding(alg)) == b"k" * 32


@pytest.mark.parametrize("alg", list(RSA_LIMITS))
def test_oversize_rsa_plaintext_is_refused_precisely(alg: str, rsa_key: rsa.RSAPrivateKey) -> None:
    limit = RSA_LIMITS[alg]
    message = f"value is too long for {alg} with a 2048-bit key (at most {limit} bytes)"
    for operation in (keys.encrypt, keys.wrap):
        with pytest.raises(JoseError) as caught:
            operation(rsa_key, alg, b"\x00" * (limit + 1))
        assert str(caught.value) == message


@pytest.mark.parametrize("alg", ["RSA-OAEP", "RSA-OAEP-256"])
def test_rsa_decrypt_failure_is_generic(alg: str, rsa_key: rsa.RSAPrivateKey) -> None:
    for garbage in (b"\x01" * 256, b"short"):
        with pytest.raises(JoseError) as caught:
            keys.decrypt(rsa_key, alg, garbage)
        assert str(caught.value) == DECRYPT_FAILED
        with pytest.raises(JoseError) as unwrapped:
            keys.unwrap(rsa_key, alg, garbage)
        assert str(unwrapped.value) == UNWRAP_FAILED


def test_rsa_refuses_aes_parameters(rsa_key: rsa.RSAPrivateKey) -> None:
    assert (
        refused(lambda: keys.encrypt(rsa_key, "RSA-OAEP", b"x", iv=b"\x00" * 16))
        == "iv is not valid for RSA-OAEP"
    )
    assert (
        refused(lambda: keys.decrypt(rsa_key, "RSA-OAEP-256", b"x", tag=b"\x00" * 16))
        == "tag is not valid for RSA-OAEP-256"
    )


AES_ALGS = [f"A{bits}{mode}" for mode in ("GCM", "CBC", "CBCPAD") for bits in (128, 192, 256)]


@pytest.mark.parametrize("alg", AES_ALGS)
def test_aes_round_trip_and_interop(alg: str) -> None:
    key = oct_key(int(alg[1:4]))
    plaintext = os.urandom(48)
    iv = None if "GCM" in alg else os.urandom(16)
    aad = b"context" if "GCM" in alg else None
    sealed = keys.encrypt(key, alg, plaintext, iv=iv, aad=aad)
    assert keys.decrypt(key, alg, sealed.value, iv=sealed.iv, aad=aad, tag=sealed.tag) == plaintext
    assert sealed.iv is not None
    if "GCM" in alg:
        assert sealed.tag is not None and len(sealed.iv) == 12 and len(sealed.tag) == 16
        theirs = AESGCM(key.secret).decrypt(sealed.iv, sealed.value + sealed.tag, aad)
    else:
        assert sealed.tag is None and sealed.iv == iv
        decryptor = Cipher(algorithms.AES(key.secret), modes.CBC(sealed.iv)).decryptor()
        theirs = decryptor.update(sealed.value) + decryptor.finalize()
        if alg.endswith("PAD"):
            assert len(sealed.value) == 64
            unpadder = blockpadding.PKCS7(128).unpadder()
            theirs = unpadder.update(theirs) + unpadder.finalize()
    assert theirs == plaintext


def test_gcm_draws_a_fresh_iv_or_uses_the_given_one() -> None:
    key = oct_key(256)
    first, second = (keys.encrypt(key, "A256GCM", b"same") for _ in range(2))
    assert first.iv != second.iv and first.value != second.value
    given = keys.encrypt(key, "A256GCM", b"same", iv=b"\x07" * 12)
    assert given.iv == b"\x07" * 12
    assert keys.decrypt(key, "A256GCM", given.value, iv=given.iv, tag=given.tag) == b"same"


def test_gcm_tampering_is_one_generic_error() -> None:
    key = oct_key(128)
    sealed = keys.encrypt(key, "A128GCM", b"secret text", aad=b"a")
    assert sealed.tag is not None
    bad_tag = bytes([sealed.tag[0] ^ 1]) + sealed.tag[1:]
    attempts: list[dict[str, Any]] = [
        {"ciphertext": sealed.value, "iv": sealed.iv, "tag": bad_tag, "aad": b"a"},
        {"ciphertext": sealed.value, "iv": sealed.iv, "tag": sealed.tag, "aad": b"b"},
        {"ciphertext": sealed.value, "iv": sealed.iv, "tag": sealed.tag},
        {"ciphertext": b"x" + sealed.value, "iv": sealed.iv, "tag": sealed.tag, "aad": b"a"},
    ]
    for attempt in attempts:
        with pytest.raises(JoseError) as caught:
            keys.decrypt(key, "A128GCM", **attempt)
        assert str(caught.value) == DECRYPT_FAILED


def test_cbcpad_bad_padding_is_the_generic_error() -> None:
    key, iv = oct_key(256), os.urandom(16)
    unpadded = keys.encrypt(key, "A256CBC", b"ends in a zero\x00\x00", iv=iv)
    with pytest.raises(JoseError) as caught:
        keys.decrypt(key, "A256CBCPAD", unpadded.value, iv=iv)
    assert str(caught.value) == DECRYPT_FAILED


@pytest.mark.parametrize(
    ("alg", "call", "message"),
    [
        ("A128CBC", {"plaintext": b"x" * 17, "iv": b"\x00" * 16}, "value must be a multiple of 16"),
        ("A128CBC", {"plaintext": b"x" * 16}, "iv is required for A128CBC"),
        (
            "A128CBCPAD",
            {"plaintext": b"x", "iv": b"\x00" * 12},
            "iv must be 16 bytes for A128CBCPAD",
        ),
        ("A128CBCPAD", {"plaintext": b"x", "iv": b"\x00" * 16, "aad": b"a"}, "aad is not valid"),
        ("A128GCM", {"plaintext": b"x", "iv": b"\x00" * 16}, "iv must be 12 bytes for A128GCM"),
    ],
)
def test_aes_encrypt_input_checks(alg: str, call: dict[str, Any], message: str) -> None:
    with pytest.raises(JoseError) as caught:
        keys.encrypt(oct_key(128), alg, **call)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("alg", "call", "message"),
    [
        ("A128GCM", {"ciphertext": b"x", "iv": b"\x00" * 12}, "tag is required for A128GCM"),
        ("A128GCM", {"ciphertext": b"x", "tag": b"\x00" * 16}, "iv is required for A128GCM"),
        ("A128GCM", {"ciphertext": b"x", "iv": b"\x00" * 12, "tag": b"t"}, "tag must be 16 bytes"),
        ("A128CBC", {"ciphertext": b"x" * 15, "iv": b"\x00" * 16}, "value must be a multiple"),
        ("A128CBCPAD", {"ciphertext": b"", "iv": b"\x00" * 16}, "value must be a non-empty"),
        ("A128CBC", {"ciphertext": b"x" * 16, "iv": b"\x00" * 16, "tag": b"t"}, "tag is not valid"),
    ],
)
def test_aes_decrypt_input_checks(alg: str, call: dict[str, Any], message: str) -> None:
    with pytest.raises(JoseError) as caught:
        keys.decrypt(oct_key(128), alg, **call)
    assert str(caught.value).startswith(message)


# --- wrap / unwrap ------------------------------------------------------------------------

WRAP_CASES = [(f"A{bits}KW", bits) for bits in (128, 192, 256)] + [
    (alg, bits) for alg in ("CKM_AES_KEY_WRAP", "CKM_AES_KEY_WRAP_PAD") for bits in (128, 192, 256)
]


@pytest.mark.parametrize(("alg", "bits"), WRAP_CASES)
def test_aes_wrap_round_trip_and_interop(alg: str, bits: int) -> None:
    key = oct_key(bits)
    cek = os.urandom(20 if alg.endswith("PAD") else 32)
    wrapped = keys.wrap(key, alg, cek)
    assert keys.unwrap(key, alg, wrapped) == cek
    unwrap = keywrap.aes_key_unwrap_with_padding if alg.endswith("PAD") else keywrap.aes_key_unwrap
    assert unwrap(key.secret, wrapped) == cek
    with pytest.raises(JoseError) as caught:
        keys.unwrap(oct_key(bits), alg, wrapped)
    assert str(caught.value) == UNWRAP_FAILED


def test_aes_wrap_known_answers() -> None:
    """RFC 3394 section 4.1 and RFC 5649 section 6 test vectors."""
    kek = OctKey(bytes.fromhex("000102030405060708090A0B0C0D0E0F"))
    cek = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    expected = "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"
    assert keys.wrap(kek, "A128KW", cek).hex().upper() == expected
    assert keys.wrap(kek, "CKM_AES_KEY_WRAP", cek).hex().upper() == expected
    kek = OctKey(bytes.fromhex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"))
    cek = bytes.fromhex("c37b7e6492584340bed12207808941155068f738")
    expected = "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"
    assert keys.wrap(kek, "CKM_AES_KEY_WRAP_PAD", cek).hex() == expected


@pytest.mark.parametrize(
    ("alg", "cek", "message"),
    [
        (
            "A128KW",
            b"k" * 12,
            "value must be a multiple of 8 bytes and at least 16 bytes for A128KW",
        ),
        ("CKM_AES_KEY_WRAP", b"k" * 20, "value must be a multiple of 8 bytes"),
        ("CKM_AES_KEY_WRAP_PAD", b"", "value must not be empty for CKM_AES_KEY_WRAP_PAD"),
    ],
)
def test_aes_wrap_input_checks(alg: str, cek: bytes, message: str) -> None:
    with pytest.raises(JoseError) as caught:
        keys.wrap(oct_key(128), alg, cek)
    assert str(caught.value).startswith(message)


# --- sign / verify ------------------------------------------------------------------------


@pytest.mark.parametrize("alg", list(ES_CURVE))
def test_ecdsa_raw_signatures_interop(
    alg: str, ec_keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    key = ec_keys[ES_CURVE[alg]]
    hash_alg = SHA[alg[2:5]]
    message = b"the message"
    digester = hashes.Hash(hash_alg)
    digester.update(message)
    digest = digester.finalize()
    signature = keys.sign(key, alg, digest)
    width = {"ES256": 32, "ES256K": 32, "ES384": 48, "ES512": 66}[alg]
    assert len(signature) == 2 * width
    r, s = int.from_bytes(signature[:width]), int.from_bytes(signature[width:])
    key.public_key().verify(utils.encode_dss_signature(r, s), message, ec.ECDSA(hash_alg))
    assert keys.verify(key.public_key(), alg, digest, signature)
    theirs = utils.decode_dss_signature(key.sign(message, ec.ECDSA(hash_alg)))
    raw = b"".join(value.to_bytes(width) for value in theirs)
    assert keys.verify(key, alg, digest, raw)
    assert not keys.verify(key, alg, digest, raw[:-1] + bytes([raw[-1] ^ 1]))
    assert not keys.verify(key, alg, bytes(len(digest)), raw)
    assert not keys.verify(key, alg, digest, raw[:-1])
    assert not keys.verify(key, alg, digest, utils.encode_dss_signature(*theirs))
    assert not keys.verify(key, alg, digest, b"\x00" * (2 * width))


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
def test_rsa_signatures_interop(alg: str, rsa_key: rsa.RSAPrivateKey) -> None:
    hash_alg = SHA[alg[2:]]
    message = b"the message"
    digester = hashes.Hash(hash_alg)
    digester.update(message)
    digest = digester.finalize()
    scheme: padding.AsymmetricPadding = padding.PKCS1v15()
    if alg.startswith("PS"):
        scheme = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
    signature = keys.sign(rsa_key, alg, digest)
    rsa_key.public_key().verify(signature, message, scheme, hash_alg)
    assert keys.verify(rsa_key.public_key(), alg, digest, signature)
    theirs = rsa_key.sign(message, scheme, hash_alg)
    assert keys.verify(rsa_key, alg, digest, theirs)
    assert not keys.verify(rsa_key, alg, digest, signature[:-1] + bytes([signature[-1] ^ 1]))
    assert not keys.verify(rsa_key, alg, bytes(len(digest)), signature)
    assert not keys.verify(rsa_key, alg, digest, signature[:-1])


def test_pss_salt_is_the_digest_length(rsa_key: rsa.RSAPrivateKey) -> None:
    digest = hashlib.sha256(b"m").digest()
    signature = keys.sign(rsa_key, "PS256", digest)
    max_salt = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=33)
    with pytest.raises(InvalidSignature):
        rsa_key.public_key().verify(signature, digest, max_salt, utils.Prehashed(hashes.SHA256()))


def test_rsnull_is_pkcs1_without_digest_info(rsa_key: rsa.RSAPrivateKey) -> None:
    data = hashlib.md5(b"m").digest() + hashlib.sha1(b"m").digest()  # the TLS 1.0 use
    signature = keys.sign(rsa_key, "RSNULL", data)
    public = rsa_key.public_key().public_numbers()
    encoded = pow(int.from_bytes(signature), public.e, public.n).to_bytes(256)
    assert encoded == b"\x00\x01" + b"\xff" * (256 - 3 - len(data)) + b"\x00" + data
    assert keys.verify(rsa_key.public_key(), "RSNULL", data, signature)
    assert not keys.verify(rsa_key, "RSNULL", data[:-1] + b"\x00", signature)
    with pytest.raises(JoseError, match=r"^digest must be 1 to 245 bytes for RSNULL"):
        keys.sign(rsa_key, "RSNULL", b"x" * 246)


@pytest.mark.parametrize(
    ("alg", "size", "message"),
    [
        ("ES256", 48, "digest must be 32 bytes for ES256"),
        ("ES384", 32, "digest must be 48 bytes for ES384"),
        ("ES512", 66, "digest must be 64 bytes for ES512"),
        ("ES256K", 0, "digest must be 32 bytes for ES256K"),
        ("RS256", 64, "digest must be 32 bytes for RS256"),
        ("PS512", 32, "digest must be 64 bytes for PS512"),
        ("RSNULL", 0, "digest must be 1 to 245 bytes for RSNULL"),
    ],
)
def test_digest_of_wrong_length(
    alg: str,
    size: int,
    message: str,
    rsa_key: rsa.RSAPrivateKey,
    ec_keys: dict[str, ec.EllipticCurvePrivateKey],
) -> None:
    key = ec_keys[ES_CURVE[alg]] if alg in ES_CURVE else rsa_key
    with pytest.raises(JoseError) as caught:
        keys.sign(key, alg, b"\x00" * size)
    assert str(caught.value).startswith(message)
    with pytest.raises(JoseError):
        keys.verify(key.public_key(), alg, b"\x00" * size, b"\x00" * 64)


def test_operations_refuse_wrong_alg_or_public_key(
    rsa_key: rsa.RSAPrivateKey, ec_keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    assert (
        refused(lambda: keys.sign(ec_keys["P-256"], "RS256", b"\x00" * 32))
        == "alg RS256 is not valid for an EC key"
    )
    assert (
        refused(lambda: keys.encrypt(ec_keys["P-256"], "RSA-OAEP", b"x"))
        == "alg RSA-OAEP is not valid for an EC key"
    )
    assert (
        refused(lambda: keys.verify(ec_keys["P-256"], "ES384", b"\x00" * 48, b"\x00" * 96))
        == "alg ES384 needs a P-384 key, not P-256"
    )
    assert (
        refused(lambda: keys.sign(rsa_key.public_key(), "RS256", b"\x00" * 32))
        == "sign needs the private key"
    )  # type: ignore[arg-type]
    assert (
        refused(lambda: keys.wrap(rsa_key, "A128KW", b"k" * 16))
        == "alg A128KW is not valid for an RSA key"
    )


# --- the official Azure SDK's local crypto ------------------------------------------------


def _sdk_client(key: keys.Private, key_ops: list[str]) -> Any:
    """A CryptographyClient built as the SDK builds it from a KeyBundle our server returns."""
    sdk = pytest.importorskip("azure.keyvault.keys")
    generated = pytest.importorskip("azure.keyvault.keys._generated.models")
    crypto = pytest.importorskip("azure.keyvault.keys.crypto")
    kid = "https://vault.example/keys/k/0123456789abcdef0123456789abcdef"
    bundle = {"key": {**keys.public_jwk(key), "kid": kid, "key_ops": key_ops}, "attributes": {}}
    vault_key = sdk.KeyVaultKey._from_key_bundle(generated.KeyBundle(bundle))
    return crypto.CryptographyClient(vault_key, credential=object())


@pytest.mark.parametrize("alg", ["ES256", "ES256K", "ES384", "ES512", "RS256", "PS384", "PS512"])
def test_azure_sdk_verifies_our_signatures_locally(
    alg: str, rsa_key: rsa.RSAPrivateKey, ec_keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    key = ec_keys[ES_CURVE[alg]] if alg in ES_CURVE else rsa_key
    client = _sdk_client(key, ["verify"])
    digest = os.urandom(keys.DIGEST_BYTES[alg])
    signature = keys.sign(key, alg, digest)
    sdk_alg = pytest.importorskip("azure.keyvault.keys.crypto").SignatureAlgorithm(alg)
    assert client.verify(sdk_alg, digest, signature).is_valid
    assert not client.verify(sdk_alg, digest, signature[:-1] + bytes([signature[-1] ^ 1])).is_valid


@pytest.mark.parametrize("alg", list(RSA_LIMITS))
def test_azure_sdk_encrypts_and_wraps_locally_for_us(alg: str, rsa_key: rsa.RSAPrivateKey) -> None:
    client = _sdk_client(rsa_key, ["encrypt", "wrapKey"])
    crypto = pytest.importorskip("azure.keyvault.keys.crypto")
    sealed = client.encrypt(crypto.EncryptionAlgorithm(alg), b"plaintext")
    assert keys.decrypt(rsa_key, alg, sealed.ciphertext) == b"plaintext"
    wrapped = client.wrap_key(crypto.KeyWrapAlgorithm(alg), b"c" * 32)
    assert keys.unwrap(rsa_key, alg, wrapped.encrypted_key) == b"c" * 32
