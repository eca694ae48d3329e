"""Operations on HSM-held keys in a PKCS#11 token: sign, decrypt, unwrap, encrypt, wrap.

Only the PKCS#11 thread (:mod:`kvault.hsm._p11thread`) runs these functions. Input that
does not fit the key or algorithm raises :class:`kvault.crypto.keys.JoseError` before the
token is asked, with the messages :mod:`kvault.crypto.keys` uses; a token's complaint about
the data of a decrypt or unwrap becomes the same single "could not be decrypted" error (no
padding oracle); anything else the token reports is a :class:`kvault.errors.HSMError`.

RSA encrypt and wrapKey are public-key operations: they run in software (crypto.keys) on
the public key read from the token, so both plugins offer the same operations.

Two token quirks are learnt per module at first use: OAEP with SHA-256 refused (then raw RSA
in the token + OAEP decoding here), and a wrong RFC 5649 wrap of keys whose length is not a
multiple of 8 (checked against the RFC's own test vector; then rebuilt from AES blocks).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11e

from kvault.crypto import keys as jose
from kvault.crypto.keys import Encrypted, JoseError
from kvault.errors import HSMError, HSMUnavailable
from kvault.hsm import _p11mech as mech
from kvault.hsm import _p11sessions as p11s
from kvault.hsm import _p11thread as p11thread
from kvault.hsm._p11objects import Held, t_find

T = TypeVar("T")

DECRYPT_FAILED = "value could not be decrypted with this key and algorithm"
UNWRAP_FAILED = "value could not be unwrapped with this key and algorithm"

# What a token says about bad ciphertext. SoftHSM2 reports a failed GCM tag check as
# CKR_GENERAL_ERROR, so for decrypt and unwrap that counts as bad data too.
_DATA_ERRORS: tuple[type[Exception], ...] = (
    p11e.DataInvalid,
    p11e.DataLenRange,
    p11e.EncryptedDataInvalid,
    p11e.EncryptedDataLenRange,
    p11e.WrappedKeyInvalid,
    p11e.WrappedKeyLenRange,
    p11e.GeneralError,
)
_UNSUPPORTED = (p11e.ArgumentsBad, p11e.MechanismInvalid, p11e.MechanismParamInvalid)
_STALE = (p11e.ObjectHandleInvalid, p11e.KeyHandleInvalid)

#: (module, quirk) -> whether the token's own mechanism is right; absent = not tried yet.
_native: dict[tuple[str, str], bool] = {}

# RFC 5649 §6, first example: a 20-byte key under a 192-bit KEK.
_KWP_KEK = bytes.fromhex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
_KWP_KEY = bytes.fromhex("c37b7e6492584340bed12207808941155068f738")
_KWP_WRAPPED = bytes.fromhex("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a")


def _run(
    shared: p11s.SharedSession,
    label: str,
    what: str,
    op: Callable[[Held], T],
    failure: str | None = None,
) -> T:
    """Run ``op`` on the key; look it up again once if its object handle went stale (the
    token was reloaded, or the key recreated by another process). ``failure``: the message
    for data errors (decrypt, unwrap); without it they are HSMErrors like any other."""
    p11thread.require_worker_thread()
    data_errors = _DATA_ERRORS if failure is not None else ()
    for attempt in range(2):
        held = t_find(shared, label)
        try:
            return op(held)
        except _STALE:
            shared.held.pop(label, None)
            if attempt:  # stale again: the token itself went away
                raise HSMUnavailable(f"pkcs11 HSM: key {label!r} vanished during {what}") from None
        except data_errors:
            raise JoseError(failure or "") from None
        except p11e.PKCS11Error as e:
            text = (
                f"pkcs11 HSM: {what} with key {label!r} in token {shared.token_label!r} "
                f"failed: {type(e).__name__}"
            )
            raise (HSMUnavailable(text) if isinstance(e, p11s.GONE) else HSMError(text)) from None
    raise AssertionError("unreachable")


def _bytes(value: Any) -> bytes:
    return bytes(value)


def _public(held: Held, operation: str, alg: str) -> jose.Public:
    """RSA public operations run in software; EC keys have none (check_alg says so)."""
    jose.check_alg(held.kty, operation, alg)
    if held.public is None:
        raise JoseError(f"alg {alg} is not valid for an {held.kty} key")
    return held.public


# -- sign ---------------------------------------------------------------------------------


def t_sign(shared: p11s.SharedSession, label: str, alg: str, digest: bytes) -> bytes:
    def op(held: Held) -> bytes:
        spec = mech.sign_for(alg, held.kty, held.bits, held.crv, digest)
        if spec.param is None:
            return _bytes(held.key.sign(spec.prefix + digest, mechanism=spec.mechanism))
        return _bytes(held.key.sign(digest, mechanism=spec.mechanism, mechanism_param=spec.param))

    return _run(shared, label, "sign", op)


# -- RSA decrypt and unwrap -------------------------------------------------------------


def _rsa_decrypt(
    shared: p11s.SharedSession, held: Held, operation: str, alg: str, data: bytes, failure: str
) -> bytes:
    hash_name = mech.rsa_hash_for(operation, alg)
    k = (held.bits + 7) // 8
    if len(data) != k:
        raise JoseError(failure)
    if hash_name is None:
        return _bytes(held.key.decrypt(data, mechanism=Mechanism.RSA_PKCS))
    quirk = (shared.module, f"oaep-{hash_name}")
    if _native.get(quirk, True):
        param = mech.oaep_param(hash_name)
        try:
            pt = _bytes(
                held.key.decrypt(data, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=param)
            )
        except _UNSUPPORTED:
            if _native.get(quirk):
                raise
            _native[quirk] = False  # e.g. SoftHSM2 2.6.1: OAEP with SHA-1 only
        else:
            _native[quirk] = True
            return pt
    # The private-key operation still runs in the token; only the padding is removed here.
    em = _bytes(held.key.decrypt(data, mechanism=Mechanism.RSA_X_509))
    return mech.oaep_decode(em, k, hash_name, failure)


# -- AES encrypt and decrypt --------------------------------------------------------------


def t_decrypt(
    shared: p11s.SharedSession,
    label: str,
    alg: str,
    ciphertext: bytes,
    iv: bytes | None,
    aad: bytes | None,
    tag: bytes | None,
) -> bytes:
    def op(held: Held) -> bytes:
        if held.kty != "oct":
            jose.check_alg(held.kty, "decrypt", alg)
            mech.absent(alg, iv=iv, aad=aad, tag=tag)
            return _rsa_decrypt(shared, held, "decrypt", alg, ciphertext, DECRYPT_FAILED)
        spec = mech.aes_for("decrypt", alg, held.bits)
        if spec.mode == "GCM":
            nonce = mech.sized("iv", iv, mech.GCM_IV, alg)
            mac = mech.sized("tag", tag, mech.GCM_TAG, alg)
            param = pkcs11.GCMParams(nonce, aad, mech.GCM_TAG * 8)
            return _bytes(
                held.key.decrypt(
                    ciphertext + mac, mechanism=Mechanism.AES_GCM, mechanism_param=param
                )
            )
        mech.absent(alg, aad=aad, tag=tag)
        vector = mech.sized("iv", iv, mech.CBC_IV, alg)
        padded = spec.mode == "CBCPAD"
        if len(ciphertext) % 16 or (padded and not ciphertext):
            what = "a non-empty multiple" if padded else "a multiple"
            raise JoseError(f"value must be {what} of 16 bytes for {alg}")
        return _bytes(
            held.key.decrypt(ciphertext, mechanism=mech.AES_MECH[spec.mode], mechanism_param=vector)
        )

    return _run(shared, label, "decrypt", op, DECRYPT_FAILED)


def t_encrypt(
    shared: p11s.SharedSession,
    label: str,
    alg: str,
    plaintext: bytes,
    iv: bytes | None,
    aad: bytes | None,
) -> Encrypted:
    def op(held: Held) -> Encrypted:
        if held.kty != "oct":
            return jose.encrypt(_public(held, "encrypt", alg), alg, plaintext, iv=iv, aad=aad)
        spec = mech.aes_for("encrypt", alg, held.bits)
        if spec.mode == "GCM":
            nonce = os.urandom(mech.GCM_IV) if iv is None else mech.sized("iv", iv, 12, alg)
            param = pkcs11.GCMParams(nonce, aad, mech.GCM_TAG * 8)
            out = _bytes(
                held.key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=param)
            )
            cut = len(out) - mech.GCM_TAG
            return Encrypted(out[:cut], nonce, out[cut:])
        mech.absent(alg, aad=aad)
        vector = mech.sized("iv", iv, mech.CBC_IV, alg)
        if spec.mode == "CBC" and len(plaintext) % 16:
            raise JoseError(f"value must be a multiple of 16 bytes for {alg}")
        out = _bytes(
            held.key.encrypt(plaintext, mechanism=mech.AES_MECH[spec.mode], mechanism_param=vector)
        )
        return Encrypted(out, vector)

    return _run(shared, label, "encrypt", op)


# -- key wrap -------------------------------------------------------------------------------


def _secret_object(shared: p11s.SharedSession, value: bytes) -> Any:
    """A session object holding ``value`` so C_WrapKey can wrap it; destroyed right after
    use (and a session object would go with the session anyway)."""
    return shared.session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
            Attribute.VALUE: value,
            Attribute.TOKEN: False,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: False,
            Attribute.EXTRACTABLE: True,
        }
    )


def _native_kwp(shared: p11s.SharedSession) -> bool:
    """Whether the token's RFC 5649 wrap is right for lengths that are not a multiple of 8."""
    quirk = (shared.module, "kwp-unaligned")
    if quirk not in _native:
        kek: Any = shared.session.create_object(
            {
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: KeyType.AES,
                Attribute.VALUE: _KWP_KEK,
                Attribute.TOKEN: False,
                Attribute.WRAP: True,
            }
        )
        key = _secret_object(shared, _KWP_KEY)
        try:
            _native[quirk] = kek.wrap_key(key, mechanism=Mechanism.AES_KEY_WRAP_PAD) == _KWP_WRAPPED
        except p11e.PKCS11Error:
            _native[quirk] = False
        finally:
            key.destroy()
            kek.destroy()
    return _native[quirk]


