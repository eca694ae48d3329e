"""Blobs that leave kvault (backups): a fresh key wrapped directly by the HSM root.

Such a blob opens under the same HSM root only (any kvault sharing it, any vault), which is
what Azure Key Vault promises for backups. Layout::

    b"KVP1" | u16 len | root key id | u16 len | wrapped key | 12-byte nonce | ciphertext+tag
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kvault.errors import ConfigError, IntegrityError
from kvault.hsm.base import HSM, WrappedKey

MAGIC = b"KVP1"
_LEN = struct.Struct(">H")


def _aad(purpose: str) -> bytes:
    return b"kvault/portable\x1f" + purpose.encode()


async def seal(hsm: HSM, purpose: str, plaintext: bytes) -> bytes:
    key = AESGCM.generate_key(256)
    wrapped = await hsm.wrap(key, _aad(purpose))
    kid = wrapped.key_id.encode()
    head = MAGIC + _LEN.pack(len(kid)) + kid + _LEN.pack(len(wrapped.blob)) + wrapped.blob
    nonce = os.urandom(12)
    return head + nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(purpose) + head)


async def open_(hsm: HSM, purpose: str, blob: bytes) -> bytes:
    try:
        if blob[:4] != MAGIC:
            raise ValueError("magic")
        p = 4
        (n,) = _LEN.unpack_from(blob, p)
        kid = blob[p + 2 : p + 2 + n].decode()
        p += 2 + n
        (m,) = _LEN.unpack_from(blob, p)
        wrapped = WrappedKey(kid, blob[p + 2 : p + 2 + m])
        p += 2 + m
        head, nonce, body = blob[:p], blob[p : p + 12], blob[p + 12 :]
        if len(nonce) != 12 or len(body) < 16:
            raise ValueError("truncated")
    except (ValueError, struct.error, UnicodeDecodeError):
        raise IntegrityError(f"not a kvault {purpose} blob, or truncated") from None
    try:
        key = await hsm.unwrap(wrapped, _aad(purpose))
    except ConfigError:
        raise IntegrityError(
            f"{purpose} blob was sealed under a root key this HSM does not hold"
        ) from None
    try:
        return AESGCM(key).decrypt(nonce, body, _aad(purpose) + head)
    except InvalidTag:
        raise IntegrityError(f"{purpose} blob failed authentication (altered)") from None


class PortableSealer:
    """:func:`seal` and :func:`open_` bound to one HSM (what a tool without storage has)."""

    def __init__(self, hsm: HSM) -> None:
        self._hsm = hsm

    async def seal_portable(self, purpose: str, plaintext: bytes) -> bytes:
        return await seal(self._hsm, purpose, plaintext)

    async def open_portable(self, purpose: str, blob: bytes) -> bytes:
        return await open_(self._hsm, purpose, blob)
