"""Compact JWS (RFC 7515) with ES256 only: the few lines we need, instead of a JWT library.

Kept tiny and strict on purpose: one algorithm, so there is no ``alg`` confusion to defend
against, and error messages we control (they name the reason, never the token).
"""

from __future__ import annotations

import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from kvault.crypto import jwk
from kvault.crypto.jwk import b64url as b64url
from kvault.crypto.jwk import unb64url as unb64url
from kvault.errors import Unauthenticated

ALG = "ES256"
_ECDSA = ec.ECDSA(hashes.SHA256())
#: Longer bearer tokens are refused before any parsing (ours are < 1 KiB, SA tokens ~1-2 KiB).
MAX_TOKEN_LENGTH = 16384


def digest(token: str) -> bytes:
    """Cache key of a token: its SHA-256, so no cache ever holds a usable credential."""
    return hashlib.sha256(token.encode()).digest()


def _json_part(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(unb64url(part))
    except (ValueError, binascii.Error):
        raise Unauthenticated(
            f"malformed token: its {what} is not base64url JSON", "MalformedToken"
        ) from None
    if not isinstance(value, dict):
        raise Unauthenticated(f"malformed token: its {what} is not a JSON object", "MalformedToken")
    return value


def split(token: str) -> tuple[str, str, str]:
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("malformed token: too long", "MalformedToken")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise Unauthenticated(
            "malformed token: not a compact JWT (three dot-separated parts)", "MalformedToken"
        )
    return parts[0], parts[1], parts[2]


def header(token: str) -> dict[str, Any]:
    return _json_part(split(token)[0], "header")


def claims_unverified(token: str) -> dict[str, Any]:
    """The payload without checking the signature: only for cache bounds and routing."""
    return _json_part(split(token)[1], "payload")


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The signing key as published in the JWKS (P-256)."""
    return jwk.public_jwk(key)


def thumbprint(key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint: a key id that every replica derives identically."""
    return jwk.thumbprint(jwk.public_jwk(key))


def encode_header(kid: str) -> str:
    """The header segment for ``kid``: fixed bytes, so a verifier can match it as a string."""
    return b64url(
        json.dumps({"alg": ALG, "kid": kid, "typ": "JWT"}, separators=(",", ":")).encode()
    )


def sign(key: ec.EllipticCurvePrivateKey, kid: str, claims: dict[str, Any]) -> str:
    signing_input = (
        encode_header(kid) + "." + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), _ECDSA))
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def verify_signature(token: str, key: ec.EllipticCurvePublicKey) -> None:
    """Raise :class:`Unauthenticated` unless ``token``'s ES256 signature is ``key``'s."""
    head, payload, sig = split(token)
    try:
        raw = unb64url(sig)
    except (ValueError, binascii.Error):
        raise Unauthenticated(
            "malformed token: signature is not base64url", "MalformedToken"
        ) from None
    if len(raw) != 64:
        raise Unauthenticated("bad signature: not an ES256 signature", "BadSignature")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        key.verify(der, f"{head}.{payload}".encode("ascii"), _ECDSA)
    except (InvalidSignature, UnicodeEncodeError):
        raise Unauthenticated("bad signature", "BadSignature") from None
