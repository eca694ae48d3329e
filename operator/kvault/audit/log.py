"""Append-only audit log file, hash-chained (see :mod:`kvault.audit.chain`)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from kvault.audit.chain import GENESIS, canonical, line_hash
from kvault.audit.event import AuditEvent
from kvault.errors import ConfigError

_TAIL = 64 * 1024


def _last_hash(path: Path) -> str:
    """The chain head: the hash of the last complete line, read from the file's tail."""
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - _TAIL))
        tail = f.read()
    lines = [ln for ln in tail.split(b"\n") if ln.strip()]
    if not lines:
        return GENESIS
    try:
        value = json.loads(lines[-1])["hash"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"audit log {path} ends with a malformed line; run `kvault audit verify {path}`"
        ) from None
    if not isinstance(value, str):
        raise ConfigError(f"audit log {path} ends with a line without a hash")
    return value


class AuditLog:
    """Writes one line per event with ``O_APPEND`` (one write per line: lines never interleave).

    A written line survives the process being killed (it is in the kernel's page cache); it
    survives a power cut once :meth:`settle` returned. ``settle`` is a group commit: callers
    that arrive while an ``fdatasync`` runs share the next one, so a burst of writes costs a
    few syncs, not one each."""

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._fsync = fsync
        self._lock = threading.Lock()
        self._prev = _last_hash(path)
        self._written = 0  # lines written by this process
        self._synced = 0  # of which known to be on disk
        self._syncing: asyncio.Lock | None = None

    def record(self, event: AuditEvent) -> None:
        fields = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "principal": event.principal,
            "vault": event.vault,
            "operation": event.operation,
            "outcome": event.outcome,
            "item": event.item,
            "version": event.version,
            "request_id": event.request_id,
            "prev": "",
        }
        with self._lock:
            fields["prev"] = self._prev
            digest = line_hash(self._prev, fields)
            os.write(self._fd, canonical({**fields, "hash": digest}) + b"\n")
            if self._fsync:
                os.fsync(self._fd)
            self._prev = digest
            self._written += 1

    async def settle(self) -> None:
        target = self._written
        if self._synced >= target:
            return
        if self._syncing is None:
            self._syncing = asyncio.Lock()
        async with self._syncing:
            if self._synced >= target:  # a sync that began after our line covered it
                return
            upto, fd = self._written, self._fd
            if fd < 0:
                return  # closed: close() synced
            await asyncio.to_thread(os.fdatasync, fd)
            self._synced = max(self._synced, upto)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
