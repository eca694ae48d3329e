"""Copy every row of one store into another, empty one, and prove the copy.

This is the storage half of ``kvault storage migrate`` (wired by :mod:`kvault.app.migration`):
it works on two opened :class:`~kvault.storage.base.Storage` objects of any backends, sees
only ciphertext, and needs no HSM.

* **Empty destination only.** :func:`copy` refuses a destination that holds any row
  (:class:`DestinationNotEmpty`), and every row goes in with ``expect=ABSENT``, so a kvault
  started on the destination during the copy makes it fail rather than be overwritten.
* **Batches.** The source is read in key order, ``batch`` rows at a time; each batch is one
  atomic :meth:`~kvault.storage.base.Storage.commit` on the destination. A copy cut off
  leaves whole batches behind (a prefix of the source in key order), never a torn row; the
  destination must then be emptied before a new attempt.
* **Revisions start over.** A row's revision is the backend's compare-and-set counter, not
  data: the protocol has no way to write a chosen revision, and nothing above storage keeps
  one across a restart (the barrier's memo is keyed by ciphertext, never by revision). So
  every row lands at revision 1; keys and values are copied byte for byte.
* **Verification.** :func:`tally` reads a whole store again and hashes it:
  SHA-256 over the rows in key order, each as ``len(key) key len(value) value`` (lengths as
  8-byte big-endian integers, keys in UTF-8), so no two different stores share a digest by
  concatenation. :func:`verify` tallies both sides; equal counts and digests mean the
  destination holds exactly the source's keys and values. The source is read afresh, so a
  write to it during the copy shows up as a mismatch (stop every kvault first).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from kvault.errors import KvaultError
from kvault.storage.base import ABSENT, Put, Row, Storage

__all__ = [
    "BATCH",
    "DestinationNotEmpty",
    "MigrationError",
    "Report",
    "SourceEmpty",
    "Tally",
    "Verification",
    "copy",
    "is_empty",
    "migrate",
    "pages",
    "refuse_empty",
    "tally",
    "verify",
]

#: Rows per destination commit (and per source read).
BATCH = 500

#: ``progress(rows_so_far, rows_in_this_batch)`` after each committed batch.
Progress = Callable[[int, int], None]


class MigrationError(KvaultError):
    """A migration that was refused or whose copy does not match its source."""

    code = "MigrationFailed"


class DestinationNotEmpty(MigrationError):
    """The destination holds rows: nothing was written to it."""


class SourceEmpty(MigrationError):
    """The source holds no row (a wrong path or database?): nothing was written."""


@dataclass(frozen=True, slots=True)
class Tally:
    """How many rows a store holds and the SHA-256 of all of them (hex)."""

    rows: int
    digest: str


@dataclass(frozen=True, slots=True)
class Verification:
    """Both sides tallied after the copy."""

    source: Tally
    destination: Tally

    @property
    def ok(self) -> bool:
        return self.source == self.destination


@dataclass(frozen=True, slots=True)
class Report:
    """What :func:`migrate` did: rows copied, in how many batches, and the verification."""

    copied: int
    batches: int
    verification: Verification

    @property
    def ok(self) -> bool:
        return self.verification.ok and self.copied == self.verification.source.rows


def _check_batch(batch: int) -> None:
    if batch < 1:
        raise ValueError(f"batch must be at least 1 row, got {batch}")


async def pages(storage: Storage, batch: int = BATCH) -> AsyncIterator[list[Row]]:
    """Every row of ``storage`` in key order, ``batch`` at a time (each page one read)."""
    _check_batch(batch)
    last: str | None = None
    while True:
        page = await storage.list("", start_after=last, limit=batch)
        if not page:
            return
        for row in page:
            if last is not None and not row.key > last:  # the digest relies on key order
                raise MigrationError(
                    f"storage listed {row.key!r} after {last!r}: rows are not in key order"
                )
            last = row.key
        yield page
        if len(page) < batch:
            return


async def is_empty(storage: Storage) -> bool:
    return not await storage.list("", limit=1)


async def refuse_empty(source: Storage) -> None:
    """:class:`SourceEmpty` unless ``source`` holds a row."""
    if await is_empty(source):
        raise SourceEmpty(
            "the source holds no rows (is it the right file or database?); nothing was written"
        )


async def copy(
    source: Storage,
    destination: Storage,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Copy every row of ``source`` into the empty ``destination``, one commit per batch.

    Returns ``(rows, batches)``. Raises :class:`SourceEmpty` or :class:`DestinationNotEmpty`
    before writing anything; :class:`~kvault.errors.StorageConflict` if a row appeared in
    the destination meanwhile (that batch is not written).
    """
    _check_batch(batch)
    await refuse_empty(source)
    if not await is_empty(destination):
        raise DestinationNotEmpty(
            "the destination already holds rows: migrate only into an empty store "
            "(a new database or file); nothing was written"
        )
    copied = batches = 0
    async for page in pages(source, batch):
        await destination.commit([Put(row.key, row.value, ABSENT) for row in page])
        copied += len(page)
        batches += 1
        if progress is not None:
            progress(copied, len(page))
    return copied, batches


def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


async def tally(storage: Storage, *, batch: int = BATCH) -> Tally:
    """Count and hash every row (see the module's doc for the exact bytes hashed)."""
    digest = hashlib.sha256()
    rows = 0
    async for page in pages(storage, batch):
        for row in page:
            digest.update(_frame(row.key.encode("utf-8")))
            digest.update(_frame(bytes(row.value)))
        rows += len(page)
    return Tally(rows, digest.hexdigest())


async def verify(source: Storage, destination: Storage, *, batch: int = BATCH) -> Verification:
    """Tally both stores; :attr:`Verification.ok` when they hold the same rows."""
    return Verification(await tally(source, batch=batch), await tally(destination, batch=batch))


async def migrate(
    source: Storage,
    destination: Storage,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> Report:
    """:func:`copy`, then :func:`verify`. The caller checks :attr:`Report.ok`."""
    copied, batches = await copy(source, destination, batch=batch, progress=progress)
    return Report(copied, batches, await verify(source, destination, batch=batch))
