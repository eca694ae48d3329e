"""The barrier: everything above it sees plaintext, everything below it sees ciphertext.

Key hierarchy: HSM root key -> per-vault KEK (stored wrapped, one per term) -> a DEK per item
version (stored wrapped beside the data, see :mod:`kvault.barrier.envelope`). Unwrapped KEKs
are cached in memory, so after a vault's first use reads and writes never call the HSM.
"""

from __future__ import annotations

import asyncio
import contextlib

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kvault.barrier import envelope, portable, rows
from kvault.barrier.context import Context
from kvault.barrier.keyring import Keyring, StoredKeyring, kek_aad
from kvault.barrier.retry import cas_retry
from kvault.barrier.view import SealedView, Txn
from kvault.errors import Conflict, IntegrityError, NotFound, StorageConflict
from kvault.hsm.base import HSM
from kvault.storage.base import ABSENT, Delete, Put, Storage

KEYRING_PREFIX = rows.KEYRINGS
keyring_key = rows.keyring


class Barrier:
    def __init__(self, storage: Storage, hsm: HSM) -> None:
        self._storage = storage
        self._hsm = hsm
        self._keyrings: dict[str, Keyring] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        self._deks = envelope.DekCache()
        self._forgotten = 0  # bumped by forget_keyring: a load racing it must not be cached
        self.view = SealedView(storage, self)

    # -- keyrings -------------------------------------------------------------------------

    async def create_keyring(self, vault_id: str) -> None:
        """Give a new vault its first KEK. Raises :class:`Conflict` if it already has one."""
        kek = AESGCM.generate_key(256)
        stored = StoredKeyring(1, {1: await self._hsm.wrap(kek, kek_aad(vault_id, 1))})
        try:
            await self._storage.commit([Put(keyring_key(vault_id), stored.encode(), expect=ABSENT)])
        except StorageConflict:
            raise Conflict(f"vault {vault_id} already has a keyring") from None
        self._keyrings[vault_id] = Keyring(1, {1: AESGCM(kek)})

    async def ensure_keyring(self, vault_id: str) -> None:
        """Create the keyring unless it exists (the system keyring, at every start)."""
        if await self._storage.get(keyring_key(vault_id)) is None:
            with contextlib.suppress(Conflict):  # created by another replica meanwhile
                await self.create_keyring(vault_id)

    async def rotate_kek(self, vault_id: str) -> int:
        """Add a new KEK term for new data; older terms stay for reading. Returns the term."""

        async def attempt() -> int:
            row = await self._storage.get(keyring_key(vault_id))
            if row is None:
                raise NotFound(f"vault {vault_id} has no keyring")
            stored = StoredKeyring.decode(row.value)
            term = max(stored.wrapped) + 1
            kek = AESGCM.generate_key(256)
            wrapped = {**stored.wrapped, term: await self._hsm.wrap(kek, kek_aad(vault_id, term))}
            encoded = StoredKeyring(term, wrapped).encode()
            await self._storage.commit([Put(keyring_key(vault_id), encoded, row.revision)])
            return term

        term = await cas_retry(attempt, f"the keyring of vault {vault_id}")
        self._keyrings.pop(vault_id, None)
        return term

    async def rotate_root(self) -> str:
        """Make a new HSM root key active and rewrap every vault's KEKs under it."""
        new_root = await self._hsm.rotate()
        start_after: str | None = None
        while True:
            rows = await self._storage.list(KEYRING_PREFIX, start_after=start_after, limit=100)
            if not rows:
                return new_root
            for row in rows:
                await self._rewrap(row.key.removeprefix(KEYRING_PREFIX), new_root)
            start_after = rows[-1].key

    async def _rewrap(self, vault_id: str, root: str) -> None:
        async def attempt() -> None:
            row = await self._storage.get(keyring_key(vault_id))
            if row is None:
                return
            stored = StoredKeyring.decode(row.value)
            wrapped = {}
            for term, w in stored.wrapped.items():
                if w.key_id == root:
                    wrapped[term] = w
                    continue
                kek = await self._hsm.unwrap(w, kek_aad(vault_id, term))
                wrapped[term] = await self._hsm.wrap(kek, kek_aad(vault_id, term))
            encoded = StoredKeyring(stored.active, wrapped).encode()
            await self._storage.commit([Put(keyring_key(vault_id), encoded, row.revision)])

        await cas_retry(attempt, f"the keyring of vault {vault_id}")

    async def destroy(self, vault_id: str, also: Txn | None = None) -> None:
        """Crypto-shred a vault: delete its keyring (and, atomically, the ops in ``also``).

        Afterwards no row sealed for the vault can be opened, with or without the root key.
        """
        ops = [] if also is None else list(also.ops)
        await self._storage.commit([*ops, Delete(keyring_key(vault_id))])
        self._keyrings.pop(vault_id, None)
        self._deks.clear()

    def clear_caches(self) -> None:
        """Drop every unwrapped KEK and DEK from memory; the next use unwraps again."""
        self._forgotten += 1
        self._keyrings.clear()
        self._deks.clear()

    def forget_keyring(self, vault_id: str) -> None:
        """Another replica rewrote or deleted the keyring of ``vault_id``: read it anew (a
        rotation's new term seals from now on; a purged vault's KEKs leave memory)."""
        self._forgotten += 1
        if self._keyrings.pop(vault_id, None) is not None:
            self._deks.clear()  # DEKs are not indexed by vault: drop them all (re-unwrapped)

    async def _keyring(self, vault_id: str, *, need_term: int | None = None) -> Keyring:
        ring = self._keyrings.get(vault_id)
        if ring is not None and (need_term is None or need_term in ring.keys):
            return ring
        lock = self._loading.setdefault(vault_id, asyncio.Lock())
        async with lock:
            ring = self._keyrings.get(vault_id)
            if ring is not None and (need_term is None or need_term in ring.keys):
                return ring
            forgotten = self._forgotten
            row = await self._storage.get(keyring_key(vault_id))
            if row is None:
                raise IntegrityError(f"vault {vault_id} has no key: it was purged or never existed")
            stored = StoredKeyring.decode(row.value)
            keys = {}
            for term, w in stored.wrapped.items():
                keys[term] = AESGCM(await self._hsm.unwrap(w, kek_aad(vault_id, term)))
            ring = Keyring(stored.active, keys)
            if forgotten == self._forgotten:  # else a newer row may exist: next use reads it
                self._keyrings[vault_id] = ring
            return ring

    # -- data -----------------------------------------------------------------------------

    async def seal(self, ctx: Context, plaintext: bytes) -> bytes:
        ring = await self._keyring(ctx.vault_id)
        return envelope.seal(ring.keys[ring.active], ring.active, ctx.aad, plaintext, self._deks)

    async def open(self, ctx: Context, blob: bytes) -> bytes:
        term = envelope.kek_term(blob)
        ring = self._keyrings.get(ctx.vault_id)  # the hot path: no await, no lock
        kek = ring.keys.get(term) if ring is not None else None
        if kek is None:
            kek = (await self._keyring(ctx.vault_id, need_term=term)).keys.get(term)
            if kek is None:
                raise IntegrityError(f"ciphertext names KEK term {term}, which vault does not hold")
        return envelope.open_(kek, ctx.aad, blob, self._deks)

    async def seal_portable(self, purpose: str, plaintext: bytes) -> bytes:
        """Seal for outside kvault (backups): opens under the same HSM root, in any vault."""
        return await portable.seal(self._hsm, purpose, plaintext)

    async def open_portable(self, purpose: str, blob: bytes) -> bytes:
        return await portable.open_(self._hsm, purpose, blob)
