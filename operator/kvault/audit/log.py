"""Append-only audit log file, hash-chained (see :mod:`kvault.audit.chain`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

from kvault.audit.chain import GENESIS, canonical
from kvault.audit.event import AuditEvent
from kvault.errors import ConfigError, Unavailable

_TAIL = 64 * 1024
#: Lines held in memory while the file cannot be written; past this, operations are refused.
MAX_HELD = 10_000
_FULL = "the audit log {path} cannot be written (disk full?); no change is made until it can"
log = logging.getLogger(__name__)


def _count_lines(path: Path) -> int:
    """Complete lines in the file (its newlines), read in blocks."""
    count = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
    return count


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
        self._lines = _count_lines(path)  # in the file, for checkpoints
        self._written = 0  # lines recorded by this process
        self._synced = 0  # of which known to be on disk
        self._syncing: asyncio.Lock | None = None
        #: Bytes recorded but not yet in the file (it could not be written: disk full).
        self._unwritten = bytearray()
        self._failing = False
        self._stamped = (-1, "")  # a second and its date and time, formatted

    def _now(self) -> str:
        """UTC now as ``2024-05-01T12:00:00.123Z`` (the date part formatted once a second)."""
        now = time.time()
        second = int(now)
        stamped, stamp = self._stamped  # one tuple: threads never see a torn pair
        if second != stamped:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._stamped = (second, stamp)
        return f"{stamp}.{int((now - second) * 1000):03d}Z"

    def record(self, event: AuditEvent) -> None:
        fields: dict[str, object] = {
            "time": self._now(),
            "principal": event.principal,
            "vault": event.vault,
            "operation": event.operation,
            "outcome": event.outcome,
            "item": event.item,
            "version": event.version,
            "request_id": event.request_id,
            "prev": "",
        }
        if event.source:
            fields["source"] = event.source
        if event.count:
            fields["count"] = event.count
        with self._lock:
            fields["prev"] = self._prev
            body = canonical(fields)
            digest = hashlib.sha256(self._prev.encode() + body).hexdigest()  # line_hash()
            # The line is canonical({**fields, "hash": digest}), spliced rather than encoded
            # twice: of the keys only "count" sorts before "hash".
            at = body.index(b",") + 1 if "count" in fields else 1
            self._unwritten += b"".join(
                (body[:at], b'"hash":"', digest.encode(), b'",', body[at:], b"\n")
            )
            self._prev = digest
            self._written += 1
            if self._write_unwritten() and self._fsync:
                os.fsync(self._fd)
            elif self._unwritten.count(b"\n") > MAX_HELD:
                raise Unavailable(_FULL.format(path=self.path))

    def _write_unwritten(self) -> bool:
        """Append what is held to the file (lock held); whether all of it is there now.

        A file that cannot be written (ENOSPC, EIO) keeps the lines in memory, in order and
        chained, and says so once in the log; they go out with the next line that fits."""
        while self._unwritten:
            try:
                done = os.write(self._fd, self._unwritten)
            except OSError as exc:
                if not self._failing:
                    self._failing = True
                    log.error(
                        "audit log %s cannot be written (%s): its lines are held in memory",
                        self.path,
                        exc.strerror,
                    )
                return False
            self._lines += self._unwritten[:done].count(b"\n")
            del self._unwritten[:done]
        if self._failing:
            self._failing = False
            log.warning("audit log %s is written again", self.path)
        return True

    def head(self) -> tuple[int, str] | None:
        """How many lines the file holds and the hash of the last (the chain's head);
        ``None`` while recorded lines are held in memory (the file's last line is not the
        chain's head then)."""
        with self._lock:
            return None if self._unwritten else (self._lines, self._prev)

    async def settle(self) -> None:
        """:class:`Unavailable` if a recorded line cannot be made durable (the file cannot
        be written or synced): the change it announces must not be made."""
        target = self._written
        if self._synced >= target:
            return
        if self._syncing is None:
            self._syncing = asyncio.Lock()
        async with self._syncing:
            if self._synced >= target:  # a sync that began after our line covered it
                return
            with self._lock:
                if not self._write_unwritten():
                    raise Unavailable(_FULL.format(path=self.path))
                upto, fd = self._written, self._fd
            if fd < 0:
                return  # closed: close() synced
            try:
                await asyncio.to_thread(os.fdatasync, fd)
            except OSError as exc:
                raise Unavailable(_FULL.format(path=self.path) + f" ({exc.strerror})") from None
            self._synced = max(self._synced, upto)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                if not self._write_unwritten():
                    log.error(
                        "audit log %s: %d lines could not be written before closing",
                        self.path,
                        self._unwritten.count(b"\n"),
                    )
                with contextlib.suppress(OSError):
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
