"""Whole-vault backup and restore (``kvault vault backup|restore``; docs/backup.md).

A backup is the vault's logical content: its settings (SKU, retention, purge protection, role
assignments) and every row below its prefix (each item kind's heads, versions and deleted
items, the keys' rotation policies, the certificates' policies, pending operations,
schedules, issuers and contacts), opened by the barrier from one consistent read of storage
and sealed into a :mod:`kvault.vault.backupfile` under a fresh key that either the HSM root
seals (restorable under that root only) or a passphrase derives (scrypt; restorable in any
installation). Plaintext exists in memory only, never on disk.

A restore reads the whole file and checks everything (the key, every chunk's tag, the chunk
and record counts, the content digest, every record against its row) before it writes: then
it writes the vault record and every row in one atomic commit, sealed under the target
vault's KEK and bound to its id. So a damaged, altered, truncated or foreign file restores
nothing. The target is a vault that does not exist (created; only a superuser may create a
vault) or one that exists and holds no row at all; a superuser's restore also brings the
settings and role assignments, a vault administrator's restores the items into the vault as
it is configured (role assignments are the control plane's to grant).

Both are authorised by their own data action (:data:`kvault.identity.rbac.VAULT_ACTIONS`:
the Administrator role only) and audited as one ``VaultBackup`` / ``VaultRestore`` line
(with the ``committing`` line before a restore's commit), never with a value.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from kvault.barrier.context import Context
from kvault.barrier.view import ABSENT, Txn
from kvault.errors import (
    BadParameter,
    Conflict,
    IntegrityError,
    KvaultError,
    NotFound,
    StorageConflict,
)
from kvault.identity.model import RoleAssignment
from kvault.vault import backupfile as bf
from kvault.vault import layout, names
from kvault.vault.access import authorize
from kvault.vault.changes import Change
from kvault.vault.core import LOCAL, Caller, Outcome
from kvault.vault.model import VAULT_NOT_FOUND, VaultInfo
from kvault.vault.records import encode_vault, roles_doc
from kvault.vault.service import Kvault
from kvault.vault.vaultrows import RowClass, VaultRows
from kvault.vault.vaults import SKUS, _role_assignments

BACKUP = "VaultBackup"
RESTORE = "VaultRestore"
#: What the file key is sealed for under the HSM root (it opens for nothing else).
PURPOSE = "vault-backup-key"
CHUNK_RECORDS = 64
CHUNK_BYTES = 256 * 1024
#: The largest file a restore reads (the whole vault is held in memory for one commit).
MAX_FILE = 512 * 1024 * 1024
READ_SIZE = 64 * 1024

#: Reads up to ``n`` bytes of the file; ``b""`` at its end.
ByteSource = Callable[[int], Awaitable[bytes]]
Row = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class SealedBackup:
    """A backup ready to stream: the file is ``preamble`` then every item of ``frames()``."""

    header: bf.Header
    preamble: bytes
    frames: Callable[[], Iterator[bytes]]


@dataclass(frozen=True, slots=True)
class Restored:
    vault: str
    records: int
    counts: dict[str, int]
    digest: str
    #: The vault did not exist and the restore created it.
    created: bool
    #: The backup's settings and role assignments were applied (a superuser's restore).
    settings_restored: bool


def _superuser(caller: Caller) -> bool:
    return caller.identity is None or caller.identity.superuser


def settings_doc(info: VaultInfo) -> dict[str, Any]:
    """The vault's settings as a backup holds them (not its name, id or creation time: those
    belong to the installation)."""
    return {
        "sku": info.sku,
        "retentionDays": info.retention_days,
        "purgeProtection": info.purge_protection,
        "roleAssignments": roles_doc(info),
    }


@dataclass(frozen=True, slots=True)
class _Settings:
    sku: str
    retention_days: int
    purge_protection: bool
    role_assignments: tuple[RoleAssignment, ...]


def _read_settings(doc: dict[str, Any]) -> _Settings:
    try:
        sku, purge = doc["sku"], doc["purgeProtection"]
        retention = names.retention_days(doc["retentionDays"])
        given = [(r["principal"], r["role"], r["scope"]) for r in doc["roleAssignments"]]
        if not all(isinstance(part, str) for ra in given for part in ra):
            raise TypeError
        assignments = _role_assignments(RoleAssignment(*ra) for ra in given)
        if sku not in SKUS or not isinstance(purge, bool):
            raise ValueError
    except (KeyError, TypeError, ValueError, BadParameter):
        raise bf.FileError(
            "the backup's vault settings are malformed; nothing was restored"
        ) from None
    return _Settings(sku, retention, purge, assignments)


class WholeVault:
    """Whole-vault backup and restore over one :class:`Kvault`."""

    def __init__(self, kv: Kvault) -> None:
        self._kv = kv
        self._core = kv.core
        self._rows = VaultRows(engine.kind for engine in kv.kinds)

    # -- authorisation ------------------------------------------------------------------------

    def _authorize(self, caller: Caller, info: VaultInfo, operation: str) -> None:
        authorize(caller, info, operation, "", None)

    async def check(self, vault_name: str, operation: str, *, caller: Caller = LOCAL) -> None:
        """Before a request's body is read: refuse what :meth:`backup` or :meth:`restore`
        would refuse without it (no such vault, not allowed, a restore into a vault that
        holds items). A refusal is audited as the operation's line."""
        try:
            if operation == BACKUP:
                info = await self._core.active_vault(names.vault_name(vault_name))
                self._authorize(caller, info, operation)
                return
            found = await self._restore_target(vault_name, caller)
            if found is not None:
                await self._refuse_items(found[1])
        except KvaultError as exc:
            self._core.record(caller, vault_name, operation, Outcome(), exc.outcome)
            raise

    async def _restore_target(
        self, vault_name: str, caller: Caller
    ) -> tuple[int, VaultInfo] | None:
        """The existing vault (revision, record) to restore into, the caller authorised, or
        ``None`` when the restore creates it (a superuser only)."""
        core = self._core
        names.vault_name(vault_name)
        core.forget_vault(vault_name)  # decide on the stored record
        entry = await core.vault_row(vault_name)
        if entry is None or entry[1].deleted_date is not None:
            if not _superuser(caller):
                raise NotFound(f"vault {vault_name!r} was not found", VAULT_NOT_FOUND)
            if entry is not None:
                raise Conflict(
                    f"vault {vault_name!r} is deleted but recoverable; recover it (and restore "
                    "into it if it is empty) or purge it first"
                )
            return None
        self._authorize(caller, entry[1], RESTORE)
        return entry

    async def _refuse_items(self, info: VaultInfo) -> None:
        held = await self._core.store.count(layout.vault_prefix(info.id))
        if held:
            raise Conflict(
                f"vault {info.name!r} is not empty (it holds {held} records, deleted items "
                "included): a restore writes only into an empty vault; restore into a new "
                "--vault-name, or purge what it holds first"
            )

    # -- backup -------------------------------------------------------------------------------

    async def backup(
        self,
        vault_name: str,
        *,
        passphrase: str | None = None,
        caller: Caller = LOCAL,
        chunk_records: int = CHUNK_RECORDS,
    ) -> SealedBackup:
        """Everything ``vault_name`` holds, sealed (see the module's description)."""
        core = self._core
        with core.audited(caller, vault_name, BACKUP):
            names.vault_name(vault_name)
            if passphrase is not None:
                bf.check_passphrase(passphrase, new=True)
            core.forget_vault(vault_name)
            info = await core.active_vault(vault_name)
            self._authorize(caller, info, BACKUP)
            opened = await core.store.scan(
                layout.vault_prefix(info.id), lambda suffix: self._context(info.id, suffix)
            )
            rows = [(r.suffix, r.plaintext) for r in opened]
            counts = self._rows.labels()
            for suffix, plaintext in rows:
                cls, name, _ = self._classify(suffix)
                counts[cls.label] += 1
                if passphrase is not None and any(v.handle for v in cls.key_values(plaintext)):
                    raise BadParameter(
                        f"vault {vault_name!r} holds the HSM-held key {name}: its private part "
                        "never leaves the HSM, so a passphrase backup could not restore it; "
                        "back up without a passphrase (restorable under this HSM root only)"
                    )
            settings = settings_doc(info)
            digest = bf.Digest(settings)
            for suffix, plaintext in rows:
                digest.row(suffix, plaintext)
            key, seal = await self._new_key(passphrase)
            groups = list(bf.chunks_of(rows, max(1, chunk_records), CHUNK_BYTES))
            header = bf.header_bytes(
                {
                    "format": bf.KIND,
                    "version": bf.FORMAT,
                    "vault": info.name,
                    "created": core.now(),
                    "records": len(rows),
                    "chunks": len(groups),
                    "counts": counts,
                    "digest": digest.hexdigest(),
                    "seal": seal,
                }
            )
            sealer = bf.ChunkSealer(key, header)

            def frames() -> Iterator[bytes]:
                for i, group in enumerate(groups):
                    plain = bf.chunk_plaintext(group, settings if i == 0 else None)
                    yield sealer.seal(i, len(group), plain, i == len(groups) - 1)

            return SealedBackup(bf.parse_header(header), header + bf.check_tag(key, header), frames)

    def _classify(self, suffix: str) -> tuple[RowClass, str, str]:
        found = self._rows.classify(suffix)
        if found is None:
            # A row of a kind this code does not know: refuse rather than leave it behind.
            raise IntegrityError("the vault holds a record that a whole-vault backup does not know")
        return found

    def _context(self, vault_id: str, suffix: str) -> Context:
        cls, name, version = self._classify(suffix)
        return cls.context(vault_id, name, version)

    async def _new_key(self, passphrase: str | None) -> tuple[bytes, dict[str, Any]]:
        if passphrase is None:
            key = bf.new_key()
            blob = await self._core.barrier.seal_portable(PURPOSE, key)
            return key, {"kind": "hsm", "key": base64.b64encode(blob).decode()}
        seal = bf.scrypt_seal()
        return await asyncio.to_thread(bf.derive, passphrase, seal), seal

    # -- restore ------------------------------------------------------------------------------

    async def restore(
        self,
        vault_name: str,
        source: ByteSource,
        *,
        passphrase: str | None = None,
        caller: Caller = LOCAL,
    ) -> Restored:
        """Restore the backup that ``source`` reads into ``vault_name`` (see the module's
        description): all of it, or nothing."""
        core = self._core
        with core.audited(caller, vault_name, RESTORE):
            target = await self._restore_target(vault_name, caller)
            if target is not None:
                await self._refuse_items(target[1])
            if passphrase is not None:
                bf.check_passphrase(passphrase, new=False)
            header, settings, rows = await self._read(source, passphrase)
            await self._check_rows(rows, header)
            restored = await self._commit(vault_name, caller, settings, rows)
            result = Restored(
                vault_name,
                len(rows),
                dict(header.counts),
                header.digest,
                created=restored is None,
                settings_restored=_superuser(caller),
            )
        core.changes.publish(Change(vault_name, RESTORE))
        return result

    async def _read(
        self, source: ByteSource, passphrase: str | None
    ) -> tuple[bf.Header, _Settings, list[Row]]:
        """The whole file, every chunk opened and checked; nothing is written here."""
        splitter = bf.Splitter()
        sealer: bf.ChunkSealer | None = None
        digest: bf.Digest | None = None
        settings: dict[str, Any] | None = None
        rows: list[Row] = []
        while True:
            data = await source(READ_SIZE)
            if not data:
                splitter.end()
                break
            if splitter.size + len(data) > MAX_FILE:
                raise bf.FileError(f"the backup file is larger than {MAX_FILE} bytes")
            header, chunks = splitter.feed(data)
            if header is not None:
                key = await self._file_key(header, splitter.check, passphrase)
                sealer = bf.ChunkSealer(key, header.raw)
            for chunk in chunks:
                assert sealer is not None
                part, first = bf.read_chunk(sealer.open(chunk), chunk)
                if first is not None:
                    settings, digest = first, bf.Digest(first)
                assert digest is not None
                for key_, plaintext in part:
                    digest.row(key_, plaintext)
                rows.extend(part)
        header = splitter.header
        assert header is not None and settings is not None and digest is not None
        if splitter.chunks != header.chunks or len(rows) != header.records:
            raise bf.FileError("the backup holds other counts than its header says (altered)")
        if digest.hexdigest() != header.digest:
            raise bf.FileError("the backup's content does not match its digest (altered)")
        return header, _read_settings(settings), rows

    async def _file_key(self, header: bf.Header, check: bytes, passphrase: str | None) -> bytes:
        kind = header.sealed_with
        if kind == "scrypt":
            if passphrase is None:
                raise bf.FileError(
                    "this backup is sealed with a passphrase: give it (--passphrase-file)"
                )
            key = await asyncio.to_thread(bf.derive, passphrase, header.seal)
            if not bf.key_opens(key, header.raw, check):
                raise bf.FileError(
                    "the passphrase is wrong (or the backup's header was altered); nothing was "
                    "restored"
                )
            return key
        if kind != "hsm":
            raise bf.FileError(f"the backup is sealed in a way this kvault does not know ({kind})")
        if passphrase is not None:
            raise bf.FileError(
                "this backup is sealed under the HSM root key, not with a passphrase: restore it "
                "without --passphrase-file"
            )
        try:
            blob = base64.b64decode(str(header.seal.get("key")), validate=True)
            key = await self._core.barrier.open_portable(PURPOSE, blob)
        except (binascii.Error, ValueError):
            raise bf.FileError("the backup header is damaged (its sealed key)") from None
        except IntegrityError as exc:
            raise bf.FileError(
                f"this backup's key does not open here ({exc.message}): a backup sealed under "
                "the HSM root restores only into an installation with that root key; to move a "
                "vault to another installation, back it up with --passphrase-file"
            ) from None
        if len(key) != bf.KEY_BYTES or not bf.key_opens(key, header.raw, check):
            raise bf.FileError("the backup's header was altered; nothing was restored")
        return key

    async def _check_rows(self, rows: list[Row], header: bf.Header) -> None:
        """Every record reads back and names its own row; counts as the header says; HSM-held
        keys only from an HSM-sealed backup, and only while the HSM still holds them."""
        counts = self._rows.labels()
        previous = ""
        material = self._kv.keys.material
        for suffix, plaintext in rows:
            if suffix <= previous:
                raise bf.FileError("the backup's records are out of order (altered)")
            previous = suffix
            found = self._rows.classify(suffix)
            if found is None:
                raise bf.FileError(
                    "the backup holds a record this kvault does not know; nothing was restored"
                )
            cls, name, version = found
            try:
                cls.check(name, version, plaintext)
                values = cls.key_values(plaintext)
            except (KeyError, TypeError, ValueError, KvaultError):
                raise bf.FileError(
                    f"the backup's {cls.label} record of {name} is malformed; nothing was restored"
                ) from None
            counts[cls.label] += 1
            for value in values:
                if not value.handle:
                    continue
                if header.sealed_with != "hsm":
                    raise BadParameter(
                        f"the backup holds the HSM-held key {name}: its private part never leaves "
                        "the HSM, so it cannot come from a passphrase backup; nothing was restored"
                    )
                if not await material.usable(value):
                    raise BadParameter(
                        f"the backup refers to the HSM-held key {name}, which no longer exists "
                        "(purged, or another HSM): HSM keys restore only into the HSM that still "
                        "holds them; nothing was restored"
                    )
        labels = set(counts) | set(header.counts)
        if any(counts.get(k, 0) != header.counts.get(k, 0) for k in labels):
            raise bf.FileError("the backup holds other counts than its header says (altered)")

    async def _stage_rows(self, txn: Txn, vault_id: str, rows: list[Row]) -> None:
        prefix = layout.vault_prefix(vault_id)
        for suffix, plaintext in rows:
            cls, name, version = self._classify(suffix)
            await txn.put(prefix + suffix, cls.context(vault_id, name, version), plaintext, ABSENT)

    async def _commit(
        self, vault_name: str, caller: Caller, settings: _Settings, rows: list[Row]
    ) -> tuple[int, VaultInfo] | None:
        """Write the vault record and every row in one commit; returns the target as it was
        (``None``: created)."""
        core = self._core
        target = await self._restore_target(vault_name, caller)
        key, ctx = layout.vault_row(vault_name)
        txn = core.store.txn()
        if target is None:
            info = VaultInfo(
                name=vault_name,
                id=uuid.uuid4().hex,
                created=core.now(),
                sku=settings.sku,
                retention_days=settings.retention_days,
                purge_protection=settings.purge_protection,
                role_assignments=settings.role_assignments,
            )
            await core.barrier.create_keyring(info.id)
            try:
                await txn.put(key, ctx, encode_vault(info), ABSENT)
                await self._stage_rows(txn, info.id, rows)
                await core.store.commit(txn)
            except BaseException as exc:
                await core.barrier.destroy(info.id)
                if isinstance(exc, StorageConflict):
                    raise Conflict(
                        f"vault {vault_name!r} was created concurrently; nothing was restored"
                    ) from None
                raise
            finally:
                core.forget_vault(vault_name)
            return None
        revision, info = target
        await self._refuse_items(info)
        if _superuser(caller):
            info = replace(
                info,
                sku=settings.sku,
                retention_days=settings.retention_days,
                purge_protection=info.purge_protection or settings.purge_protection,
                role_assignments=settings.role_assignments,
            )
        # Written even when unchanged: the commit holds only if the vault record did not
        # change (deleted, purged, re-created) since it was read.
        await txn.put(key, ctx, encode_vault(info), revision)
        await self._stage_rows(txn, info.id, rows)
        try:
            await core.store.commit(txn)
        except StorageConflict:
            raise Conflict(
                f"vault {vault_name!r} changed while it was being restored; nothing was restored"
            ) from None
        finally:
            core.forget_vault(vault_name)
        return target
