"""The HSM plugin and the storage backend, chosen by name from configuration.

The domain receives both already built (``Kvault.open``), so a new backend never touches
``vault/``: an HSM plugin is an entry point in group ``kvault.hsm``; a storage backend is a
module under ``storage/`` plus one entry in :data:`STORAGE`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kvault.api.tls import CertificateAuthority, ServerTLS
from kvault.app.defaults import DEFAULT_HSM, DEFAULT_STORAGE
from kvault.audit.log import AuditLog
from kvault.errors import ConfigError
from kvault.hsm import registry
from kvault.hsm.base import HSM
from kvault.storage.base import Storage
from kvault.storage.sqlite import SQLiteStorage
from kvault.vault.names import DEFAULT_MAX_VALUE_BYTES
from kvault.vault.service import Kvault

DB_FILE = "kvault.db"
AUDIT_FILE = "audit.log"
KEY_FILE = "hsm.key"
TLS_DIR = "tls"


def parse_options(pairs: Iterable[str], flag: str = "--hsm-option") -> dict[str, str]:
    """``KEY=VALUE`` strings (one per flag; the value may hold ``=`` and ``,``) as a
    mapping; the key is stripped, the value kept as given (paths, PINs)."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} takes KEY=VALUE, got {pair!r}")
        options[key.strip()] = value
    return options


async def _open_sqlite(data_dir: Path, options: Mapping[str, str]) -> Storage:
    if options:
        raise ConfigError(f"sqlite storage takes no options, got {', '.join(sorted(options))}")
    storage = SQLiteStorage(data_dir / DB_FILE)
    await storage.open()
    return storage


async def _open_postgresql(data_dir: Path, options: Mapping[str, str]) -> Storage:
    """The DSN comes from ``dsn_env`` or ``dsn_file`` (never argv); the data directory
    still holds the audit log and the software HSM's key."""
    from kvault.storage.postgresql import PostgreSQLStorage  # asyncpg only when chosen

    storage = PostgreSQLStorage.from_options(options)
    await storage.open()
    return storage


StorageFactory = Callable[[Path, Mapping[str, str]], Awaitable[Storage]]
#: Storage backends by name: each opens its backend for a data directory and options.
STORAGE: dict[str, StorageFactory] = {"sqlite": _open_sqlite, "postgresql": _open_postgresql}


@dataclass(frozen=True, slots=True)
class Backends:
    """Which HSM plugin and storage backend a process uses, their options, and the domain
    settings that come from the same command line."""

    hsm: str = DEFAULT_HSM
    hsm_options: Mapping[str, str] = field(default_factory=dict)
    storage: str = DEFAULT_STORAGE
    storage_options: Mapping[str, str] = field(default_factory=dict)
    #: Dev only (tests, demos; never by default): certificate policies may give
    #: ``x509_props.validity_seconds`` from this many seconds up (see
    #: :mod:`kvault.vault.certificates.policy`).
    certificate_validity_floor: int | None = None

    def build_hsm(self, data_dir: Path) -> HSM:
        """The plugin, not yet opened; the software HSM without options keeps its root key
        in the data directory."""
        options = dict(self.hsm_options)
        if self.hsm == "software" and not options:
            options["key_file"] = str(data_dir / KEY_FILE)
        return registry.load(self.hsm, options)

    async def open_storage(self, data_dir: Path) -> Storage:
        factory = STORAGE.get(self.storage)
        if factory is None:
            raise ConfigError(
                f"unknown storage backend {self.storage!r}; known: {', '.join(sorted(STORAGE))}"
            )
        return await factory(data_dir, self.storage_options)


async def open_kvault(
    data_dir: Path,
    hsm: HSM,
    *,
    backends: Backends | None = None,
    clock: Callable[[], float] = time.time,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    certificate_validity_floor: int | None = None,
) -> Kvault:
    """The domain over ``hsm`` (opened here), the configured storage in ``data_dir`` and a
    hash-chained audit log beside it; closing the kvault closes all three.
    ``certificate_validity_floor``: see :class:`Backends`."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    await hsm.open()
    try:
        storage = await (backends or Backends()).open_storage(data_dir)
    except BaseException:
        await hsm.close()
        raise
    audit = AuditLog(data_dir / AUDIT_FILE)
    return await Kvault.open(
        storage,
        hsm,
        auditor=audit,
        clock=clock,
        max_value_bytes=max_value_bytes,
        certificate_validity_floor=certificate_validity_floor,
    )


async def open_configured(data_dir: Path, backends: Backends) -> Kvault:
    """:func:`open_kvault` with the plugin ``backends`` names."""
    return await open_kvault(
        data_dir,
        backends.build_hsm(data_dir),
        backends=backends,
        certificate_validity_floor=backends.certificate_validity_floor,
    )


def server_tls(data_dir: Path) -> ServerTLS:
    """The data plane's TLS from the CA kept in ``data_dir/tls`` (created on first start)."""
    directory = data_dir / TLS_DIR
    return ServerTLS(CertificateAuthority.load_or_create(directory), directory)
