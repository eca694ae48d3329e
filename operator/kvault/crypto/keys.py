"""Azure Key Vault key material and its cryptographic operations, in software.

Pure functions on ``cryptography``: generate, import a JWK, publish the public JWK, seal
(:func:`dump_private`/:func:`load_private`), and encrypt/decrypt, sign/verify and
wrapKey/unwrapKey under Azure's algorithm names. The wire contract follows what the official
SDKs check locally: ECDSA signatures are raw ``r||s`` of fixed width, sign and verify take a
digest (never hashed again), PSS salt = digest length. Every refusal is a :class:`JoseError`
whose message names the field and never carries key material or plaintext.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, cast

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives import padding as blockpadding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kvault.crypto import jwk as _jwk


class JoseError(ValueError):
    """Bad key, algorithm or input.

    ``str(exc)`` names the field (``key.n is not valid base64url``, ``digest must be 32 bytes
    for ES256``) and never contains key material or plaintext, so callers may return it as is.
    """


_OCT_BYTES = (16, 24, 32)


@dataclass(frozen=True, eq=False)
class OctKey:
    """An AES key. Its repr hides the secret so logs and tracebacks never show it."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) not in _OCT_BYTES:
            raise JoseError(f"an oct key must be 16, 24 or 32 bytes, not {len(self.secret)}")

    def __eq__(self, other: object) -> bool:
        """Constant-time, like any comparison of secrets."""
        return isinstance(other, OctKey) and hmac.compare_digest(self.secret, other.secret)


Private: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | OctKey
Public: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class Encrypted:
    """Ciphertext, with the IV (AES) and the GCM tag, which Azure returns as separate fields."""

    value: bytes
    iv: bytes | None = None
    tag: bytes | None = None


# --- algorithm tables -------------------------------------------------------------------

_KTYS = {"RSA": "RSA", "RSA-HSM": "RSA", "EC": "EC", "EC-HSM": "EC", "oct": "oct", "oct-HSM": "oct"}
_RSA_SIZES = (2048, 3072, 4096)
_RSA_EXPONENTS = (3, 65537)
_OCT_SIZES = (128, 192, 256)
_RSA_CRYPT = frozenset({"RSA1_5", "RSA-OAEP", "RSA-OAEP-256"})
_GCM_BITS = {"A128GCM": 128, "A192GCM": 192, "A256GCM": 256}
_CBC_BITS = {"A128CBC": 128, "A192CBC": 192, "A256CBC": 256}
_CBCPAD_BITS = {"A128CBCPAD": 128, "A192CBCPAD": 192, "A256CBCPAD": 256}
_KW_BITS = {"A128KW": 128, "A192KW": 192, "A256KW": 256}
_CKM_WRAP = "CKM_AES_KEY_WRAP"
_CKM_WRAP_PAD = "CKM_AES_KEY_WRAP_PAD"
#: The AES algorithms that fix the key size (the CKM ones take any oct key).
_AES_BITS = {**_GCM_BITS, **_CBC_BITS, **_CBCPAD_BITS, **_KW_BITS}
_SHA256, _SHA384, _SHA512 = hashes.SHA256(), hashes.SHA384(), hashes.SHA512()
_SIGN_HASH: dict[str, hashes.HashAlgorithm] = {
    "RS256": _SHA256,
    "RS384": _SHA384,
    "RS512": _SHA512,
    "PS256": _SHA256,
    "PS384": _SHA384,
    "PS512": _SHA512,
    "ES256": _SHA256,
    "ES256K": _SHA256,
    "ES384": _SHA384,
    "ES512": _SHA512,
}
_ES_CURVE = {"ES256": "P-256", "ES256K": "P-256K", "ES384": "P-384", "ES512": "P-521"}
#: The signature algorithm of each ECDSA alg, built once (the digest comes hashed).
_ECDSA = {alg: ec.ECDSA(utils.Prehashed(_SIGN_HASH[alg])) for alg in _ES_CURVE}
_RSNULL = "RSNULL"

