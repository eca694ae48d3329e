"""``kvault storage migrate``: which two stores, opened how, and what stays behind.

The copy and its proof are :mod:`kvault.storage.migrate`'s; this module turns the command
line's store specifications into opened backends, the same way ``kvault server`` opens
them: a PostgreSQL DSN comes from ``dsn_env`` / ``dsn_file`` through the storage table of
:mod:`kvault.app.backends` (so it is read, checked and kept out of messages by the same
code), a SQLite store is :class:`~kvault.storage.sqlite.SQLiteStorage` on a file. A DSN
given inline must hold no password (``passfile``, ``PGPASSWORD``, client certificates or
peer authentication instead); it is refused, and never echoed, when it does.

Nothing here needs the HSM: rows are copied as ciphertext. They stay sealed under the HSM
root key, which is the plugin's and not in storage, so kvault on the destination must run
with the same ``--hsm`` and ``--hsm-option``. The data directory's files are not storage
either (:data:`DATA_DIR_FILES`): they are the operator's to carry over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from kvault.app.audit_anchor import CHECKPOINT_FILE
from kvault.app.backends import AUDIT_FILE, DB_FILE, KEY_FILE, TLS_DIR, Backends
from kvault.app.dev import TOKEN_FILE
from kvault.errors import ConfigError, NotFound
from kvault.storage.base import Storage
from kvault.storage.migrate import BATCH, Progress, Report, migrate, refuse_empty
from kvault.storage.sqlite import SQLiteStorage

__all__ = ["DATA_DIR_FILES", "Migration", "Report", "StoreSpec", "run_migration", "store_spec"]

#: Files of a data directory that are not storage, with what each is for.
DATA_DIR_FILES: dict[str, str] = {
    KEY_FILE: "the software HSM's root key (default --hsm software): without it no row opens",
    AUDIT_FILE: "the audit log (hash-chained): history before the migration",
    CHECKPOINT_FILE: "the audit log's sealed checkpoint",
    TLS_DIR: "the TLS CA's files: the dev server's CA, or one from before the CA was kept "
    "sealed in storage (imported at the next start); a cluster server's CA is a row and moves",
    TOKEN_FILE: "the dev server's root token (kvault server --dev)",
}

_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """One side of a migration: a backend, its options, and a label safe to print."""

    backend: str  # "sqlite" or "postgresql"
    label: str
    #: sqlite: ``{"path": FILE}``; postgresql: ``{"dsn_env": VAR}`` or ``{"dsn_file": F}``.
    options: Mapping[str, str] = field(default_factory=dict)
    #: A ``postgresql://`` URL given inline (checked to hold no password).
    dsn: str | None = None

    @property
    def sqlite_path(self) -> Path | None:
        return Path(self.options["path"]) if self.backend == "sqlite" else None


def store_spec(
    flag: str, url: str | None, dsn_env: str | None = None, dsn_file: str | None = None
) -> StoreSpec:
    """The store that ``--FLAG URL``, ``--FLAG-dsn-env VAR`` or ``--FLAG-dsn-file F``
    names (exactly one). ``URL`` is ``sqlite:PATH`` (the database file, or a data directory
    for its ``kvault.db``: an existing directory, or a path ending in ``/``) or a
    ``postgresql://`` URL without a password. Raises :class:`ConfigError`, whose message
    never repeats a DSN."""
    given = [x for x in (url, dsn_env, dsn_file) if x is not None]
    if len(given) != 1:
        raise ConfigError(
            f"give exactly one of --{flag} sqlite:PATH|postgresql://..., --{flag}-dsn-env "
            f"VARIABLE, --{flag}-dsn-file PATH"
        )
    if dsn_env is not None:
        if not dsn_env.strip():
            raise ConfigError(f"--{flag}-dsn-env needs the name of an environment variable")
        return StoreSpec("postgresql", f"postgresql (DSN from ${dsn_env})", {"dsn_env": dsn_env})
    if dsn_file is not None:
        if not dsn_file.strip():
            raise ConfigError(f"--{flag}-dsn-file needs a path")
        return StoreSpec("postgresql", f"postgresql (DSN from {dsn_file})", {"dsn_file": dsn_file})
    assert url is not None
    if url.startswith("sqlite:"):
        raw = url.removeprefix("sqlite:")
        if not raw.strip():
            raise ConfigError(
                f"--{flag} sqlite:PATH needs a path (a kvault.db or a data directory)"
            )
        path = Path(raw).expanduser()
        if path.is_dir() or raw.endswith("/"):  # a data directory
            path = path / DB_FILE
        return StoreSpec("sqlite", f"sqlite:{path}", {"path": str(path)})
    if url.startswith(_SCHEMES):
        return StoreSpec("postgresql", _safe_label(flag, url), dsn=url)
    raise ConfigError(
        f"--{flag} takes sqlite:PATH or a postgresql:// URL (its DSN with a password: "
        f"--{flag}-dsn-env VARIABLE or --{flag}-dsn-file PATH)"
    )


def _safe_label(flag: str, url: str) -> str:
    """``postgresql://HOST/DB`` of an inline DSN; :class:`ConfigError` (not echoing it) when
    the URL holds a password or cannot be read."""
    try:
        parts = urlsplit(url)
        password = parts.password
        query = parse_qs(parts.query)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        raise ConfigError(
            f"--{flag}: the PostgreSQL URL cannot be parsed (not repeated here)"
        ) from None
    if password is not None or "password" in query:
        raise ConfigError(
            f"--{flag}: the DSN holds a password, which must not be on a command line "
            f"(not repeated here); give the DSN with --{flag}-dsn-env VARIABLE or "
            f"--{flag}-dsn-file PATH"
        )
    return f"{parts.scheme}://{host}{parts.path}"


async def open_store(spec: StoreSpec, *, source: bool) -> Storage:
    """Open one side. A SQLite source must exist (:class:`NotFound`): opening creates a
    missing file, and an empty new one would look like an empty installation."""
    if spec.backend == "sqlite":
        path = spec.sqlite_path
        assert path is not None
        if source and not path.is_file():
            raise NotFound(f"{spec.label}: no such database file", code="SourceNotFound")
        sqlite = SQLiteStorage.from_options(spec.options)
        await sqlite.open()
        return sqlite
    if spec.dsn is not None:
        from kvault.storage.postgresql import PostgreSQLStorage  # asyncpg only when chosen

        pg = PostgreSQLStorage(spec.dsn)
        await pg.open()
        return pg
    # The server's own path: the storage table, PostgreSQLStorage.from_options.
    return await Backends(storage=spec.backend, storage_options=spec.options).open_storage(Path())


@dataclass(frozen=True, slots=True)
class Migration:
    """A finished migration: the report, and the source's data-directory files (name and
    purpose) that the operator must carry over themselves."""

    source: StoreSpec
    destination: StoreSpec
    report: Report
    left_behind: dict[str, str]

    @property
    def ok(self) -> bool:
        return self.report.ok


def left_behind(spec: StoreSpec) -> dict[str, str]:
    """The files of :data:`DATA_DIR_FILES` beside a SQLite store (``{}`` for PostgreSQL:
    its installation's data directories are not known here)."""
    path = spec.sqlite_path
    if path is None:
        return {}
    return {name: why for name, why in DATA_DIR_FILES.items() if (path.parent / name).exists()}


async def run_migration(
    source: StoreSpec,
    destination: StoreSpec,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> Migration:
    """Open both stores, copy and verify (:func:`kvault.storage.migrate.migrate`), close."""
    if source.backend == destination.backend == "sqlite" and _same_file(source, destination):
        raise ConfigError("--from and --to name the same database file")
    src = await open_store(source, source=True)
    try:
        await refuse_empty(src)  # before the destination is opened (and its schema made)
        dst = await open_store(destination, source=False)
        try:
            report = await migrate(src, dst, batch=batch, progress=progress)
        finally:
            await dst.close()
    finally:
        await src.close()
    return Migration(source, destination, report, left_behind(source))


def _same_file(a: StoreSpec, b: StoreSpec) -> bool:
    pa, pb = a.sqlite_path, b.sqlite_path
    return pa is not None and pb is not None and pa.resolve() == pb.resolve()
