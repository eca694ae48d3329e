"""JSON Web Keys (RFC 7517/7518) for EC and RSA public keys, and RFC 7638 thumbprints.

The signing keys' JWKS and key ids use it today; the keys kind (``kty`` EC/RSA, Azure's
``JsonWebKey``) will use the same conversions.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import ec, rsa

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

#: JWK ``crv`` names and their curves: the ones Azure Key Vault offers (``P-256K`` is secp256k1).
CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
    "P-256K": ec.SECP256K1,
}
_CRV = {curve().name: crv for crv, curve in CURVES.items()}
#: The members RFC 7638 hashes, per key type.
_REQUIRED = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _uint(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(length, "big"))


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The public JWK of an EC (fixed-length coordinates) or RSA key."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv = _CRV.get(key.curve.name)
        if crv is None:
            raise ValueError(f"unsupported curve {key.curve.name}")
        size = (key.curve.key_size + 7) // 8
        nums = key.public_numbers()
        return {"kty": "EC", "crv": crv, "x": _uint(nums.x, size), "y": _uint(nums.y, size)}
    rnums = key.public_numbers()
    return {"kty": "RSA", "n": _uint(rnums.n), "e": _uint(rnums.e)}


def public_key(jwk: Mapping[str, str]) -> PublicKey:
    """The public key a JWK describes; ``ValueError`` names the member that is wrong."""
    kty = jwk.get("kty")
    try:
        if kty == "EC":
            curve = CURVES.get(jwk.get("crv", ""))
            if curve is None:
                raise ValueError(f"unsupported JWK crv {jwk.get('crv')!r}")
            x = int.from_bytes(unb64url(jwk["x"]), "big")
            y = int.from_bytes(unb64url(jwk["y"]), "big")
            return ec.EllipticCurvePublicNumbers(x, y, curve()).public_key()
        if kty == "RSA":
            n = int.from_bytes(unb64url(jwk["n"]), "big")
            e = int.from_bytes(unb64url(jwk["e"]), "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
    except KeyError as missing:
        raise ValueError(f"JWK of kty {kty} lacks member {missing}") from None
    raise ValueError(f"unsupported JWK kty {kty!r}")


def thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 thumbprint (SHA-256) of a public JWK: a key id anyone derives identically."""
    members = _REQUIRED.get(jwk.get("kty", ""))
    if members is None:
        raise ValueError(f"unsupported JWK kty {jwk.get('kty')!r}")
    canonical = json.dumps({k: jwk[k] for k in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())
