"""The PKCS#11 attributes kvault gives HSM-held key objects, generated or imported.

Private and secret halves are token objects that are sensitive, non-extractable, private
and unmodifiable: nothing can read their value through PKCS#11 or wrap them out. Public
halves are token objects too, so an operator listing the token sees whole pairs. Each key
gets only the capabilities its operations need (RSA: sign, decrypt; EC: sign; AES:
encrypt, decrypt, wrap, unwrap).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from kvault.crypto import jwk
from kvault.crypto.keys import JoseError, OctKey, Private
from kvault.hsm._p11mech import CURVES

PROTECTED: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.MODIFIABLE: False,
}
PUBLIC: dict[Attribute, Any] = {Attribute.TOKEN: True, Attribute.MODIFIABLE: False}
_SIGN, _VERIFY = MechanismFlag.SIGN, MechanismFlag.VERIFY
_CRYPT = MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT
#: python-pkcs11 capabilities for generated keys (it sets the matching CKA_* flags).
CAPABILITIES = {
    "RSA": _SIGN | _VERIFY | _CRYPT,
    "EC": _SIGN | _VERIFY,
    "oct": _CRYPT | MechanismFlag.WRAP | MechanismFlag.UNWRAP,
}


def ec_params(crv: str) -> bytes:
    """CKA_EC_PARAMS: the DER named-curve OID."""
    return encode_named_curve_parameters(CURVES[crv])


def big(v: int) -> bytes:
    """A PKCS#11 big integer: unsigned big-endian, no leading zeros."""
    return v.to_bytes((v.bit_length() + 7) // 8 or 1, "big")


def octet_string(data: bytes) -> bytes:
    """DER OCTET STRING (CKA_EC_POINT holds the point wrapped in one)."""
    n = len(data)
    length = bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else b"\x82" + n.to_bytes(2)
    return b"\x04" + length + data


def point_of(ec_point: bytes) -> bytes:
    """The X9.62 point inside CKA_EC_POINT (some tokens return it bare)."""
    if ec_point[:1] != b"\x04":
        return ec_point
    n = ec_point[1]
    return ec_point[2 if n < 0x80 else 2 + (n & 0x7F) :]


def _rsa(key: rsa.RSAPrivateKey) -> tuple[dict[Attribute, Any], dict[Attribute, Any]]:
    nums = key.private_numbers()
    pub = nums.public_numbers
    common = {
        Attribute.KEY_TYPE: KeyType.RSA,
        Attribute.MODULUS: big(pub.n),
        Attribute.PUBLIC_EXPONENT: big(pub.e),
    }
    private = {
        **common,
        Attribute.CLASS: ObjectClass.PRIVATE_KEY,
        Attribute.PRIVATE_EXPONENT: big(nums.d),
        Attribute.PRIME_1: big(nums.p),
        Attribute.PRIME_2: big(nums.q),
        Attribute.EXPONENT_1: big(nums.dmp1),
        Attribute.EXPONENT_2: big(nums.dmq1),
        Attribute.COEFFICIENT: big(nums.iqmp),
        Attribute.SIGN: True,
        Attribute.DECRYPT: True,
    }
    public = {**common, Attribute.CLASS: ObjectClass.PUBLIC_KEY}
    return private, public | {Attribute.VERIFY: True, Attribute.ENCRYPT: True}


def _ec(
    key: ec.EllipticCurvePrivateKey, crv: str
) -> tuple[dict[Attribute, Any], dict[Attribute, Any]]:
    width = (key.curve.key_size + 7) // 8
    point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    common = {Attribute.KEY_TYPE: KeyType.EC, Attribute.EC_PARAMS: ec_params(crv)}
    private = {
        **common,
        Attribute.CLASS: ObjectClass.PRIVATE_KEY,
        Attribute.VALUE: key.private_numbers().private_value.to_bytes(width, "big"),
        Attribute.SIGN: True,
    }
    public = {**common, Attribute.CLASS: ObjectClass.PUBLIC_KEY}
    return private, public | {Attribute.EC_POINT: octet_string(point), Attribute.VERIFY: True}


def for_import(
    key: Private,
) -> tuple[str, str | None, dict[Attribute, Any], dict[Attribute, Any] | None]:
    """(kty, crv, private template, public template or None) to C_CreateObject ``key``;
    :data:`PROTECTED`/:data:`PUBLIC` and the names are added by the caller."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA", None, *_rsa(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        crv = next((c for c, curve in jwk.CURVES.items() if isinstance(key.curve, curve)), "")
        if crv not in CURVES:
            raise JoseError(f"curve {key.curve.name} is not supported")
        return "EC", crv, *_ec(key, crv)
    if isinstance(key, OctKey):  # its constructor has checked the AES key size
        secret = {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.VALUE: key.secret,
            Attribute.ENCRYPT: True,
            Attribute.DECRYPT: True,
            Attribute.WRAP: True,
            Attribute.UNWRAP: True,
        }
        return "oct", None, secret, None
    raise JoseError(f"cannot import a key of type {type(key).__name__}")
