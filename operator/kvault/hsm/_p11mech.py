"""Azure algorithm names -> PKCS#11 mechanisms, and the byte-level glue around them.

Pure functions and tables (no token access). Which algorithm fits which key type and
operation is :func:`kvault.crypto.keys.check_alg`'s decision; the checks here add what it
would check on a key object (curve, AES size, digest length) with the same messages, so both
plugins refuse alike. The glue exists because results must be byte-identical to
:mod:`kvault.crypto.keys`:

* ``RS*`` signs with ``CKM_RSA_PKCS`` over a DER ``DigestInfo`` built here (the caller passes
  a digest, and the hash-and-sign mechanisms would hash it again);
* ``RSA-OAEP-256`` falls back to a raw RSA decryption (``CKM_RSA_X_509``, still inside the
  HSM) plus OAEP decoding here when the token refuses OAEP with SHA-256 (SoftHSM2 2.6.1
  allows only SHA-1);
* RFC 5649 wrap (``CKM_AES_KEY_WRAP_PAD``) of a key whose length is not a multiple of 8 is
  rebuilt from single AES blocks when the token's own is wrong (SoftHSM2 2.6.1 zero-pads the
  key first and records the padded length).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from pkcs11 import MGF, Mechanism

from kvault.crypto.keys import DIGEST_BYTES, JoseError, base_kty, check_alg

#: JWK ``crv`` -> the curve name python-pkcs11 encodes into ``CKA_EC_PARAMS``.
CURVES = {"P-256": "secp256r1", "P-384": "secp384r1", "P-521": "secp521r1", "P-256K": "secp256k1"}
RSA_SIZES = (2048, 3072, 4096)
RSA_EXPONENTS = (3, 65537)
AES_SIZES = (128, 192, 256)

# DER DigestInfo prefixes (RFC 8017 §9.2 note 1), followed by the digest itself.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_HASH_MECH = {
    "sha1": Mechanism.SHA_1,
    "sha256": Mechanism.SHA256,
    "sha384": Mechanism.SHA384,
    "sha512": Mechanism.SHA512,
}
_MGF = {"sha1": MGF.SHA1, "sha256": MGF.SHA256, "sha384": MGF.SHA384, "sha512": MGF.SHA512}
_HASH_LEN = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}


@dataclass(frozen=True, slots=True)
class Sign:
    """How to sign for one ``alg``: ``prefix + digest`` under ``mechanism`` and ``param``."""

    mechanism: Mechanism
    param: tuple[Mechanism, MGF, int] | None = None
    prefix: bytes = b""
    crv: str | None = None


def _ps(h: str) -> Sign:
    return Sign(Mechanism.RSA_PKCS_PSS, param=(_HASH_MECH[h], _MGF[h], _HASH_LEN[h]))


SIGN: dict[str, Sign] = {
    "RS256": Sign(Mechanism.RSA_PKCS, prefix=_DIGEST_INFO["sha256"]),
    "RS384": Sign(Mechanism.RSA_PKCS, prefix=_DIGEST_INFO["sha384"]),
    "RS512": Sign(Mechanism.RSA_PKCS, prefix=_DIGEST_INFO["sha512"]),
    "PS256": _ps("sha256"),
    "PS384": _ps("sha384"),
    "PS512": _ps("sha512"),
    "RSNULL": Sign(Mechanism.RSA_PKCS),
    "ES256": Sign(Mechanism.ECDSA, crv="P-256"),
    "ES256K": Sign(Mechanism.ECDSA, crv="P-256K"),
    "ES384": Sign(Mechanism.ECDSA, crv="P-384"),
    "ES512": Sign(Mechanism.ECDSA, crv="P-521"),
}

#: RSA decrypt and unwrap: alg -> OAEP hash name, or None for PKCS#1 v1.5.
RSA_OAEP_HASH: dict[str, str | None] = {
    "RSA1_5": None,
    "RSA-OAEP": "sha1",
    "RSA-OAEP-256": "sha256",
}


def oaep_param(hash_name: str) -> tuple[Mechanism, MGF, None]:
    """``CK_RSA_PKCS_OAEP_PARAMS``: hash, MGF1 with the same hash, no label (as JOSE)."""
    return (_HASH_MECH[hash_name], _MGF[hash_name], None)


@dataclass(frozen=True, slots=True)
class Aes:
    """An AES algorithm: its mode and the key size it requires (None: any AES key)."""

    mode: str  # "GCM", "CBC", "CBCPAD", "KW", "KWP"
    bits: int | None


AES: dict[str, Aes] = {
    "CKM_AES_KEY_WRAP": Aes("KW", None),
    "CKM_AES_KEY_WRAP_PAD": Aes("KWP", None),
}
for _bits in AES_SIZES:
    AES |= {f"A{_bits}{m}": Aes(m, _bits) for m in ("GCM", "CBC", "CBCPAD", "KW")}

AES_MECH = {
    "GCM": Mechanism.AES_GCM,
    "CBC": Mechanism.AES_CBC,
    "CBCPAD": Mechanism.AES_CBC_PAD,
    "KW": Mechanism.AES_KEY_WRAP,
    "KWP": Mechanism.AES_KEY_WRAP_PAD,
}
GCM_IV = 12
GCM_TAG = 16
CBC_IV = 16


def _choice(name: str, value: int, allowed: tuple[int, ...], kty: str) -> int:
    if value not in allowed:
        listed = ", ".join(map(str, allowed[:-1])) + f" or {allowed[-1]}"
        raise JoseError(f"{name} {value} is not supported for {kty} keys ({listed})")
    return value


def _refuse(name: str, value: object, kty: str) -> None:
    if value is not None:
        raise JoseError(f"{name} is not valid for an {kty} key")


def check_spec(
    kty: str, size: int | None, crv: str | None, exponent: int | None
) -> tuple[str, int, str | None, int]:
    """Check generation parameters as :func:`kvault.crypto.keys.generate` does, before the
    token is asked: (base kty, bits, crv, public exponent) with Azure's defaults filled in."""
    base = base_kty(kty)
    if base == "RSA":
        _refuse("crv", crv, base)
        bits = _choice("key_size", 2048 if size is None else size, RSA_SIZES, base)
        e = _choice("public_exponent", 65537 if exponent is None else exponent, RSA_EXPONENTS, base)
        return base, bits, None, e
    _refuse("public_exponent", exponent, base)
    if base == "EC":
        _refuse("key_size", size, base)
        crv = "P-256" if crv is None else crv
        if crv not in CURVES:
            raise JoseError(f"crv {crv[:40]!r} is not supported ({', '.join(CURVES)})")
        return base, 0, crv, 0
    _refuse("crv", crv, base)
    return base, _choice("key_size", 256 if size is None else size, AES_SIZES, base), None, 0


