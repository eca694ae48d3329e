"""Several replicas on one shared store: each hears the others' writes.

Two things travel through the store's notices (:mod:`kvault.storage.notices`):

* **Rows changed** (sent by the store inside each commit, so never lost while the listening
  connection stands): a replica forgets what it cached of those rows before it serves the
  next request that needs them. Vault records (roles, settings, deletion) and keyrings (a
  KEK rotation, a purge) are the only rows cached by whole record; item rows are read from
  the store on every request (their decoding is memoised by exact bytes), so they need
  nothing.
* **Changes** (the vault's change feed, announced after each operation): republished on this
  replica's feed, so the Lease holder's controller projects a write served by any replica.
  The changes of operations that finish within :data:`GATHER` of each other travel in one
  notice (a notice is a round trip to the database; under load many operations share one).

When the listening connection was lost, notices may have been missed: every cache is
dropped and a vault-wide change is published for every vault, so the leader resyncs them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any

import orjson

from kvault.barrier import rows
from kvault.barrier.barrier import Barrier
from kvault.barrier.view import RowsChanged, Shared, Watcher
from kvault.vault.changes import Change
from kvault.vault.core import Core

log = logging.getLogger(__name__)

#: The operation of the vault-wide change published after notices may have been missed.
RESYNC = "ReplicaResync"
#: Bytes of changes per notice (PostgreSQL refuses a payload of 8,000 bytes or more).
NOTE_BYTES = 6000
#: Seconds the changes of one notice are gathered for. Each notice is a round trip to the
#: database: with only the changes of one loop turn in each, announcing took 9 % of a
#: replica's CPU under a SET load (py-spy, 32 connections); a write reaches the leader's
#: projection this much later.
GATHER = 0.005


def _fields(change: Change) -> list[str]:
    return [change.vault, change.operation, change.item, change.version]


def encode_changes(changes: Sequence[Change]) -> Iterator[str]:
    """Notes of at most :data:`NOTE_BYTES` each: one change as ``[vault, operation, item,
    version]`` (as replicas before batching sent and read it), several as a list of those."""
    if len(changes) == 1:
        yield orjson.dumps(_fields(changes[0])).decode()
        return
    parts: list[bytes] = []
    size = 0
    for change in changes:
        part = orjson.dumps(_fields(change))  # UTF-8: its length is what PostgreSQL counts
        if parts and size + len(part) + 1 > NOTE_BYTES:
            yield f"[{b','.join(parts).decode()}]"
            parts, size = [], 0
        parts.append(part)
        size += len(part) + 1
    if parts:
        yield f"[{b','.join(parts).decode()}]"


def decode_changes(note: str) -> list[Change]:
    """The changes of a note (nothing for one that is not ours)."""
    try:
        doc = json.loads(note)
    except ValueError:
        return []
    if not isinstance(doc, list):
        return []
    entries = [doc] if doc and not isinstance(doc[0], list) else doc
    out = []
    for entry in entries:
        if isinstance(entry, list) and len(entry) == 4:
            vault, operation, item, version = map(str, entry)
            out.append(Change(vault, operation, item, version, remote=True))
    return out


class Replicas:
    """Joins ``core`` and ``barrier`` to the other replicas sharing ``store``."""

    def __init__(
        self,
        store: Shared,
        core: Core,
        barrier: Barrier,
        vault_names: Callable[[], Awaitable[list[str]]],
    ) -> None:
        self._store = store
        self._core = core
        self._barrier = barrier
        self._vault_names = vault_names
        self._sending: set[asyncio.Task[None]] = set()
        self._pending: list[Change] = []  # to announce; a task sending is under way

    async def start(self) -> None:
        await self._store.watch(Watcher(self.rows_changed, self.note, self.reset))
        self._core.changes.subscribe(self._announce)

    async def drain(self) -> None:
        """Wait for the announcements under way (before the store closes)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    def rows_changed(self, notice: RowsChanged) -> None:
        if notice.everything:
            self._forget_all()
            return
        for key in notice.keys:
            if key.startswith(rows.VAULTS):
                self._core.forget_vault(key.removeprefix(rows.VAULTS))
            elif key.startswith(rows.KEYRINGS):
                self._barrier.forget_keyring(key.removeprefix(rows.KEYRINGS))
        if any(p.startswith(rows.SYSTEM) or rows.SYSTEM.startswith(p) for p in notice.prefixes):
            self._forget_all()

    def note(self, note: str) -> None:
        for change in decode_changes(note):
            self._core.changes.publish(change)

    def reset(self) -> None:
        self._forget_all()
        self._spawn(self._resync())

    def _forget_all(self) -> None:
        self._core.forget_vault()
        self._barrier.clear_caches()

    async def _resync(self) -> None:
        try:
            names = await self._vault_names()
        except Exception as exc:  # the store is away: the reset after it returns covers it
            log.warning("replica resync skipped: %s", type(exc).__name__)
            return
        for name in names:
            self._core.changes.publish(Change(name, RESYNC, remote=True))

    def _announce(self, change: Change) -> None:
        if change.remote:
            return
        if not self._pending:
            self._spawn(self._send())
        self._pending.append(change)

    async def _send(self) -> None:
        """Announce what is pending after :data:`GATHER` seconds (the changes that finish
        meanwhile go in the same notice), then what piled up, until nothing is left."""
        try:
            while self._pending:
                await asyncio.sleep(GATHER)
                batch = self._pending[:]
                for note in encode_changes(batch):
                    await self._store.announce(note)
                del self._pending[: len(batch)]
        finally:
            self._pending.clear()  # cancelled (shutting down): the next change starts afresh

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
