"""PostgreSQL backend: the store for several kvault replicas sharing one database.

Driver: asyncpg, chosen over psycopg 3 (+ psycopg_pool) by measurement on this kind of machine
(2 cores, PostgreSQL 15 on loopback, 400-byte values, the statements this module runs; two
runs each, ops per second):

* point get on one connection: asyncpg 25,100-26,600 (38-40 us); psycopg 8,100-10,100
  (99-123 us);
* point get, 16 tasks through the pool: asyncpg 6,500-9,500; psycopg 7,500-8,600;
* serialisable single-row commit, one at a time: asyncpg 1,490-1,960; psycopg 1,130-1,670;
* the same, 16 tasks at once: asyncpg 3,330-3,500; psycopg 2,970-3,040.

A point read costs a third with asyncpg (binary protocol, Cython row decoding, ``bytea``
arriving as ``bytes`` with no hex decoding), and the secret read path is what kvault serves
most; commits are bound by the WAL flush either way, asyncpg still ahead. Its pool is not
used: :mod:`.pg_pool` lends a connection for a third of its CPU. Its costs: no inline types
(``asyncpg-stubs`` gives mypy them) and only ``postgresql://`` URLs as DSNs (not libpq's
``key=value`` form).

Guarantees, the same as :mod:`kvault.storage.sqlite`:

* **Compare-and-set and atomic batches.** A :meth:`PostgreSQLStorage.commit` is one
  ``SERIALIZABLE`` transaction, one call of the server-side function ``kvault_commit`` (one
  round trip; the second schema migration creates it): its ops apply in order and all or
  none land, and two commits whose expectations conflict can never both succeed (the
  database aborts one with a serialisation failure). Such aborts, and deadlocks, are retried
  here on a fresh snapshot, so a caller sees :class:`~kvault.errors.StorageConflict` only
  when an ``expect`` really does not hold (or, in a storm, after losing every one of
  ``_SERIAL_ATTEMPTS`` re-runs).
* **Durability.** Every session runs with ``synchronous_commit=on``: ``COMMIT`` returns after
  the WAL is flushed (and, with synchronous standbys configured, after they have it).
  :meth:`PostgreSQLStorage.settings` shows the effective values, ``fsync`` included.
* **Ciphertext only.** Rows are ``bytea``; values are stored ``EXTERNAL`` (no pointless
  compression attempts on ciphertext).
* **Bytewise key order.** Keys are ``bytea`` holding their UTF-8 bytes: ``bytea`` compares
  with ``memcmp`` whatever the database's collation, so listing order equals SQLite's (and
  Python's ``str`` order), and keys may hold any character, NUL included (``text`` may not).
* **Schema and migrations.** :meth:`PostgreSQLStorage.open` applies :data:`MIGRATIONS` in one
  transaction under a transaction-scoped advisory lock, so replicas starting together migrate
  once; a database migrated by a newer kvault is refused.
* **The database away.** Connection failures (refused, reset, the server restarting or in
  recovery, timeouts) raise :class:`~kvault.errors.Unavailable` (HTTP 503 with
  ``Retry-After``) and mark the store down; while it is down every operation fails at once
  without touching the network, and one background task probes with exponential back-off
  (:data:`BACKOFF_MIN` to :data:`BACKOFF_MAX`), then lets operations through again. No
  call to the database (connecting included) waits longer than ``timeout`` seconds. A commit
  cut off mid-flight may or may not have landed (never partly); the caller learns which by
  reading.

Lifecycle: ``PostgreSQLStorage(dsn)`` (or :meth:`PostgreSQLStorage.from_options`), then
``await storage.open()``; ``await storage.close()`` is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import asyncpg
import asyncpg.exceptions as pgerr

from kvault.errors import ConfigError, StorageConflict, Unavailable
from kvault.storage.base import (
    Delete,
    DeletePrefix,
    Op,
    Put,
    Row,
    checked,
    conflict,
)
from kvault.storage.notices import RowsChanged, Watcher, note_payload, rows_changed
from kvault.storage.pg_listen import NOTES_CHANNEL, ROWS_CHANNEL, Listener
from kvault.storage.pg_pool import Connection, Pool
from kvault.storage.row_cache import DEFAULT_MAX_BYTES, RowCache

__all__ = [
    "ADVISORY_LOCK",
    "BACKOFF_MAX",
    "BACKOFF_MIN",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "PostgreSQLStorage",
    "bytes_upper_bound",
]

log = logging.getLogger(__name__)

#: One commit in one statement (one round trip): the ops as parallel arrays, applied in order;
#: then the notice. ``kinds``: 1 put, 2 delete, 3 delete prefix (``vals[i]``: the upper bound,
#: NULL for none), 4 check; ``expects[i]`` NULL: unconditional, 0: absent. Returns each op's
#: new revision (NULL but for puts). An expectation that does not hold raises SQLSTATE
#: ``KV409`` with the op's number (from 1) and the row's revision (``-``: absent) as detail.
_COMMIT_FUNCTION = """
CREATE FUNCTION kvault_commit(
    kinds int2[], keys bytea[], vals bytea[], expects int8[], channel text, notice text)
