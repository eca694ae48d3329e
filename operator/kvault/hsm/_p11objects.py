"""HSM-held key objects in a PKCS#11 token: create, import, find (cached), destroy.

Keys are token objects labelled with the caller's label and ``CKA_ID`` = a digest of it, so
a restarted kvault finds them again; the handle the caller stores is just the encoded label.
Their attributes (sensitive, non-extractable...) are in :mod:`kvault.hsm._p11templates`.

Lookups match label *and* id: a handle can never address an object kvault did not create
for a key (a root key, say), even if a handle were forged.

Only the PKCS#11 thread (:mod:`kvault.hsm._p11thread`) runs these functions.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import Attribute, KeyType
from pkcs11 import exceptions as p11e

from kvault.crypto import jwk
from kvault.crypto import keys as jose
from kvault.crypto.keys import Private
from kvault.errors import HSMError, HSMUnavailable, IntegrityError
from kvault.hsm import _p11sessions as p11s
from kvault.hsm import _p11templates as tpl
from kvault.hsm import _p11thread as p11thread
from kvault.hsm._p11mech import CURVES

HANDLE_PREFIX = b"p11:"
_ID_INFO = b"kvault hsm key\x00"

#: CKA_EC_PARAMS (DER named curve) -> JWK crv.
_CRV_BY_PARAMS = {tpl.ec_params(crv): crv for crv in CURVES}


@dataclass(frozen=True, slots=True)
class Held:
    """A found key: its private/secret object and what the algorithms need to know."""

    label: str
    kty: str  # "RSA" | "EC" | "oct"
    bits: int  # RSA modulus, EC curve or AES key size
    crv: str | None
    key: Any  # pkcs11 PrivateKey / SecretKey (their stubs lack the operation mixins)
    public: jose.Public | None  # RSA: for the public operations (encrypt, wrapKey) in software


def handle_for(label: str) -> bytes:
    return HANDLE_PREFIX + label.encode("utf-8")


def label_of(handle: bytes) -> str:
    """The label inside a handle; IntegrityError for a foreign or mangled one."""
    if not handle.startswith(HANDLE_PREFIX):
        raise IntegrityError("not a pkcs11 HSM key handle (made by another HSM plugin?)")
    try:
        return handle[len(HANDLE_PREFIX) :].decode("utf-8")
    except UnicodeDecodeError:
        raise IntegrityError("malformed pkcs11 HSM key handle") from None


def object_id(label: str) -> bytes:
    return hashlib.sha256(_ID_INFO + label.encode("utf-8")).digest()[:16]


def _device_error(what: str, shared: p11s.SharedSession, e: Exception) -> HSMError | HSMUnavailable:
    text = f"pkcs11 HSM: {what} in token {shared.token_label!r} failed: {type(e).__name__}"
    return HSMUnavailable(text) if isinstance(e, p11s.GONE) else HSMError(text)


# -- public JWK ---------------------------------------------------------------------------


def _public_jwk(held: Held, public: Any) -> dict[str, str]:
    """The JWK members crypto.keys.public_jwk gives, from the token's public half."""
    if held.public is not None:  # RSA
        return jose.public_jwk(held.public)
    if held.crv is not None:
        point = tpl.point_of(public[Attribute.EC_POINT])
        curve = jwk.CURVES[held.crv]()
        return jose.public_jwk(ec.EllipticCurvePublicKey.from_encoded_point(curve, point))
    return {"kty": "oct"}


# -- create and import ------------------------------------------------------------------


def _refuse_duplicate(shared: p11s.SharedSession, label: str) -> None:
    if _objects(shared, label):
        raise HSMError(f"pkcs11 HSM: token {shared.token_label!r} already holds a key {label!r}")


def t_create(
    shared: p11s.SharedSession,
    label: str,
    kty: str,
    bits: int,
    crv: str | None,
    exponent: int,
) -> dict[str, str]:
    """Generate the key in the token (arguments checked by :func:`_p11mech.check_spec`)."""
    p11thread.require_worker_thread()
    _refuse_duplicate(shared, label)
    common: dict[str, Any] = {
        "id": object_id(label),
        "label": label,
        "store": True,
        "capabilities": tpl.CAPABILITIES[kty],
        "private_template": tpl.PROTECTED,
    }
    pub: Any
    priv: Any
    try:
        if kty == "RSA":
            public_template = {**tpl.PUBLIC, Attribute.PUBLIC_EXPONENT: tpl.big(exponent)}
            pub, priv = shared.session.generate_keypair(
                KeyType.RSA, bits, public_template=public_template, **common
            )
        elif kty == "EC":
            assert crv is not None
            params = shared.session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: tpl.ec_params(crv)}, local=True
            )
            pub, priv = params.generate_keypair(public_template=tpl.PUBLIC, **common)
        else:
            pub = None
            del common["private_template"]
            priv = shared.session.generate_key(KeyType.AES, bits, template=tpl.PROTECTED, **common)
    except p11e.PKCS11Error as e:
        raise _device_error(f"creating key {label!r}", shared, e) from None
    held = shared.held[label] = _held(label, kty, priv, crv)
    return _public_jwk(held, pub)