def _unsupported(alg: str) -> JoseError:
    return JoseError(f"alg {alg} is not supported by the pkcs11 HSM")


def sign_for(alg: str, kty: str, bits: int, crv: str | None, digest: bytes) -> Sign:
    """The signing recipe for ``alg`` on this key, after the checks crypto.keys makes."""
    check_alg(kty, "sign", alg)
    spec = SIGN.get(alg)
    if spec is None:
        raise _unsupported(alg)
    if spec.crv is not None and spec.crv != crv:
        raise JoseError(f"alg {alg} needs a {spec.crv} key, not {crv}")
    if alg == "RSNULL":
        limit = (bits + 7) // 8 - 11
        if not 1 <= len(digest) <= limit:
            raise JoseError(f"digest must be 1 to {limit} bytes for RSNULL with this key")
    elif len(digest) != DIGEST_BYTES[alg]:
        raise JoseError(f"digest must be {DIGEST_BYTES[alg]} bytes for {alg}")
    return spec


def aes_for(operation: str, alg: str, bits: int) -> Aes:
    """The AES algorithm ``alg`` for ``operation`` on a key of ``bits``."""
    check_alg("oct", operation, alg)
    spec = AES.get(alg)
    if spec is None:
        raise _unsupported(alg)
    if spec.bits is not None and spec.bits != bits:
        raise JoseError(f"alg {alg} needs a {spec.bits}-bit key, not {bits}-bit")
    return spec


def rsa_hash_for(operation: str, alg: str) -> str | None:
    check_alg("RSA", operation, alg)
    if alg not in RSA_OAEP_HASH:
        raise _unsupported(alg)
    return RSA_OAEP_HASH[alg]


def sized(name: str, value: bytes | None, size: int, alg: str) -> bytes:
    if value is None:
        raise JoseError(f"{name} is required for {alg}")
    if len(value) != size:
        raise JoseError(f"{name} must be {size} bytes for {alg}")
    return value


def absent(alg: str, **fields: bytes | None) -> None:
    """Refuse parameters an algorithm ignores (as crypto.keys does)."""
    for name, value in fields.items():
        if value is not None:
            raise JoseError(f"{name} is not valid for {alg}")


# -- RFC 5649 from single AES blocks ----------------------------------------------------------


def kwp_wrap(encrypt_block: Callable[[bytes], bytes], key: bytes) -> bytes:
    """RFC 5649 wrap of ``key``, given ``encrypt_block`` (AES of one 16-byte block, in the
    HSM): RFC 3394's index-based wrapping (§2.2.1) with RFC 5649's alternative IV."""
    aiv = bytes.fromhex("a65959a6") + len(key).to_bytes(4, "big")
    padded = key + b"\0" * (-len(key) % 8)
    if len(padded) == 8:
        return encrypt_block(aiv + padded)
    a = aiv
    r = [padded[i : i + 8] for i in range(0, len(padded), 8)]
    n = len(r)
    for j in range(6):
        for i in range(n):
            b = encrypt_block(a + r[i])
            a = (int.from_bytes(b[:8], "big") ^ (n * j + i + 1)).to_bytes(8, "big")
            r[i] = b[8:]
    return a + b"".join(r)


# -- OAEP decoding (RFC 8017 §7.1.2 step 3) -----------------------------------------------


def _mgf1(seed: bytes, length: int, hash_name: str) -> bytes:
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.new(hash_name, seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def oaep_decode(em: bytes, k: int, hash_name: str, failure: str) -> bytes:
    """Decode the raw RSA result ``em`` for a ``k``-byte modulus, empty label. Every check
    runs before the single error (message ``failure``), so a caller learns only "invalid"."""
    h_len = _HASH_LEN[hash_name]
    em = em.rjust(k, b"\0")
    if len(em) != k or k < 2 * h_len + 2:
        raise JoseError(failure)
    masked_seed, masked_db = em[1 : 1 + h_len], em[1 + h_len :]
    seed = _xor(masked_seed, _mgf1(masked_db, h_len, hash_name))
    db = _xor(masked_db, _mgf1(seed, k - h_len - 1, hash_name))
    good = hmac.compare_digest(db[:h_len], hashlib.new(hash_name, b"").digest()) & (em[0] == 0)
    # The first non-zero byte after lHash must be 0x01: find it without stopping early.
    rest = db[h_len:]
    index = 0
    looking = 1
    bad = 0
    for pos, byte in enumerate(rest):
        is_one, is_zero = int(byte == 1), int(byte == 0)
        index |= pos * (looking & is_one)
        bad |= looking & (1 - is_one) & (1 - is_zero)
        looking &= is_zero
    if not good or looking or bad:
        raise JoseError(failure)
    return rest[index + 1 :]