RETURNS int8[] LANGUAGE plpgsql AS $fn$
DECLARE
    n int := coalesce(array_length(kinds, 1), 0);
    revs int8[] := array_fill(NULL::int8, ARRAY[n]);
    rev int8;
    cur int8;
BEGIN
    FOR i IN 1 .. n LOOP
        rev := NULL;
        cur := NULL;
        IF kinds[i] = 1 THEN
            IF expects[i] IS NULL THEN
                INSERT INTO kvault_rows AS r (key, value, revision) VALUES (keys[i], vals[i], 1)
                    ON CONFLICT (key) DO UPDATE
                    SET value = excluded.value, revision = r.revision + 1
                    RETURNING r.revision INTO rev;
            ELSIF expects[i] = 0 THEN
                INSERT INTO kvault_rows (key, value, revision) VALUES (keys[i], vals[i], 1)
                    ON CONFLICT (key) DO NOTHING RETURNING revision INTO rev;
            ELSE
                UPDATE kvault_rows SET value = vals[i], revision = revision + 1
                    WHERE key = keys[i] AND revision = expects[i] RETURNING revision INTO rev;
            END IF;
            IF rev IS NULL THEN
                SELECT revision INTO cur FROM kvault_rows WHERE key = keys[i];
                RAISE EXCEPTION USING ERRCODE = 'KV409', MESSAGE = 'kvault storage conflict',
                    DETAIL = i || ' ' || coalesce(cur::text, '-');
            END IF;
            revs[i] := rev;
        ELSIF kinds[i] = 2 THEN
            IF expects[i] IS NULL THEN
                DELETE FROM kvault_rows WHERE key = keys[i];
            ELSIF expects[i] = 0 THEN
                SELECT revision INTO cur FROM kvault_rows WHERE key = keys[i];
                IF cur IS NOT NULL THEN
                    RAISE EXCEPTION USING ERRCODE = 'KV409',
                        MESSAGE = 'kvault storage conflict', DETAIL = i || ' ' || cur;
                END IF;
            ELSE
                DELETE FROM kvault_rows WHERE key = keys[i] AND revision = expects[i]
                    RETURNING revision INTO rev;
                IF rev IS NULL THEN
                    SELECT revision INTO cur FROM kvault_rows WHERE key = keys[i];
                    RAISE EXCEPTION USING ERRCODE = 'KV409', MESSAGE = 'kvault storage conflict',
                        DETAIL = i || ' ' || coalesce(cur::text, '-');
                END IF;
            END IF;
        ELSIF kinds[i] = 3 THEN
            IF vals[i] IS NULL THEN
                DELETE FROM kvault_rows WHERE key >= keys[i];
            ELSE
                DELETE FROM kvault_rows WHERE key >= keys[i] AND key < vals[i];
            END IF;
        ELSE
            SELECT revision INTO cur FROM kvault_rows WHERE key = keys[i];
            IF cur IS DISTINCT FROM nullif(expects[i], 0) THEN
                RAISE EXCEPTION USING ERRCODE = 'KV409', MESSAGE = 'kvault storage conflict',
                    DETAIL = i || ' ' || coalesce(cur::text, '-');
            END IF;
        END IF;
    END LOOP;
    IF notice IS NOT NULL THEN
        PERFORM pg_notify(channel, notice);
    END IF;
    RETURN revs;
