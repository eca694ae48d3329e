"""The pkcs11 plugin's HSM-held keys (:class:`kvault.hsm.keys.HsmKeys`).

Keys are token objects found by label (:mod:`kvault.hsm._p11objects`); algorithms map to
mechanisms in :mod:`kvault.hsm._p11mech` and run in :mod:`kvault.hsm._p11ops`. The handle is
``b"p11:" + label``: it names the object, holds no key material, and a restarted kvault (or
another replica logged into the same token) finds the object by it.

A handle whose object is gone raises :class:`kvault.errors.HSMError` ("not in token"); a
handle made by another plugin raises :class:`kvault.errors.IntegrityError`.

Every call runs on the single PKCS#11 thread (:mod:`kvault.hsm._p11thread`): SoftHSM2 under
python-pkcs11 crashes on concurrent calls, and python-pkcs11 cannot ask for OS locking. A
pool would not pay anyway: measured on 2 cores, ES256 signing reaches ~9-12k/s here against
~18k/s for the software plugin, but costs the event loop ~5 us per sign instead of ~45 us
(SoftHSM2 spends ~100 us per ECDSA sign on the other core), so a loop-bound REST server
signs at 0.8x or better of the software plugin's rate. Generating an RSA key blocks the
thread (and every other PKCS#11 call) for up to seconds.
"""

from __future__ import annotations

from collections.abc import Callable

from kvault.crypto.keys import Encrypted, Private
from kvault.hsm import _p11mech as p11mech
from kvault.hsm import _p11objects as p11o
from kvault.hsm import _p11ops as p11ops
from kvault.hsm import _p11thread as p11thread
from kvault.hsm._p11sessions import SharedSession
from kvault.hsm.keys import check_label


class Pkcs11Keys:
    """Keys generated and used inside the plugin's token; see the module docstring."""

    def __init__(self, session: Callable[[], SharedSession]) -> None:
        self._session = session  # the plugin's: raises HSMError while it is not open

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
        jwk = await p11thread.call(p11o.t_create, self._session(), label, base, bits, crv, exponent)
        return p11o.handle_for(label), jwk

    async def import_key(self, label: str, key: Private) -> tuple[bytes, dict[str, str]]:
        check_label(label)
        jwk = await p11thread.call(p11o.t_import, self._session(), label, key)
        return p11o.handle_for(label), jwk

    async def sign(self, handle: bytes, alg: str, digest: bytes) -> bytes:
        label = p11o.label_of(handle)
        return await p11thread.call(p11ops.t_sign, self._session(), label, alg, digest)

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
        return await p11thread.call(
            p11ops.t_decrypt, self._session(), label, alg, ciphertext, iv, aad, tag
        )

    async def unwrap(self, handle: bytes, alg: str, wrapped: bytes) -> bytes:
        label = p11o.label_of(handle)
        return await p11thread.call(p11ops.t_unwrap, self._session(), label, alg, wrapped)

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
        return await p11thread.call(
            p11ops.t_encrypt, self._session(), label, alg, plaintext, iv, aad
        )

    async def wrap(self, handle: bytes, alg: str, key: bytes) -> bytes:
        label = p11o.label_of(handle)
        return await p11thread.call(p11ops.t_wrap, self._session(), label, alg, key)

    async def exists(self, handle: bytes) -> bool:
        label = p11o.label_of(handle)
        return bool(await p11thread.call(p11o.t_exists, self._session(), label))

    async def destroy(self, handle: bytes) -> None:
        label = p11o.label_of(handle)
        await p11thread.call(p11o.t_destroy, self._session(), label)