def _aes_wrap(shared: p11s.SharedSession, held: Held, alg: str, key: bytes) -> bytes:
    spec = mech.aes_for("wrapKey", alg, held.bits)
    if spec.mode == "KWP":
        if not key:
            raise JoseError(f"value must not be empty for {alg}")
        if len(key) % 8 and not _native_kwp(shared):

            def block(data: bytes) -> bytes:
                return _bytes(held.key.encrypt(data, mechanism=Mechanism.AES_ECB))

            return mech.kwp_wrap(block, key)
    elif len(key) < 16 or len(key) % 8:
        # RFC 3394 wraps whole 64-bit blocks; a token might silently pad.
        raise JoseError(f"value must be a multiple of 8 bytes and at least 16 bytes for {alg}")
    obj = _secret_object(shared, key)
    try:
        return _bytes(held.key.wrap_key(obj, mechanism=mech.AES_MECH[spec.mode]))
    finally:
        obj.destroy()


def t_wrap(shared: p11s.SharedSession, label: str, alg: str, key: bytes) -> bytes:
    def op(held: Held) -> bytes:
        if held.kty != "oct":
            return jose.wrap(_public(held, "wrapKey", alg), alg, key)
        return _aes_wrap(shared, held, alg, key)

    return _run(shared, label, "wrapKey", op)


def t_unwrap(shared: p11s.SharedSession, label: str, alg: str, wrapped: bytes) -> bytes:
    def op(held: Held) -> bytes:
        if held.kty != "oct":
            jose.check_alg(held.kty, "unwrapKey", alg)
            return _rsa_decrypt(shared, held, "unwrapKey", alg, wrapped, UNWRAP_FAILED)
        spec = mech.aes_for("unwrapKey", alg, held.bits)
        if len(wrapped) < 16 or len(wrapped) % 8:
            raise JoseError(UNWRAP_FAILED)
        # Azure's unwrapKey returns the key bytes: unwrap into a readable session object.
        obj = held.key.unwrap_key(
            ObjectClass.SECRET_KEY,
            KeyType.GENERIC_SECRET,
            wrapped,
            mechanism=mech.AES_MECH[spec.mode],
            store=False,
            capabilities=0,
            template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
        )
        try:
            return _bytes(obj[Attribute.VALUE])
        finally:
            obj.destroy()

    return _run(shared, label, "unwrapKey", op, UNWRAP_FAILED)