END
$fn$"""
#: ``pg_advisory_xact_lock`` key held while migrating ("kvlt" + 1).
ADVISORY_LOCK = 0x6B766C74_00000001
#: Schema migrations: ``MIGRATIONS[n - 1]`` takes the schema from version ``n - 1`` to ``n``.
#: Append only; never edit a released step.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE kvault_rows ("
        " key bytea PRIMARY KEY,"
        " value bytea NOT NULL,"
        " revision bigint NOT NULL CHECK (revision > 0))",
        "ALTER TABLE kvault_rows ALTER COLUMN value SET STORAGE EXTERNAL",
    ),
    (_COMMIT_FUNCTION,),
)
SCHEMA_VERSION = len(MIGRATIONS)
_META = (
    "CREATE TABLE kvault_schema ("
    " version integer PRIMARY KEY,"
    " applied_at timestamptz NOT NULL DEFAULT now())"
)

_GET = "SELECT value, revision FROM kvault_rows WHERE key = $1"
#: Op kinds in ``kvault_commit``'s ``kinds``.
_PUT, _DELETE, _DELETE_PREFIX, _CHECK = 1, 2, 3, 4
#: SQLSTATE ``kvault_commit`` raises when an ``expect`` does not hold.
_CONFLICT = "KV409"
_COMMIT = "SELECT kvault_commit($1, $2, $3, $4, $5, $6)"
_NOTIFY = "SELECT pg_notify($1, $2)"

#: Seconds between probes while the database is away: doubling, with jitter.
BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0
#: Attempts of one commit against serialisation failures and deadlocks.
_SERIAL_ATTEMPTS = 60
_SERIAL_BACKOFF_CAP = 0.05

#: ``application_name`` of the connection listening for notices (as DBAs see it).
LISTENER_APPLICATION = "kvault-notices"
#: Session settings sent at connection start (any role may set these).
_SESSION = {
    "application_name": "kvault",
    "synchronous_commit": "on",
    "idle_in_transaction_session_timeout": "60000",
}
#: ``statement_timeout`` as a share of ``timeout`` (the client's limit).
_SERVER_SHARE = 0.8
#: Sessions that commit: every statement is its own ``SERIALIZABLE`` transaction, so a commit
#: (one ``kvault_commit`` call) needs no ``BEGIN``/``COMMIT`` round trips. Reads keep the
#: default isolation on a pool of their own (one statement sees one snapshot anyway).
_WRITER_SESSION = {**_SESSION, "default_transaction_isolation": "serializable"}

#: Errors meaning "the database cannot be reached or used now" (not: the request is wrong).
_AWAY: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, DNS
    TimeoutError,  # connect or query timed out
    pgerr.PostgresConnectionError,  # SQLSTATE class 08
    pgerr.OperatorInterventionError,  # class 57: shutdown, crash, starting up, cancelled
    pgerr.InsufficientResourcesError,  # class 53: too many connections, disk full
    pgerr.ConnectionDoesNotExistError,  # closed in the middle of an operation
    # A connection whose server sent a FATAL (e.g. "unexpected postmaster exit") before
    # closing: the protocol is stuck waiting for a ReadyForQuery that never comes, and the
    # next statement is refused before it is sent.
    pgerr.InternalClientError,
)
_AWAY_OR_REFUSED: tuple[type[BaseException], ...] = (*_AWAY, pgerr.PostgresError)
#: Serialisation failures and deadlocks: the transaction may simply run again.
_RETRY: tuple[type[BaseException], ...] = (
    pgerr.SerializationError,
    pgerr.DeadlockDetectedError,
    pgerr.UniqueViolationError,
)


def bytes_upper_bound(prefix: bytes) -> bytes | None:
    """Smallest byte string greater than every string that starts with ``prefix`` (``None``:
    no bound, for an empty prefix or one of only ``0xff`` bytes)."""
    stem = prefix.rstrip(b"\xff")
    if not stem:
        return None
    return stem[:-1] + bytes([stem[-1] + 1])


def _encode(key: str) -> bytes:
    return key.encode("utf-8")


def _read_secret_file(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the PostgreSQL DSN file {path}: {exc.strerror}") from None
    return text.strip()


def _positive(options: Mapping[str, str], name: str, default: float) -> float:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(
            f"postgresql storage option {name} must be a number, got {raw!r}"
        ) from None
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"postgresql storage option {name} must be positive, got {raw!r}")
    return value


class PostgreSQLStorage:
    """The ``postgresql`` storage backend (entry point group ``kvault.storage``).

    ``dsn`` is a ``postgresql://`` URL (it may name a ``passfile``, ``sslmode``...); it is
    never logged nor put in an error message. ``pool_size``: connections per pool (one pool
    reads, one commits: up to twice this many per process, plus the listener's);
    ``timeout``: the longest any operation may take (seconds), connecting included;
    ``cache_bytes``: rows kept in memory while :meth:`watch` hears every commit
    (:mod:`.row_cache`; 0: none).
    """

    OPTIONS = frozenset({"dsn_env", "dsn_file", "pool_size", "timeout", "cache_mb"})

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 10,
        timeout: float = 10.0,
        cache_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise ConfigError("the PostgreSQL DSN must be a postgresql:// URL")
        self._dsn = dsn
        self.pool_size = pool_size
        self.timeout = timeout
        self._pool: Pool | None = None  # reads
        self._writers: Pool | None = None  # commits (:data:`_WRITER_SESSION`)
        self._closed = False
        self._down: str | None = None  # why the database is away, while it is
        self._prober: asyncio.Task[None] | None = None
        #: This process in the notices other replicas get (:mod:`kvault.storage.notices`).
        self.origin = uuid.uuid4().hex[:16]
        self._listener: Listener | None = None
        self.cache = RowCache(cache_bytes)

    def __repr__(self) -> str:  # never the DSN: it may hold a password
        return f"PostgreSQLStorage(pool_size={self.pool_size}, timeout={self.timeout})"

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Self:
        """Build from string options, like the HSM plugins; not yet opened.

        ``dsn_env`` (the name of an environment variable holding the DSN) or ``dsn_file`` (a
        file holding it, e.g. a mounted Secret): exactly one, so the password never appears
        on a command line. Optional: ``pool_size`` (default 10), ``timeout`` (seconds, 10),
        ``cache_mb`` (MiB of rows kept in memory on a watched store, 64; 0: none).
        """
        unknown = sorted(set(options) - cls.OPTIONS)
        if unknown:
            raise ConfigError(
                f"unknown postgresql storage option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(cls.OPTIONS))}"
            )
        env, file = options.get("dsn_env", "").strip(), options.get("dsn_file", "").strip()
        if bool(env) == bool(file):
            raise ConfigError(
                "postgresql storage needs exactly one of the options dsn_env=VARIABLE or "
                "dsn_file=PATH (never the DSN itself: it holds a password)"
            )
        if env:
            dsn = os.environ.get(env, "").strip()
            if not dsn:
                raise ConfigError(f"environment variable {env} (dsn_env) is unset or empty")
        else:
            dsn = _read_secret_file(file)
            if not dsn:
                raise ConfigError(f"the PostgreSQL DSN file {file} is empty")
        pool_size = _positive(options, "pool_size", 10)
        if pool_size != int(pool_size):
            raise ConfigError(f"postgresql storage option pool_size must be whole, got {pool_size}")
        cache_mb = options.get("cache_mb", "64").strip()
        if not cache_mb.isdigit():
            raise ConfigError(f"postgresql storage option cache_mb must be a whole number >= 0, "
                              f"got {cache_mb!r}")  # fmt: skip
        return cls(
            dsn,
            pool_size=int(pool_size),
            timeout=_positive(options, "timeout", 10.0),
            cache_bytes=int(cache_mb) * 1024 * 1024,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect (every session with ``synchronous_commit=on``), create or migrate the
        schema, and warn in the log if the server runs with ``fsync=off``.

        Raises :class:`ConfigError` when the database refuses the credentials or holds a
        schema from a newer kvault, :class:`Unavailable` when it cannot be reached.
        """
        if self._closed:
            raise RuntimeError("PostgreSQLStorage cannot be reopened after close(); build anew")
        if self._pool is not None:
            return
        pool, writers = self._new_pool(_SESSION), self._new_pool(_WRITER_SESSION)
        try:
            try:
                conn = await pool.acquire()
            except _AWAY as exc:
                raise Unavailable(f"the storage database cannot be reached: {_why(exc)}") from None
            except pgerr.PostgresError as exc:
                raise ConfigError(f"the storage database refused kvault: {_why(exc)}") from None
            broken = True
            try:
                await _migrate(conn)
                if await conn.fetchval("SHOW fsync") != "on":
                    log.warning("the storage database runs with fsync=off: a crash of its "
                                "machine can lose acknowledged writes")  # fmt: skip
                broken = False
            except _AWAY as exc:
                raise Unavailable(f"the storage database went away: {_why(exc)}") from None
            except pgerr.PostgresError as exc:
                raise ConfigError(f"cannot set up the storage schema: {_why(exc)}") from None
            finally:
                pool.release(conn, broken=broken)
        except BaseException:
            await pool.close()
            await writers.close()
            raise
        self._pool, self._writers = pool, writers

    def _new_pool(self, session: dict[str, str]) -> Pool:
        # The server ends a statement before the client gives up on it: a commit the client
        # timed out on was rolled back, never left to land once its lock wait ends.
        limit = str(max(1, int(self.timeout * 1000 * _SERVER_SHARE)))
        settings = {**session, "statement_timeout": limit}

        async def connect() -> Connection:
            return await asyncpg.connect(
                self._dsn,
                timeout=self.timeout,
                command_timeout=self.timeout,
                server_settings=settings,
            )

        return Pool(connect, self.pool_size, self.timeout)

    async def close(self) -> None:
        """Stop probing and close every connection (idempotent)."""
        self._closed = True
        listener, self._listener = self._listener, None
        self.cache.suspend()
        if listener is not None:
            await listener.close()
        prober, self._prober = self._prober, None
        if prober is not None:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
        pools, self._pool, self._writers = (self._pool, self._writers), None, None
        for pool in pools:
            if pool is not None:
                await pool.close()

    # -- connection health -------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False while the database is known to be away (operations fail fast)."""
        return self._down is None

    @contextlib.asynccontextmanager
    async def _connection(self, *, write: bool = False) -> AsyncIterator[Connection]:
        pool = self._writers if write else self._pool
        if pool is None:
            state = "closed" if self._closed else "not open (call open() first)"
            raise RuntimeError(f"PostgreSQLStorage is {state}")
        if self._down is not None:
            raise Unavailable(f"the storage database is unavailable: {self._down}")
        try:
            conn = await pool.acquire()
        except _AWAY as exc:
            raise self._went_away(exc) from None
        # Lent again only after a statement that ended: interrupted (a timeout, a cancelled
        # request) it may still be running, and the connection is terminated instead.
        broken = True
        try:
            yield conn
            broken = False
        except _AWAY as exc:
            raise self._went_away(exc) from None
        except pgerr.InterfaceError as exc:
            # e.g. a statement on a connection that the server has just closed
            if conn.is_closed():
                raise self._went_away(exc) from None
            raise
        except pgerr.PostgresError:
            broken = False  # the server refused one statement; the session is as it was
            raise
        finally:
            pool.release(conn, broken=broken)

    def _went_away(self, exc: BaseException) -> Unavailable:
        """Mark the store down (starting the prober) and say so."""
        why = _why(exc)
        if self._down is None and not self._closed:
            log.warning("storage database unavailable (%s); failing fast and reconnecting", why)
            self._down = why
            self._prober = asyncio.get_running_loop().create_task(self._probe())
        return Unavailable(f"the storage database is unavailable: {why}")

    async def _probe(self) -> None:
        """Try a fresh connection with exponential back-off until one works, then reopen."""
        delay = BACKOFF_MIN
        while not self._closed:
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(BACKOFF_MAX, delay * 2)
            try:
                conn = await asyncpg.connect(
                    self._dsn, timeout=self.timeout, server_settings=_SESSION
                )
                try:
                    await conn.fetchval("SELECT 1", timeout=self.timeout)
                finally:
                    await conn.close(timeout=self.timeout)
            except _AWAY_OR_REFUSED as exc:
                self._down = _why(exc)
                continue
            for pool in (self._pool, self._writers):
                if pool is not None:
                    pool.expire()  # pooled ones predate the outage
            log.warning("storage database reachable again")
            self._down = None
            self._prober = None
            return

    # -- Storage protocol --------------------------------------------------------------------

    async def get(self, key: str) -> Row | None:
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        epoch = self.cache.epoch
        async with self._connection() as conn:
            found = await conn.fetchrow(_GET, _encode(key))
        if found is None:
            return None
        row = Row(key, found[0], found[1])
        self.cache.keep(row, epoch)
        return row

    async def list(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> list[Row]:
        """Rows whose key starts with ``prefix``, in bytewise key order, after ``start_after``."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if limit == 0:
            return []
        low = _encode(prefix)
        where, params = ["key >= $1"], [low]
        upper = bytes_upper_bound(low)
        if upper is not None:
            params.append(upper)
            where.append(f"key < ${len(params)}")
        if start_after is not None:
            params.append(_encode(start_after))
            where.append(f"key > ${len(params)}")
        sql = (
            f"SELECT key, value, revision FROM kvault_rows WHERE {' AND '.join(where)} ORDER BY key"
        )
        args: list[object] = list(params)
        if limit is not None:
            args.append(limit)
            sql += f" LIMIT ${len(args)}"
        async with self._connection() as conn:
            found = await conn.fetch(sql, *args)
        return [Row(bytes(k).decode("utf-8"), v, r) for k, v, r in found]

    async def commit(self, ops: Sequence[Op]) -> dict[str, int]:
        """Apply ``ops`` in order inside one ``SERIALIZABLE`` transaction.

        Each op sees the effects of the ops before it in the same batch. The result maps each
        key written by a :class:`Put` to the revision its last put assigned.
        """
        ops = checked(ops)
        if not ops:
            return {}
        notice = rows_changed(self.origin, ops)
        # Forgotten before (reads racing the commit are not kept), then kept as written: a
        # secret's next write or read finds its head here. A row read meanwhile may be the
        # old one, and another replica's notice that came meanwhile may be of a newer one:
        # :meth:`RowCache.put` forgets a row whose key was invalidated during the commit.
        cache = self.cache
        self._forget(ops)
        epoch = cache.epoch
        written: dict[str, int] | None = None
        try:
            written = await self._commit(ops, notice)
            return written
        finally:
            if written is None:
                self._forget(ops)
            else:
                final = _final_values(ops)
                # a row deleted by this commit may have been read (before) and kept meanwhile
                self._forget([op for op in ops if not isinstance(op, Put) or op.key not in final])
                for key, value in final.items():
                    cache.put(Row(key, value, written[key]), epoch)

    def _forget(self, ops: Sequence[Op]) -> None:
        self.cache.forget(
            (op.key for op in ops if isinstance(op, Put | Delete)),
            (op.prefix for op in ops if isinstance(op, DeletePrefix)),
        )

    async def _commit(self, ops: Sequence[Op], notice: str | None) -> dict[str, int]:
        for attempt in range(_SERIAL_ATTEMPTS):
            try:
                async with self._connection(write=True) as conn:
                    return await _transaction(conn, ops, notice)
            except _RETRY:
                await asyncio.sleep(random.uniform(0, min(_SERIAL_BACKOFF_CAP, 0.001 * 2**attempt)))
        raise StorageConflict(
            f"storage commit could not be serialised against concurrent commits "
            f"in {_SERIAL_ATTEMPTS} attempts"
        )

    # -- Shared (kvault.storage.notices) ----------------------------------------------------

    async def watch(self, watcher: Watcher) -> None:
        """Hear the other replicas' commits and notes (``LISTEN``, :mod:`.pg_listen`)."""
        if self._listener is not None:
            raise RuntimeError("this store is already watched")

        async def connect() -> asyncpg.Connection[Any]:
            settings = {**_SESSION, "application_name": LISTENER_APPLICATION}
            return await asyncpg.connect(self._dsn, timeout=self.timeout, server_settings=settings)

        cache = self.cache

        def rows(notice: RowsChanged) -> None:
            if notice.everything:
                cache.clear()
            else:
                cache.forget(notice.keys, notice.prefixes)
            watcher.rows(notice)

        def reset() -> None:
            cache.resume()
            watcher.reset()

        own = Watcher(rows, watcher.note, reset)
        listener = Listener(connect, self.origin, own, self.timeout, lost=cache.suspend)
        try:
            await listener.start()
        except _AWAY_OR_REFUSED as exc:
            raise Unavailable(f"cannot listen to the storage database: {_why(exc)}") from None
        self._listener = listener
        cache.resume()

    async def announce(self, note: str) -> None:
        try:
            async with self._connection() as conn:
                await conn.execute(_NOTIFY, NOTES_CHANNEL, note_payload(self.origin, note))
        except Exception as exc:  # best effort, by contract
            log.warning("storage notice not sent: %s", type(exc).__name__)

    # -- PostgreSQL specific -----------------------------------------------------------------

    async def settings(self) -> dict[str, str]:
        """The effective durability settings of a live session (for tests and diagnostics)."""
        names = ("synchronous_commit", "fsync", "full_page_writes", "server_version")
        async with self._connection() as conn:
            return {n: str(await conn.fetchval(f"SHOW {n}")) for n in names}

    async def schema_version(self) -> int:
        async with self._connection() as conn:
            return int(await conn.fetchval("SELECT max(version) FROM kvault_schema") or 0)


async def _transaction(conn: Connection, ops: Sequence[Op], notice: str | None) -> dict[str, int]:
    """``ops`` and the ``notice`` of them that listeners get when (and only if) it commits, in
    one statement: one round trip, one implicit transaction, ``SERIALIZABLE`` by the writers'
    session default (:data:`_WRITER_SESSION`)."""
    kinds: list[int] = []
    keys: list[bytes] = []
    vals: list[bytes | None] = []
    expects: list[int | None] = []
    for op in ops:
        if isinstance(op, Put):
            kinds.append(_PUT)
            keys.append(_encode(op.key))
            vals.append(bytes(op.value))
            expects.append(op.expect)
        elif isinstance(op, Delete):
            kinds.append(_DELETE)
            keys.append(_encode(op.key))
            vals.append(None)
            expects.append(op.expect)
        elif isinstance(op, DeletePrefix):
            low = _encode(op.prefix)
            kinds.append(_DELETE_PREFIX)
            keys.append(low)
            vals.append(bytes_upper_bound(low))
            expects.append(None)
        else:
            kinds.append(_CHECK)
            keys.append(_encode(op.key))
            vals.append(None)
            expects.append(op.expect)
    try:
        revisions = await conn.fetchval(_COMMIT, kinds, keys, vals, expects, ROWS_CHANNEL, notice)
    except pgerr.PostgresError as exc:
        if exc.sqlstate != _CONFLICT:
            raise
        number, _, current = str(getattr(exc, "detail", "") or "").partition(" ")
        op = ops[int(number) - 1]
        if isinstance(op, DeletePrefix):  # never raises KV409
            raise
        raise conflict(op.key, op.expect, None if current == "-" else int(current)) from None
    return {
        op.key: revision for op, revision in zip(ops, revisions, strict=True) if isinstance(op, Put)
    }


def _final_values(ops: Sequence[Op]) -> dict[str, bytes]:
    """The rows a commit of ``ops`` leaves written (a later delete undoes an earlier put)."""
    final: dict[str, bytes] = {}
    for op in ops:
        if isinstance(op, Put):
            final[op.key] = bytes(op.value)
        elif isinstance(op, Delete):
            final.pop(op.key, None)
        elif isinstance(op, DeletePrefix):
            for key in [k for k in final if k.startswith(op.prefix)]:
                del final[key]
    return final


async def _migrate(conn: Connection) -> None:
    """Create or upgrade the schema, once, whoever else is starting now."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK)
        if await conn.fetchval("SELECT to_regclass('kvault_schema')") is None:
            await conn.execute(_META)  # a role without CREATE can use a migrated database
        version = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM kvault_schema"))
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"the storage database has schema version {version}; this kvault supports "
                f"up to {SCHEMA_VERSION} (a newer kvault migrated it)"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number - 1]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO kvault_schema (version) VALUES ($1)", number)
            log.info("storage schema migrated to version %d", number)


def _why(exc: BaseException) -> str:
    """A short reason for logs and 503 messages: the error's class and SQLSTATE, never the
    DSN (OS errors name host and port only)."""
    if isinstance(exc, pgerr.PostgresError):
        return f"{type(exc).__name__} (SQLSTATE {exc.sqlstate})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__