def t_import(shared: p11s.SharedSession, label: str, key: Private) -> dict[str, str]:
    """Create the key's objects from its private components (import with Hsm: true)."""
    p11thread.require_worker_thread()
    kty, crv, private, public = tpl.for_import(key)
    _refuse_duplicate(shared, label)
    names = {Attribute.LABEL: label, Attribute.ID: object_id(label)}
    try:
        priv = shared.session.create_object({**private, **tpl.PROTECTED, **names})
        if public is not None:
            shared.session.create_object({**public, **tpl.PUBLIC, **names})
    except p11e.PKCS11Error as e:
        _t_destroy_quietly(shared, label)
        raise _device_error(f"importing key {label!r}", shared, e) from None
    shared.held[label] = _held(label, kty, priv, crv)
    return jose.public_jwk(key)


# -- find and destroy ---------------------------------------------------------------------


def _objects(shared: p11s.SharedSession, label: str) -> list[Any]:
    template = {Attribute.LABEL: label, Attribute.ID: object_id(label)}
    return list(shared.session.get_objects(template))


def _held(label: str, kty: str, key: Any, crv: str | None) -> Held:
    """What operations need to know about a private/secret object (read once, cached)."""
    if kty == "RSA":
        attrs = key.get_attributes([Attribute.MODULUS, Attribute.PUBLIC_EXPONENT])
        n = int.from_bytes(attrs[Attribute.MODULUS], "big")
        e = int.from_bytes(attrs[Attribute.PUBLIC_EXPONENT], "big")
        return Held(label, kty, n.bit_length(), None, key, rsa.RSAPublicNumbers(e, n).public_key())
    if kty == "EC":
        assert crv is not None
        return Held(label, kty, jwk.CURVES[crv]().key_size, crv, key, None)
    return Held(label, kty, int(key[Attribute.VALUE_LEN]) * 8, None, key, None)


def t_find(shared: p11s.SharedSession, label: str) -> Held:
    """The cached key, else the token's (HSMError if it is not there)."""
    cached: Held | None = shared.held.get(label)
    if cached is not None:
        return cached
    try:
        found = [
            o
            for o in _objects(shared, label)
            if isinstance(o, pkcs11.PrivateKey | pkcs11.SecretKey)
        ]
    except p11e.PKCS11Error as e:
        raise _device_error(f"looking up key {label!r}", shared, e) from None
    if not found:
        raise p11s.NotInToken(
            f"pkcs11 HSM: key {label!r} is not in token {shared.token_label!r} "
            "(destroyed, or kvault is connected to another token)"
        )
    if len(found) > 1:
        raise HSMError(f"pkcs11 HSM: token {shared.token_label!r} holds several keys {label!r}")
    obj = found[0]
    key_type = obj.key_type
    if key_type == KeyType.RSA:
        held = _held(label, "RSA", obj, None)
    elif key_type == KeyType.EC:
        crv = _CRV_BY_PARAMS.get(obj[Attribute.EC_PARAMS])
        if crv is None:
            raise HSMError(f"pkcs11 HSM: key {label!r} is on a curve kvault does not know")
        held = _held(label, "EC", obj, crv)
    elif key_type == KeyType.AES:
        held = _held(label, "oct", obj, None)
    else:
        raise HSMError(f"pkcs11 HSM: key {label!r} has unexpected type {key_type!r}")
    shared.held[label] = held
    return held


def t_exists(shared: p11s.SharedSession, label: str) -> bool:
    """Whether the token still holds key ``label`` (a device failure raises HSMError)."""
    if label in shared.held:
        return True
    try:
        return any(
            isinstance(o, pkcs11.PrivateKey | pkcs11.SecretKey) for o in _objects(shared, label)
        )
    except p11e.PKCS11Error as e:
        raise _device_error(f"looking up key {label!r}", shared, e) from None


def t_destroy(shared: p11s.SharedSession, label: str) -> None:
    """Destroy every object of the key (both halves of a pair); idempotent."""
    p11thread.require_worker_thread()
    shared.held.pop(label, None)
    try:
        for obj in _objects(shared, label):
            obj.destroy()
    except p11e.PKCS11Error as e:
        raise _device_error(f"destroying key {label!r}", shared, e) from None


def _t_destroy_quietly(shared: p11s.SharedSession, label: str) -> None:
    with contextlib.suppress(HSMError):
        t_destroy(shared, label)
