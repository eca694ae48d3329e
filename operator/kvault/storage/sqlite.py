"""Single-file SQLite backend: the default store for one kvault replica.

Why these choices:

* One connection on one dedicated thread. ``sqlite3`` calls block, so they must stay off the
  event loop; a single writer thread serialises commits for free (no ``SQLITE_BUSY`` inside the
  process) and keeps the statement cache warm for the secret read path.
* ``journal_mode=WAL`` + ``synchronous=FULL``: every commit fsyncs the WAL before it returns, so
  an acknowledged write survives SIGKILL and power loss.
* ``secure_delete=ON``: freed cells and pages are zeroed, so deleted ciphertext (and above all
  deleted data keys: crypto-shredding) does not linger in the database file. Old page images
  can still sit in the WAL until it is checkpointed; :meth:`SQLiteStorage.checkpoint` truncates it.
* ``temp_store=MEMORY``: no temporary files holding row data.
* Keys are ``TEXT`` with the default ``BINARY`` collation, which compares UTF-8 bytes with
  ``memcmp``; UTF-8 byte order equals code point order, so SQL order equals Python ``str`` order.

Lifecycle: build with ``SQLiteStorage(path)`` (or :meth:`SQLiteStorage.from_options`), then
``await storage.open()``; ``await storage.close()`` is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self, TypeVar

from kvault.errors import ConfigError, KvaultError, Unavailable
from kvault.storage.base import Delete, DeletePrefix, Op, Put, Row, checked, conflict, holds

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SQLiteStorage", "prefix_upper_bound"]

T = TypeVar("T")

#: ``PRAGMA application_id`` stamped on kvault databases ("kvlt"), so a foreign file is refused.
APPLICATION_ID = 0x6B766C74
#: ``PRAGMA user_version``: the layout of the ``rows`` table.
SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rows ("
    "key TEXT PRIMARY KEY, value BLOB NOT NULL, revision INTEGER NOT NULL"
    ") WITHOUT ROWID"
)
_GET = "SELECT value, revision FROM rows WHERE key = ?"
#: Primary result codes of a write the disk refused (extended codes keep them in the low byte).
_SQLITE_IOERR, _SQLITE_FULL = 10, 13
_REVISION = "SELECT revision FROM rows WHERE key = ?"
_INSERT = "INSERT INTO rows (key, value, revision) VALUES (?, ?, 1)"
_UPDATE = "UPDATE rows SET value = ?, revision = ? WHERE key = ?"
_DELETE = "DELETE FROM rows WHERE key = ?"
_MAX_CODE_POINT = 0x10FFFF
_BUSY_TIMEOUT_MS = 10_000


def prefix_upper_bound(prefix: str) -> str | None:
    """Smallest string greater than every string that starts with ``prefix``.

    ``None`` when there is none (empty prefix, or only U+10FFFF). Incrementing the last code
    point is exact because UTF-8 byte order equals code point order; surrogates are skipped
    because they cannot be stored. (``prefix + "\\uffff"`` would miss keys with astral chars.)
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1])
        if code < _MAX_CODE_POINT:
            code += 1
            if 0xD800 <= code <= 0xDFFF:
                code = 0xE000
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SQLiteStorage:
    """The ``sqlite`` storage backend (entry point group ``kvault.storage``).

    Satisfies :class:`kvault.storage.base.Storage`; adds :meth:`integrity_check`,
    :meth:`checkpoint` and :meth:`pragmas`, which only make sense for SQLite.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._closed = False

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Self:
        """Build from string options (``path``), like the HSM plugins; not yet opened."""
        path = options.get("path", "").strip()
        if not path:
            raise ConfigError("sqlite storage needs the option 'path' (the database file)")
        return cls(Path(path))

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the directory (0700) and file (0600) if needed, apply PRAGMAs, create schema.

        Raises :class:`ConfigError` when the file is not a kvault database or WAL is refused.
        """
        if self._closed:
            raise RuntimeError("SQLiteStorage cannot be reopened after close(); build a new one")
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvault-sqlite")
        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(executor, self._connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor = executor
        self._reader = self._connect_reader()

    def _connect_reader(self) -> sqlite3.Connection:
        """A read-only connection used inline on the caller's thread.

        Reads of cached pages take microseconds, while a hop to the writer thread costs
        about 70 us on this kind of machine: the read path of every secret goes here. WAL
        lets it read the last committed state while the writer works.
        """
        conn = sqlite3.connect(
            f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        for pragma in ("query_only=ON", "temp_store=MEMORY", "trusted_schema=OFF"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        return conn

    def _read(self) -> sqlite3.Connection:
        reader = self._reader
        if reader is None:
            state = "closed" if self._closed else "not open (call open() first)"
            raise RuntimeError(f"SQLiteStorage {self.path} is {state}")
        return reader

    async def close(self) -> None:
        """Close the connection (SQLite checkpoints and removes the WAL) and stop the thread."""
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=True)

    def _connect(self) -> sqlite3.Connection:
        try:
            self._prepare_files()
        except OSError as exc:
            raise ConfigError(f"cannot create sqlite database {self.path}: {exc}") from exc
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open sqlite database {self.path}: {exc}") from exc
        try:
            self._configure(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare_files(self) -> None:
        parent = self.path.parent
        missing: list[Path] = []
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):  # an existing directory (a volume) is left alone
            directory.mkdir(mode=0o700)
            os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
            _fsync_dir(directory.parent)
        parent = self.path.parent
        created = False
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            created = True
        except FileExistsError:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError(f"sqlite database {self.path} is not a regular file")
            # SQLite gives -wal/-shm the mode of the database: keep all three owner-only.
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(parent)  # the new directory entry must be as durable as the first commit

    def _configure(self, conn: sqlite3.Connection) -> None:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigError(
                    f"sqlite database {self.path} refused WAL mode (got {mode!r}); "
                    "is it on a network filesystem?"
                )
            for pragma in (
                "synchronous=FULL",
                "secure_delete=ON",
                "temp_store=MEMORY",
                "trusted_schema=OFF",
                f"busy_timeout={_BUSY_TIMEOUT_MS}",
            ):
                conn.execute(f"PRAGMA {pragma}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._check_or_create_schema(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot use sqlite database {self.path}: {exc}") from exc

    def _check_or_create_schema(self, conn: sqlite3.Connection) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        if app_id == 0 and version == 0 and tables == 0:
            conn.execute(_SCHEMA)
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            return
        if app_id != APPLICATION_ID:
            raise ConfigError(f"{self.path} is a sqlite database but not a kvault store")
        if version != SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path} has storage schema version {version}; "
                f"this kvault supports {SCHEMA_VERSION}"
            )

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the worker thread with the connection.

        If the awaiting task is cancelled the call still finishes on the thread, so a commit is
        never left half done (it may still have been applied).
        """
        executor = self._executor
        if executor is None:
            state = "closed" if self._closed else "not open (call open() first)"
            raise RuntimeError(f"SQLiteStorage {self.path} is {state}")
        return await asyncio.get_running_loop().run_in_executor(executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError(f"SQLiteStorage {self.path} is closed")
        return fn(conn)

    # -- Storage protocol --------------------------------------------------------------------

    async def get(self, key: str) -> Row | None:
        found = self._read().execute(_GET, (key,)).fetchone()
        return None if found is None else Row(key, found[0], found[1])

    async def list(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> list[Row]:
        """Rows whose key starts with ``prefix``, in bytewise key order, after ``start_after``."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if limit == 0:
            return []
        where = ["key >= ?"]
        params: list[str | int] = [prefix]
        upper = prefix_upper_bound(prefix)
        if upper is not None:
            where.append("key < ?")
            params.append(upper)
        if start_after is not None:
            where.append("key > ?")
            params.append(start_after)
        params.append(-1 if limit is None else limit)
        sql = (
            "SELECT key, value, revision FROM rows"
            f" WHERE {' AND '.join(where)} ORDER BY key LIMIT ?"
        )

        return [Row(k, v, r) for k, v, r in self._read().execute(sql, params)]

    async def commit(self, ops: Sequence[Op]) -> dict[str, int]:
        """Apply ``ops`` in order inside one ``BEGIN IMMEDIATE`` transaction.

        Each op sees the effects of the ops before it in the same batch. The result maps each
        key written by a :class:`Put` to the revision its last put assigned.
        """
        ops = checked(ops)
        if not ops:
            return {}
        try:
            return await self._run(lambda conn: _apply(conn, ops))
        except sqlite3.OperationalError as exc:
            # The transaction was rolled back: nothing of it is written. A full or failing
            # disk is the deployment's to fix, and then writes work again: 503, not 500.
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (_SQLITE_FULL, _SQLITE_IOERR):
                raise Unavailable(
                    f"storage cannot be written ({getattr(exc, 'sqlite_errorname', 'I/O')}: "
                    "disk full?); nothing was changed"
                ) from None
            raise

    # -- SQLite specific ---------------------------------------------------------------------

    async def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` or the problems found, one per line."""

        def check(conn: sqlite3.Connection) -> str:
            return "\n".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))

        return await self._run(check)

    async def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it to zero bytes.

        Call after purges: until then old page images (deleted ciphertext) remain in the WAL.
        Raises :class:`KvaultError` if another connection's reader kept it from completing.
        """

        def run(conn: sqlite3.Connection) -> tuple[int, int, int]:
            busy, log, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return int(busy), int(log), int(done)

        busy, log, done = await self._run(run)
        if busy:
            raise KvaultError(
                f"WAL checkpoint of {self.path} incomplete ({done}/{log} frames): a reader is busy"
            )

    async def pragmas(self) -> dict[str, int | str]:
        """The effective safety settings of the live connection (for tests and diagnostics)."""

        def read(conn: sqlite3.Connection) -> dict[str, int | str]:
            names = ("journal_mode", "synchronous", "secure_delete", "temp_store")
            return {n: conn.execute(f"PRAGMA {n}").fetchone()[0] for n in names}

        return await self._run(read)


def _apply(conn: sqlite3.Connection, ops: Sequence[Op]) -> dict[str, int]:
    """The body of :meth:`SQLiteStorage.commit`, on the worker thread."""
    written: dict[str, int] = {}
    conn.execute("BEGIN IMMEDIATE")
    try:
        for op in ops:
            if isinstance(op, Put):
                current = _revision(conn, op.key)
                _expect(op.key, op.expect, current)
                if current is None:
                    conn.execute(_INSERT, (op.key, bytes(op.value)))
                    written[op.key] = 1
                else:
                    conn.execute(_UPDATE, (bytes(op.value), current + 1, op.key))
                    written[op.key] = current + 1
            elif isinstance(op, Delete):
                if op.expect is not None:
                    _expect(op.key, op.expect, _revision(conn, op.key))
                conn.execute(_DELETE, (op.key,))
            elif isinstance(op, DeletePrefix):
                upper = prefix_upper_bound(op.prefix)
                if upper is None:
                    conn.execute("DELETE FROM rows WHERE key >= ?", (op.prefix,))
                else:
                    conn.execute("DELETE FROM rows WHERE key >= ? AND key < ?", (op.prefix, upper))
            else:
                _expect(op.key, op.expect, _revision(conn, op.key))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return written


def _revision(conn: sqlite3.Connection, key: str) -> int | None:
    found = conn.execute(_REVISION, (key,)).fetchone()
    return None if found is None else int(found[0])


def _expect(key: str, expect: int | None, current: int | None) -> None:
    """Raise :class:`StorageConflict` unless ``current`` matches ``expect`` (None: anything)."""
    if not holds(expect, current):
        raise conflict(key, expect, current)
