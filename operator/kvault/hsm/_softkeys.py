"""The software plugin's "HSM-held" keys. THIS IS NOT AN HSM.

For the dev server and tests only: key material lives in this process's memory while it is
used, exactly as for standard (non-HSM) keys, and the root key file protects it at rest.
It implements :class:`kvault.hsm.keys.HsmKeys` so premium-vault code paths run anywhere.

The handle is the private key (:func:`kvault.crypto.keys.dump_private`) sealed with
AES-256-GCM under the active root key, so the handle kvault stores never holds plaintext::

    b"kvsk1" | root key id (16 ASCII) | label length (2 bytes) | label | nonce (12) | ct+tag

The AAD is everything before the nonce: the label and root key id are bound to the key.
The label travels in the handle because operations receive only the handle. Root rotation
leaves old handles working (their root key stays for unwrapping).

``destroy`` only forgets the cached key: the handle itself stays usable, so deleting the
stored handle (purge) is what destroys a software key.

Operations unseal the handle once and cache the key object in a small LRU keyed by the
handle (signing stays fast; RSA key loading is slow). RSA private operations and key
generation run in a worker thread (milliseconds each); EC and AES run inline.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kvault.crypto import keys as jose
from kvault.crypto.keys import Encrypted, Private
from kvault.errors import HSMError, IntegrityError
from kvault.hsm.keys import check_label

T = TypeVar("T")

VERSION = b"kvsk1"
KEY_ID_BYTES = 16
NONCE_BYTES = 12
CACHE_SIZE = 1024


class SoftwareKeys:
    """:class:`kvault.hsm.keys.HsmKeys` in process memory, sealed by the root keys."""

    def __init__(
        self,
        active: Callable[[], str],
        cipher: Callable[[str], Awaitable[AESGCM]],
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self._active = active  # the plugin's active root key id (HSMError while not open)
        self._cipher = cipher  # the plugin's root key by id (ConfigError if unknown)
        self._cache: OrderedDict[bytes, Private] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # callers may come from several threads and loops

    # -- sealing -----------------------------------------------------------------------------

    async def _seal(self, label: str, key: Private) -> bytes:
        key_id = self._active()
        raw_id, encoded = key_id.encode("ascii"), label.encode("utf-8")
        if len(raw_id) != KEY_ID_BYTES:
            raise HSMError(f"software HSM: root key id {key_id!r} is not {KEY_ID_BYTES} characters")
        header = VERSION + raw_id + len(encoded).to_bytes(2, "big") + encoded
        nonce = os.urandom(NONCE_BYTES)
        sealed = (await self._cipher(key_id)).encrypt(nonce, jose.dump_private(key), header)
        handle = header + nonce + sealed
        self._remember(handle, key)
        return handle

    async def _unseal(self, handle: bytes) -> Private:
        found = self._recall(handle)
        if found is not None:
            return found
        key_id, header = _parse(handle)
        cipher = await self._cipher(key_id)
        nonce, sealed = (
            handle[len(header) : len(header) + NONCE_BYTES],
            handle[len(header) + NONCE_BYTES :],
        )
        try:
            data = cipher.decrypt(nonce, sealed, header)
        except InvalidTag:
            raise IntegrityError(
                f"HSM key handle failed authentication under root key {key_id!r} (tampered?)"
            ) from None
        key = jose.load_private(data)
        self._remember(handle, key)
        return key

    # -- cache -------------------------------------------------------------------------------

    def _recall(self, handle: bytes) -> Private | None:
        with self._lock:
            key = self._cache.get(handle)
            if key is not None:
                self._cache.move_to_end(handle)
            return key

    def _remember(self, handle: bytes, key: Private) -> None:
        with self._lock:
            self._cache[handle] = key
            self._cache.move_to_end(handle)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _forget(self, handle: bytes) -> None:
        with self._lock:
            self._cache.pop(handle, None)

    # -- HsmKeys ---------------------------------------------------------------------------

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
        self._active()  # refuse before spending seconds on an RSA key
        key = await asyncio.to_thread(
            jose.generate, kty, size=size, crv=crv, public_exponent=public_exponent
        )
        return await self._seal(label, key), jose.public_jwk(key)

    async def import_key(self, label: str, key: Private) -> tuple[bytes, dict[str, str]]:
        check_label(label)
        jwk = jose.public_jwk(key)  # refuses unsupported curves and key types
        return await self._seal(label, key), jwk

    async def exists(self, handle: bytes) -> bool:
        """The handle is the (sealed) key: it exists while it opens under a root key."""
        try:
            await self._unseal(handle)
        except IntegrityError:
            return False
        return True

    async def sign(self, handle: bytes, alg: str, digest: bytes) -> bytes:
        key = await self._unseal(handle)
        return await _run(key, jose.sign, key, alg, digest)

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
        key = await self._unseal(handle)
        return await _run(key, _decrypt, key, alg, ciphertext, iv, aad, tag)

    async def unwrap(self, handle: bytes, alg: str, wrapped: bytes) -> bytes:
        key = await self._unseal(handle)
        return await _run(key, jose.unwrap, key, alg, wrapped)

    async def encrypt(
        self,
        handle: bytes,
        alg: str,
        plaintext: bytes,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
    ) -> Encrypted:
        key = await self._unseal(handle)
        return jose.encrypt(key, alg, plaintext, iv=iv, aad=aad)  # public or AES: fast

    async def wrap(self, handle: bytes, alg: str, key: bytes) -> bytes:
        private = await self._unseal(handle)
        return jose.wrap(private, alg, key)

    async def destroy(self, handle: bytes) -> None:
        _parse(handle)
        self._forget(handle)


def _parse(handle: bytes) -> tuple[str, bytes]:
    """(root key id, header) of a handle; IntegrityError for a foreign or mangled one."""
    if not handle.startswith(VERSION):
        raise IntegrityError("not a software HSM key handle (made by another HSM plugin?)")
    at = len(VERSION)
    key_id_raw = handle[at : at + KEY_ID_BYTES]
    at += KEY_ID_BYTES
    label_len = int.from_bytes(handle[at : at + 2], "big")
    end = at + 2 + label_len
    if len(handle) < end + NONCE_BYTES + 16 or not key_id_raw.isascii():
        raise IntegrityError("malformed software HSM key handle")
    return key_id_raw.decode("ascii"), handle[:end]


def _decrypt(
    key: Private,
    alg: str,
    ciphertext: bytes,
    iv: bytes | None,
    aad: bytes | None,
    tag: bytes | None,
) -> bytes:
    return jose.decrypt(key, alg, ciphertext, iv=iv, aad=aad, tag=tag)


async def _run(key: Private, fn: Callable[..., T], *args: object) -> T:
    """RSA private operations take milliseconds: off the event loop. The rest inline."""
    if jose.key_kind(key) == "RSA":
        return await asyncio.to_thread(fn, *args)
    return fn(*args)
