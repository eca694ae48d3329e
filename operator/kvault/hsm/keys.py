"""The HSM-held keys interface: key material generated and used inside the HSM.

Premium vaults (``RSA-HSM``, ``EC-HSM``, ``oct-HSM``) keep private and secret key material in
the HSM; every private operation (sign, decrypt, unwrap, and for ``oct`` also encrypt and
wrap) runs there. This is separate from the root-key :class:`kvault.hsm.base.HSM` protocol
(whose ``wrap``/``unwrap`` mean something else): a plugin offers held keys as a separate
object, its ``keys`` attribute, found with :func:`held_keys`; usable while the plugin is open.

A key is addressed by an opaque ``handle`` that the caller stores (sealed) with the key
version. A handle reveals no key material. Algorithm names are Azure's, and results are
byte-compatible with :mod:`kvault.crypto.keys` (the software implementation), so public
operations (RSA encrypt and wrap, verify) can run in software on the public JWK.

Errors: bad input or an algorithm that does not fit the key raise
:class:`kvault.crypto.keys.JoseError` (messages as crypto.keys words them); device faults
raise :class:`kvault.errors.HSMError`, and so does a handle whose object is gone from the
HSM ("... is not in token ..."); a handle from another plugin, a mangled one, or one that
fails authentication raises :class:`kvault.errors.IntegrityError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from kvault.crypto.keys import Encrypted, Private

#: Longest label a caller may pass (``kvault-key-<vaultid>-<name>-<version>`` fits).
MAX_LABEL = 100


@runtime_checkable
class HsmKeys(Protocol):
    """Keys generated and used inside the HSM (premium vaults). A key is addressed by its
    opaque ``handle`` (bytes) that the caller stores (sealed) with the key version; the
    handle itself reveals no key material."""

    async def create_key(
        self,
        label: str,
        kty: str,
        *,
        size: int | None = None,
        crv: str | None = None,
        public_exponent: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """Generate a key of base type ``kty`` (``RSA``, ``EC``, ``oct``; Azure's defaults
        and limits, as :func:`kvault.crypto.keys.generate`) labelled ``label`` (unique per
        key version, at most :data:`MAX_LABEL` characters); return its handle and public JWK
        members as :func:`kvault.crypto.keys.public_jwk` gives them."""
        ...

    async def import_key(self, label: str, key: Private) -> tuple[bytes, dict[str, str]]:
        """Import ``key`` (import with ``Hsm: true``) as a non-extractable HSM object."""
        ...

    async def sign(self, handle: bytes, alg: str, digest: bytes) -> bytes:
        """Sign a digest (never hashed again); ES* give raw ``r || s``."""
        ...

    async def decrypt(
        self,
        handle: bytes,
        alg: str,
        ciphertext: bytes,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
        tag: bytes | None = None,
    ) -> bytes: ...

    async def unwrap(self, handle: bytes, alg: str, wrapped: bytes) -> bytes:
        """Unwrap and return the key bytes (Azure's unwrapKey returns them)."""
        ...

    async def encrypt(
        self,
        handle: bytes,
        alg: str,
        plaintext: bytes,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
    ) -> Encrypted:
        """oct encryption in the HSM. RSA encryption is a public-key operation the caller can
        do on the JWK; it is offered too (in software) so both plugins behave alike."""
        ...

    async def wrap(self, handle: bytes, alg: str, key: bytes) -> bytes:
        """oct key wrap in the HSM (RSA: in software on the public key, as ``encrypt``)."""
        ...

    async def exists(self, handle: bytes) -> bool:
        """Whether the key behind ``handle`` is still there (a restore of a backup checks
        it: a purged HSM key's object is gone)."""
        ...

    async def destroy(self, handle: bytes) -> None:
        """Destroy the key for good (after purge); idempotent. The software plugin can only
        forget its cache: there, deleting the stored handle is what destroys the key."""
        ...


def check_label(label: str) -> None:
    """Labels name HSM objects for operators too: printable, bounded, non-empty. The caller
    builds them, so a bad one is a programming error (``ValueError``), not bad user input."""
    if not label or len(label) > MAX_LABEL or not label.isprintable():
        raise ValueError(f"HSM key label must be 1 to {MAX_LABEL} printable characters")


def held_keys(hsm: object) -> HsmKeys | None:
    """The plugin's HSM-held keys (its ``keys`` attribute), or None if it offers none.

    A separate object, not methods of the plugin: the root-key protocol already uses the
    names ``wrap`` and ``unwrap`` with other meanings."""
    keys = getattr(hsm, "keys", None)
    return keys if isinstance(keys, HsmKeys) else None
