"""The pkcs11 plugin's HSM-held keys (:class:`kvault.hsm.keys.HsmKeys`).

Keys are token objects found by label (:mod:`kvault.hsm._p11objects`); algorithms map to
mechanisms in :mod:`kvault.hsm._p11mech` and run in :mod:`kvault.hsm._p11ops`. The handle is
``b"p11:" + label``: it names the object, holds no key material, and a restarted kvault (or
another replica logged into the same token) finds the object by it.

A handle whose object is gone raises :class:`kvault.errors.HSMError` ("not in token"); a
handle made by another plugin raises :class:`kvault.errors.IntegrityError`; a token that
went away raises :class:`kvault.errors.HSMUnavailable` (the plugin reconnects when it is
back: every call goes through its ``_call``).

Every call runs on the single PKCS#11 thread (:mod:`kvault.hsm._p11thread`): SoftHSM2 under
python-pkcs11 crashes on concurrent calls, and python-pkcs11 cannot ask for OS locking. A
pool would not pay anyway: measured on 2 cores, ES256 signing reaches ~9-12k/s here against
~18k/s for the software plugin, but costs the event loop ~5 us per sign instead of ~45 us
(SoftHSM2 spends ~100 us per ECDSA sign on the other core), so a loop-bound REST server
signs at 0.8x or better of the software plugin's rate. Generating an RSA key blocks the
thread (and every other PKCS#11 call) for up to seconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from kvault.crypto.keys import Encrypted, Private
from kvault.hsm import _p11mech as p11mech
from kvault.hsm import _p11objects as p11o
from kvault.hsm import _p11ops as p11ops
from kvault.hsm.keys import check_label

T = TypeVar("T")


class _Call(Protocol):
    """The plugin's ``_call``: ``fn(session, *args)`` on the PKCS#11 thread."""

    def __call__(self, fn: Callable[..., T], *args: Any) -> Awaitable[T]: ...


class Pkcs11Keys:
    """Keys generated and used inside the plugin's token; see the module docstring."""

    def __init__(self, call: _Call) -> None:
        #: The plugin's: runs ``fn(session, *args)`` on the PKCS#11 thread, reconnecting once
        #: if the token went away; HSMError while the plugin is not open.
        self._call = call

    async def create_key(
        self,
        label: str,
        kty: str,
        *,
        size: int | None = None,
        crv: str | None = None,
        public_exponent: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        check_label(label)
        base, bits, crv, exponent = p11mech.check_spec(kty, size, crv, public_exponent)
        jwk = await self._call(p11o.t_create, label, base, bits, crv, exponent)
        return p11o.handle_for(label), jwk

    async def import_key(self, label: str, key: Private) -> tuple[bytes, dict[str, str]]:
        check_label(label)
        jwk = await self._call(p11o.t_import, label, key)
        return p11o.handle_for(label), jwk

    async def sign(self, handle: bytes, alg: str, digest: bytes) -> bytes:
        label = p11o.label_of(handle)
        return await self._call(p11ops.t_sign, label, alg, digest)

    async def decrypt(
        self,
        handle: bytes,
        alg: str,
        ciphertext: bytes,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
        tag: bytes | None = None,
    ) -> bytes:
        label = p11o.label_of(handle)
        return await self._call(p11ops.t_decrypt, label, alg, ciphertext, iv, aad, tag)

    async def unwrap(self, handle: bytes, alg: str, wrapped: bytes) -> bytes:
        label = p11o.label_of(handle)
        return await self._call(p11ops.t_unwrap, label, alg, wrapped)

    async def encrypt(
        self,
        handle: bytes,
        alg: str,
        plaintext: bytes,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
    ) -> Encrypted:
        label = p11o.label_of(handle)
        return await self._call(p11ops.t_encrypt, label, alg, plaintext, iv, aad)

    async def wrap(self, handle: bytes, alg: str, key: bytes) -> bytes:
        label = p11o.label_of(handle)
        return await self._call(p11ops.t_wrap, label, alg, key)

    async def exists(self, handle: bytes) -> bool:
        label = p11o.label_of(handle)
        return bool(await self._call(p11o.t_exists, label))

    async def destroy(self, handle: bytes) -> None:
        label = p11o.label_of(handle)
        await self._call(p11o.t_destroy, label)