ENCRYPT_ALGS: dict[str, frozenset[str]] = {
    "RSA": _RSA_CRYPT,
    "EC": frozenset(),
    "oct": frozenset(_GCM_BITS.keys() | _CBC_BITS.keys() | _CBCPAD_BITS.keys()),
}
WRAP_ALGS: dict[str, frozenset[str]] = {
    "RSA": _RSA_CRYPT,
    "EC": frozenset(),
    "oct": frozenset(_KW_BITS.keys() | {_CKM_WRAP, _CKM_WRAP_PAD}),
}
SIGN_ALGS: dict[str, frozenset[str]] = {
    "RSA": frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", _RSNULL}),
    "EC": frozenset(_ES_CURVE),
    "oct": frozenset(),
}
#: Digest length per signing algorithm. RSNULL has none: it signs 1..k-11 raw bytes.
DIGEST_BYTES: dict[str, int] = {alg: h.digest_size for alg, h in _SIGN_HASH.items()}

_TABLES = {
    "encrypt": ENCRYPT_ALGS,
    "decrypt": ENCRYPT_ALGS,
    "sign": SIGN_ALGS,
    "verify": SIGN_ALGS,
    "wrapKey": WRAP_ALGS,
    "unwrapKey": WRAP_ALGS,
}
_PRIVATE_OPERATIONS = frozenset({"decrypt", "sign", "unwrapKey"})
_DECRYPT_FAILED = "value could not be decrypted with this key and algorithm"
_UNWRAP_FAILED = "value could not be unwrapped with this key and algorithm"
_CRV_OF = {curve().name: crv for crv, curve in _jwk.CURVES.items()}
_OCT_PREFIX = b"oct:"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _show(value: object) -> str:
    """A caller-supplied name, quoted and cut short, for an error message."""
    text = str(value)
    return repr(text[:40] + ("..." if len(text) > 40 else ""))


def _choices(values: tuple[int, ...] | tuple[str, ...]) -> str:
    items = [str(v) for v in values]
    return ", ".join(items[:-1]) + " or " + items[-1]


# --- key types, curves, generation --------------------------------------------------------


def base_kty(kty: str) -> str:
    """``RSA``/``EC``/``oct`` of Azure's (case-sensitive) key types: ``RSA-HSM`` -> ``RSA``."""
    return _base_kty(kty, "kty")


def _base_kty(kty: object, name: str) -> str:
    if kty is None:
        raise JoseError(f"{name} is required")
    if not isinstance(kty, str):
        raise JoseError(f"{name} must be a string")
    base = _KTYS.get(kty)
    if base is None:
        raise JoseError(f"{name} {_show(kty)} is not supported ({_choices(tuple(_KTYS))})")
    return base


def _curve(crv: object, name: str) -> ec.EllipticCurve:
    if crv is None:
        raise JoseError(f"{name} is required")
    if not isinstance(crv, str):
        raise JoseError(f"{name} must be a string")
    curve = _jwk.CURVES.get(crv)
    if curve is None:
        raise JoseError(f"{name} {_show(crv)} is not supported ({_choices(tuple(_jwk.CURVES))})")
    return curve()


def _crv_name(curve: ec.EllipticCurve) -> str:
    crv = _CRV_OF.get(curve.name)
    if crv is None:
        raise JoseError(f"curve {curve.name} is not supported")
    return crv


