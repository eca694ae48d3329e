"""kvault's token-signing keys: ES256, shared by every replica, stored only sealed by the barrier.

One row, ``sys/identity/signing-key``, holds every key (the active one signs, the others
still verify tokens they signed before a rotation), sealed under the system keyring. The
first replica to need a key creates the row with compare-and-set; a replica that loses the
race reads the winner's key, so all replicas end with the same one. The row is read and
written through the barrier's sealed view, with its one bounded compare-and-set retry.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from kvault.barrier import rows
from kvault.barrier.context import Context
from kvault.barrier.retry import cas_retry
from kvault.barrier.view import ABSENT, SealedView
from kvault.errors import IntegrityError
from kvault.identity import jws

ROW = rows.SIGNING_KEY
CONTEXT = Context("sys", "signing-key", "jwt")
#: Keys kept after a rotation (the active one included), so recent tokens keep verifying.
KEEP = 3


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private: ec.EllipticCurvePrivateKey
    public: ec.EllipticCurvePublicKey
    created: int
    #: The header segment tokens signed with this key start with (a verifier's fast match).
    header: str

    @classmethod
    def new(cls, created: int) -> SigningKey:
        return cls.from_private(ec.generate_private_key(ec.SECP256R1()), created)

    @classmethod
    def from_private(cls, private: ec.EllipticCurvePrivateKey, created: int) -> SigningKey:
        public = private.public_key()
        kid = jws.thumbprint(public)
        return cls(kid, private, public, created, jws.encode_header(kid))


@dataclass(frozen=True, slots=True)
class KeySet:
    """Every key, newest first; ``keys[0]`` signs."""

    keys: tuple[SigningKey, ...]

    @property
    def active(self) -> SigningKey:
        return self.keys[0]

    def encode(self) -> bytes:
        return json.dumps(
            {
                "v": 1,
                "keys": [
                    {
                        "kid": k.kid,
                        "created": k.created,
                        "d": jws.b64url(
                            k.private.private_numbers().private_value.to_bytes(32, "big")
                        ),
                    }
                    for k in self.keys
                ],
            }
        ).encode()

    @classmethod
    def decode(cls, plaintext: bytes) -> KeySet:
        try:
            doc = json.loads(plaintext)
            keys = tuple(
                SigningKey.from_private(
                    ec.derive_private_key(
                        int.from_bytes(jws.unb64url(k["d"]), "big"), ec.SECP256R1()
                    ),
                    int(k["created"]),
                )
                for k in doc["keys"]
            )
        except (ValueError, KeyError, TypeError):
            raise IntegrityError("the stored signing key record is malformed") from None
        if not keys:
            raise IntegrityError("the stored signing key record holds no key")
        return cls(keys)


class SigningKeys:
    """Loads, creates and rotates the shared signing keys; callers read :attr:`current`."""

    def __init__(self, store: SealedView, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._lock = asyncio.Lock()
        self.current: KeySet | None = None
        self.by_kid: dict[str, SigningKey] = {}
        self.by_header: dict[str, SigningKey] = {}

    def _install(self, keys: KeySet) -> KeySet:
        self.current = keys
        self.by_kid = {k.kid: k for k in keys.keys}
        self.by_header = {k.header: k for k in keys.keys}
        return keys

    async def ensure(self) -> KeySet:
        """The key set, created on first use (compare-and-set: racing replicas agree)."""
        if self.current is not None:
            return self.current
        async with self._lock:
            if self.current is not None:
                return self.current
            return await self._load_or_create()

    async def refresh(self) -> KeySet:
        """Re-read the row (another replica may have rotated)."""
        async with self._lock:
            return await self._load_or_create()

    async def _load_or_create(self) -> KeySet:
        async def attempt() -> KeySet:
            found = await self._store.get(ROW, CONTEXT)
            if found is not None:
                return self._install(KeySet.decode(found[1]))
            # A lost race re-reads: another replica created it first, use theirs.
            return await self._write(KeySet((SigningKey.new(int(self._clock())),)), ABSENT)

        return await cas_retry(attempt, "the token-signing key")

    async def rotate(self, keep: int = KEEP) -> str:
        """Make a new key active, keeping the newest ``keep - 1`` others for verification.
        Returns the new key id."""
        async with self._lock:

            async def attempt() -> str:
                found = await self._store.get(ROW, CONTEXT)
                old = KeySet.decode(found[1]).keys if found else ()
                new = SigningKey.new(int(self._clock()))
                await self._write(
                    KeySet((new, *old[: max(0, keep - 1)])), found[0] if found else ABSENT
                )
                return new.kid

            return await cas_retry(attempt, "the token-signing key")

    async def _write(self, keys: KeySet, expect: int) -> KeySet:
        txn = self._store.txn()
        await txn.put(ROW, CONTEXT, keys.encode(), expect)
        await self._store.commit(txn)
        return self._install(keys)