def _coord_bytes(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


def _int_choice(name: str, value: object, allowed: tuple[int, ...], kty: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise JoseError(f"{name} must be an integer")
    if value not in allowed:
        raise JoseError(f"{name} {value} is not supported for {kty} keys ({_choices(allowed)})")
    return value


def _refuse(name: str, value: object, kty: str) -> None:
    if value is not None:
        raise JoseError(f"{name} is not valid for an {kty} key")


def generate(
    kty: str,
    *,
    size: int | None = None,
    crv: str | None = None,
    public_exponent: int | None = None,
) -> Private:
    """A new key with Azure's defaults: RSA 2048 (e 65537), EC P-256, oct 256 bits."""
    base = base_kty(kty)
    if base == "RSA":
        _refuse("crv", crv, base)
        bits = _int_choice("key_size", 2048 if size is None else size, _RSA_SIZES, base)
        e = 65537 if public_exponent is None else public_exponent
        e = _int_choice("public_exponent", e, _RSA_EXPONENTS, base)
        return rsa.generate_private_key(public_exponent=e, key_size=bits)
    _refuse("public_exponent", public_exponent, base)
    if base == "EC":
        _refuse("key_size", size, base)
        return ec.generate_private_key(_curve("P-256" if crv is None else crv, "crv"))
    _refuse("crv", crv, base)
    bits = _int_choice("key_size", 256 if size is None else size, _OCT_SIZES, base)
    return OctKey(os.urandom(bits // 8))


# --- JWK import / export ------------------------------------------------------------------


def _document(jwk: object) -> Mapping[str, Any]:
    if not isinstance(jwk, Mapping):
        raise JoseError("key must be a JSON object")
    return jwk


def _member(doc: Mapping[str, Any], name: str, max_bytes: int) -> bytes:
    """A base64url member (padded or not), refusing anything else by name, and over-long values
    before any arithmetic is done on them."""
    value = doc.get(name)
    if value is None:
        raise JoseError(f"key.{name} is required")
    if not isinstance(value, str):
        raise JoseError(f"key.{name} must be a string")
    text = value.rstrip("=")
    pad = len(value) - len(text)
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1 or pad not in (0, -len(text) % 4):
        raise JoseError(f"key.{name} is not valid base64url")
    if not text:
        raise JoseError(f"key.{name} is empty")
    data = _jwk.unb64url(text)
    if len(data) > max_bytes:
        raise JoseError(f"key.{name} is too long (at most {max_bytes} bytes)")
    return data


def _uint(doc: Mapping[str, Any], name: str, max_bytes: int) -> int:
    return int.from_bytes(_member(doc, name, max_bytes), "big")


def _rsa_public_numbers(doc: Mapping[str, Any]) -> rsa.RSAPublicNumbers:
    n = _uint(doc, "n", max(_RSA_SIZES) // 8 + 1)
    if n.bit_length() not in _RSA_SIZES:
        raise JoseError(
            f"key.n is a {n.bit_length()}-bit modulus; RSA keys must be {_choices(_RSA_SIZES)} bits"
        )
    e = _uint(doc, "e", 8)
    if e < 3 or e % 2 == 0:
        raise JoseError("key.e is not a valid RSA public exponent")
    return rsa.RSAPublicNumbers(e, n)


def _rsa_private_key(doc: Mapping[str, Any]) -> rsa.RSAPrivateKey:
    public = _rsa_public_numbers(doc)
    width = (public.n.bit_length() + 7) // 8
    d, p, q, dp, dq, qi = (_uint(doc, m, width) for m in ("d", "p", "q", "dp", "dq", "qi"))
    if p * q != public.n:
        raise JoseError("key.p and key.q are not the factors of key.n")
    try:
        return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public).private_key()
    except ValueError:
        raise JoseError(
            "key.d, key.dp, key.dq and key.qi are not consistent with key.n, key.e, key.p and key.q"
        ) from None


def _ec_public_key(doc: Mapping[str, Any]) -> ec.EllipticCurvePublicKey:
    curve = _curve(doc.get("crv"), "key.crv")
    width = _coord_bytes(curve)
    x, y = _uint(doc, "x", width), _uint(doc, "y", width)
    try:
        return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
    except ValueError:
        raise JoseError(f"key.x and key.y are not a point on {_crv_name(curve)}") from None


def _ec_private_key(doc: Mapping[str, Any]) -> ec.EllipticCurvePrivateKey:
    public = _ec_public_key(doc)
    d = _uint(doc, "d", _coord_bytes(public.curve))
    try:
        return ec.EllipticCurvePrivateNumbers(d, public.public_numbers()).private_key()
    except ValueError:
        raise JoseError("key.d is not the private key of key.x and key.y") from None


def _oct_key(doc: Mapping[str, Any]) -> OctKey:
    secret = _member(doc, "k", 1024)
    if len(secret) not in _OCT_BYTES:
        raise JoseError(f"key.k must be 16, 24 or 32 bytes, not {len(secret)}")
    return OctKey(secret)


def private_from_jwk(jwk: Mapping[str, Any]) -> Private:
    """The key an import request carries (Azure ``JsonWebKey`` with its private members)."""
    doc = _document(jwk)
    base = _base_kty(doc.get("kty"), "key.kty")
    if base == "RSA":
        return _rsa_private_key(doc)
    if base == "EC":
        return _ec_private_key(doc)
    return _oct_key(doc)


def public_from_jwk(jwk: Mapping[str, Any]) -> Public:
    """The public key of an RSA (``n``, ``e``) or EC (``crv``, ``x``, ``y``) JWK."""
    doc = _document(jwk)
    base = _base_kty(doc.get("kty"), "key.kty")
    if base == "RSA":
        numbers = _rsa_public_numbers(doc)
        try:
            return numbers.public_key()
        except ValueError:
            raise JoseError("key.n and key.e are not a valid RSA public key") from None
    if base == "EC":
        return _ec_public_key(doc)
    raise JoseError("key.kty oct has no public key")


def _public(key: Private | Public) -> Public:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key.public_key()
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return key
    raise JoseError("an oct key has no public key")


def public_jwk(key: Private | Public) -> dict[str, str]:
    """What a KeyBundle may show: RSA ``n``/``e``, EC ``crv``/``x``/``y``, for oct only ``kty``."""
    if isinstance(key, OctKey):
        return {"kty": "oct"}
    public = _public(key)
    if isinstance(public, ec.EllipticCurvePublicKey):
        _crv_name(public.curve)
    return _jwk.public_jwk(public)


def key_size(key: Private | Public) -> int:
    """Bits: the RSA modulus, the curve's field, the AES key."""
    if isinstance(key, OctKey):
        return len(key.secret) * 8
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return key.curve.key_size
    return key.key_size


def dump_private(key: Private) -> bytes:
    """Bytes to seal: PKCS#8 DER for RSA/EC, ``oct:`` + secret for AES (DER never starts so)."""
    if isinstance(key, OctKey):
        return _OCT_PREFIX + key.secret
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private(data: bytes) -> Private:
    """The inverse of :func:`dump_private`."""
    if data.startswith(_OCT_PREFIX):
        return OctKey(data[len(_OCT_PREFIX) :])
    try:
        key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise JoseError("sealed key material is not a PKCS#8 RSA, EC or oct key") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        _crv_name(key.curve)
        return key
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    raise JoseError("sealed key material is not a PKCS#8 RSA, EC or oct key")


# --- algorithm checks ---------------------------------------------------------------------


#: (kind, holds the private part) of each concrete key class, learnt on first sight: every
#: operation asks, and ``isinstance`` against cryptography's ABCs costs microseconds each.
_CLASSES: dict[type, tuple[str, bool]] = {}


def _classify(key: Private | Public) -> tuple[str, bool]:
    known = _CLASSES.get(type(key))
    if known is not None:
        return known
    if isinstance(key, OctKey):
        known = ("oct", True)
    elif isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        known = ("RSA", isinstance(key, rsa.RSAPrivateKey))
    elif isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        known = ("EC", isinstance(key, ec.EllipticCurvePrivateKey))
    else:
        raise JoseError("key is not an RSA, EC or oct key")
    _CLASSES[type(key)] = known
    return known


def key_kind(key: Private | Public) -> str:
    """``RSA``, ``EC`` or ``oct``."""
    return _classify(key)[0]


def _misfit(alg: str, operation: str, base: str) -> str:
    """Why ``alg`` is refused: wrong key type, wrong operation, or unknown."""
    if any(alg in algs for algs in _TABLES[operation].values()):
        return f"alg {alg} is not valid for an {base} key"
    if any(alg in algs for table in _TABLES.values() for algs in table.values()):
        return f"alg {alg} is not valid for {operation}"
    return f"alg {_show(alg)} is not supported"


def check_alg(kty: str, operation: str, alg: str, key: Private | Public | None = None) -> None:
    """Refuse ``alg`` for ``operation`` on a ``kty`` key and, given the key, for its curve or size,
    or when the operation needs the private key and ``key`` is public."""
    base = base_kty(kty)
    table = _TABLES.get(operation)
    if table is None:
        raise JoseError(f"operation {_show(operation)} is not supported")
    if not isinstance(alg, str):
        raise JoseError("alg must be a string")
    if alg not in table[base]:
        raise JoseError(_misfit(alg, operation, base))
    if key is not None:
        _check_key(base, operation, alg, key)


def _check_key(base: str, operation: str, alg: str, key: Private | Public) -> None:
    kind, private = _classify(key)
    if kind != base:
        raise JoseError(f"key is an {kind} key, not {base}")
    if operation in _PRIVATE_OPERATIONS and not private:
        raise JoseError(f"{operation} needs the private key")
    if kind == "EC":
        want, have = _ES_CURVE[alg], _crv_name(cast(ec.EllipticCurvePublicKey, key).curve)
        if want != have:
            raise JoseError(f"alg {alg} needs a {want} key, not {have}")
    bits = _AES_BITS.get(alg)
    if bits is not None and bits != key_size(key):
        raise JoseError(f"alg {alg} needs a {bits}-bit key, not {key_size(key)}-bit")


def _check_digest(alg: str, digest: bytes, key: Private | Public) -> None:
    if alg == _RSNULL:
        limit = (key_size(key) + 7) // 8 - 11
        if not 1 <= len(digest) <= limit:
            raise JoseError(f"digest must be 1 to {limit} bytes for RSNULL with this key")
        return
    if len(digest) != DIGEST_BYTES[alg]:
        raise JoseError(f"digest must be {DIGEST_BYTES[alg]} bytes for {alg}")


def _sized(name: str, value: bytes | None, size: int, alg: str) -> bytes:
    if value is None:
        raise JoseError(f"{name} is required for {alg}")
    if len(value) != size:
        raise JoseError(f"{name} must be {size} bytes for {alg}")
    return value


def _absent(alg: str, **fields: bytes | None) -> None:
    """Refuse parameters an algorithm ignores, so nobody believes e.g. CBC authenticated aad."""
    for name, value in fields.items():
        if value is not None:
            raise JoseError(f"{name} is not valid for {alg}")


# --- narrowing (check_alg has already matched the key type) -------------------------------


def _rsa_public(key: Private | Public) -> rsa.RSAPublicKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key
    raise JoseError("an RSA key is required")


def _rsa_private(key: Private | Public) -> rsa.RSAPrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    raise JoseError("an RSA private key is required")


def _ec_public(key: Private | Public) -> ec.EllipticCurvePublicKey:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key
    raise JoseError("an EC key is required")


# --- RSA encryption -----------------------------------------------------------------------


def _rsa_padding(alg: str) -> padding.AsymmetricPadding:
    if alg == "RSA1_5":
        return padding.PKCS1v15()
    digest = hashes.SHA1() if alg == "RSA-OAEP" else hashes.SHA256()
    return padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)


def _rsa_encrypt(key: rsa.RSAPublicKey, alg: str, data: bytes) -> bytes:
    overhead = {"RSA1_5": 11, "RSA-OAEP": 2 * 20 + 2, "RSA-OAEP-256": 2 * 32 + 2}[alg]
    limit = (key.key_size + 7) // 8 - overhead
    if len(data) > limit:
        raise JoseError(
            f"value is too long for {alg} with a {key.key_size}-bit key (at most {limit} bytes)"
        )
    return key.encrypt(data, _rsa_padding(alg))


def _rsa_decrypt(key: rsa.RSAPrivateKey, alg: str, data: bytes, failure: str) -> bytes:
    """One message for every failure: no padding oracle. (RSA1_5 uses OpenSSL's implicit
    rejection, so a bad ciphertext may also "decrypt" to random bytes, as on Azure.)"""
    try:
        return key.decrypt(data, _rsa_padding(alg))
    except ValueError:
        raise JoseError(failure) from None


# --- AES ----------------------------------------------------------------------------------


def _aes_encrypt(
    secret: bytes, alg: str, plaintext: bytes, iv: bytes | None, aad: bytes | None
) -> Encrypted:
    if alg in _GCM_BITS:
        nonce = os.urandom(12) if iv is None else _sized("iv", iv, 12, alg)
        sealed = AESGCM(secret).encrypt(nonce, plaintext, aad)
        return Encrypted(sealed[:-16], nonce, sealed[-16:])
    _absent(alg, aad=aad)
    vector = _sized("iv", iv, 16, alg)
    if alg in _CBC_BITS:
        if len(plaintext) % 16:
            raise JoseError(f"value must be a multiple of 16 bytes for {alg}")
        data = plaintext
    else:
        padder = blockpadding.PKCS7(128).padder()
        data = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(vector)).encryptor()
    return Encrypted(encryptor.update(data) + encryptor.finalize(), vector)


def _aes_decrypt(
    secret: bytes,
    alg: str,
    ciphertext: bytes,
    iv: bytes | None,
    aad: bytes | None,
    tag: bytes | None,
) -> bytes:
    if alg in _GCM_BITS:
        nonce, mac = _sized("iv", iv, 12, alg), _sized("tag", tag, 16, alg)
        try:
            return AESGCM(secret).decrypt(nonce, ciphertext + mac, aad)
        except InvalidTag:
            raise JoseError(_DECRYPT_FAILED) from None
    _absent(alg, aad=aad, tag=tag)
    vector = _sized("iv", iv, 16, alg)
    padded = alg in _CBCPAD_BITS
    if len(ciphertext) % 16 or (padded and not ciphertext):
        what = "a non-empty multiple" if padded else "a multiple"
        raise JoseError(f"value must be {what} of 16 bytes for {alg}")
    decryptor = Cipher(algorithms.AES(secret), modes.CBC(vector)).decryptor()
    data = decryptor.update(ciphertext) + decryptor.finalize()
    if not padded:
        return data
    unpadder = blockpadding.PKCS7(128).unpadder()
    try:
        return unpadder.update(data) + unpadder.finalize()
    except ValueError:
        raise JoseError(_DECRYPT_FAILED) from None


def _aes_wrap(secret: bytes, alg: str, cek: bytes) -> bytes:
    if alg == _CKM_WRAP_PAD:
        if not cek:
            raise JoseError(f"value must not be empty for {alg}")
        return keywrap.aes_key_wrap_with_padding(secret, cek)
    if len(cek) < 16 or len(cek) % 8:
        raise JoseError(f"value must be a multiple of 8 bytes and at least 16 bytes for {alg}")
    return keywrap.aes_key_wrap(secret, cek)


def _aes_unwrap(secret: bytes, alg: str, wrapped: bytes) -> bytes:
    try:
        if alg == _CKM_WRAP_PAD:
            return keywrap.aes_key_unwrap_with_padding(secret, wrapped)
        return keywrap.aes_key_unwrap(secret, wrapped)
    except (keywrap.InvalidUnwrap, ValueError):
        raise JoseError(_UNWRAP_FAILED) from None


# --- operations ---------------------------------------------------------------------------


def encrypt(
    key: Private | Public,
    alg: str,
    plaintext: bytes,
    *,
    iv: bytes | None = None,
    aad: bytes | None = None,
) -> Encrypted:
    """Azure ``encrypt``. AES-GCM draws a 12-byte IV unless given one; CBC needs a 16-byte IV."""
    check_alg(key_kind(key), "encrypt", alg, key)
    if isinstance(key, OctKey):
        return _aes_encrypt(key.secret, alg, plaintext, iv, aad)
    _absent(alg, iv=iv, aad=aad)
    return Encrypted(_rsa_encrypt(_rsa_public(key), alg, plaintext))


def decrypt(
    key: Private,
    alg: str,
    ciphertext: bytes,
    *,
    iv: bytes | None = None,
    aad: bytes | None = None,
    tag: bytes | None = None,
) -> bytes:
    """Azure ``decrypt``; any authentication or padding failure is one generic error."""
    check_alg(key_kind(key), "decrypt", alg, key)
    if isinstance(key, OctKey):
        return _aes_decrypt(key.secret, alg, ciphertext, iv, aad, tag)
    _absent(alg, iv=iv, aad=aad, tag=tag)
    return _rsa_decrypt(_rsa_private(key), alg, ciphertext, _DECRYPT_FAILED)


def _rsa_scheme(alg: str) -> padding.AsymmetricPadding:
    """PSS salts with the digest length (RFC 7518, and what the Azure SDK verifies locally)."""
    if alg.startswith("PS"):
        return padding.PSS(mgf=padding.MGF1(_SIGN_HASH[alg]), salt_length=padding.PSS.DIGEST_LENGTH)
    return padding.PKCS1v15()


def sign(key: Private, alg: str, digest: bytes) -> bytes:
    """Azure ``sign`` of a digest: RSA PKCS#1 v1.5/PSS, or ECDSA as raw fixed-width ``r||s``.

    RSNULL is PKCS#1 v1.5 over the raw bytes, without a DigestInfo."""
    check_alg(key_kind(key), "sign", alg, key)
    _check_digest(alg, digest, key)
    ecdsa = _ECDSA.get(alg)
    if ecdsa is not None:
        private = cast(ec.EllipticCurvePrivateKey, key)  # check_alg: an EC private key
        r, s = utils.decode_dss_signature(private.sign(digest, ecdsa))
        width = _coord_bytes(private.curve)
        return r.to_bytes(width, "big") + s.to_bytes(width, "big")
    if alg == _RSNULL:
        return _rsa_private(key).sign(digest, padding.PKCS1v15(), utils.NoDigestInfo())
    return _rsa_private(key).sign(digest, _rsa_scheme(alg), utils.Prehashed(_SIGN_HASH[alg]))


def verify(key: Private | Public, alg: str, digest: bytes, signature: bytes) -> bool:
    """Azure ``verify``: False for a wrong signature, :class:`JoseError` for bad input."""
    check_alg(key_kind(key), "verify", alg, key)
    _check_digest(alg, digest, key)
    try:
        if alg in _ES_CURVE:
            return _verify_ecdsa(_ec_public(key), alg, digest, signature)
        public = _rsa_public(key)
        if alg == _RSNULL:
            recovered = public.recover_data_from_signature(signature, padding.PKCS1v15(), None)
            return hmac.compare_digest(recovered, digest)
        public.verify(signature, digest, _rsa_scheme(alg), utils.Prehashed(_SIGN_HASH[alg]))
    except InvalidSignature:
        return False
    return True


def _verify_ecdsa(
    key: ec.EllipticCurvePublicKey, alg: str, digest: bytes, signature: bytes
) -> bool:
    """Raw ``r||s`` of the curve's fixed width; any other length is simply not a signature."""
    width = _coord_bytes(key.curve)
    if len(signature) != 2 * width:
        return False
    r, s = int.from_bytes(signature[:width], "big"), int.from_bytes(signature[width:], "big")
    key.verify(utils.encode_dss_signature(r, s), digest, ec.ECDSA(utils.Prehashed(_SIGN_HASH[alg])))
    return True


def wrap(key: Private | Public, alg: str, cek: bytes) -> bytes:
    """Azure ``wrapKey``: RSA encryption, or AES key wrap (RFC 3394, RFC 5649 for ``_PAD``)."""
    check_alg(key_kind(key), "wrapKey", alg, key)
    if isinstance(key, OctKey):
        return _aes_wrap(key.secret, alg, cek)
    return _rsa_encrypt(_rsa_public(key), alg, cek)


def unwrap(key: Private, alg: str, wrapped: bytes) -> bytes:
    """Azure ``unwrapKey``; any failure is one generic error."""
    check_alg(key_kind(key), "unwrapKey", alg, key)
    if isinstance(key, OctKey):
        return _aes_unwrap(key.secret, alg, wrapped)
    return _rsa_decrypt(_rsa_private(key), alg, wrapped, _UNWRAP_FAILED)
