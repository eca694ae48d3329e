"""``kvault storage migrate``: a whole installation from SQLite to a real PostgreSQL (and
back), read through the vault core on the other side with the same HSM root; an occupied
destination refused and left as it was; a copy that differs from its source detected."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import kvault.storage.migrate as migrate_module
from kvault.app.backends import AUDIT_FILE, KEY_FILE, Backends, open_configured
from kvault.cli.main import main
from kvault.errors import KvaultError
from kvault.storage.base import Delete, Put, Storage
from kvault.storage.migrate import (
    DestinationNotEmpty,
    SourceEmpty,
    Tally,
    copy,
    tally,
    verify,
)
from kvault.storage.postgresql import PostgreSQLStorage
from kvault.storage.sqlite import SQLiteStorage
from kvault.vault.keys.operations import KeyInput
from tests.fixtures.postgres import PostgresServer, database_of

ROOT = Path(__file__).resolve().parents[2]
DSN_VAR = "KV_TEST_MIGRATE_DSN"
DIGEST = hashlib.sha256(b"migrate").digest()
#: Secrets of vault v1 and the values of their versions, oldest first.
VALUES = {
    "db-password": ["pw-one-3f1a", "pw-two-3f1a", "pw-three-3f1a"],
    "api-key": ["api-key-77c0"],
    "gone": ["gone-old-19d2", "gone-new-19d2"],  # deleted (soft) before the migration
}


@dataclass
class Installation:
    """What was written through the core, to compare after the migration."""

    versions: dict[tuple[str, str], str]  # (secret, version) -> value
    key_jwk: dict[str, Any]


async def _populate(data_dir: Path) -> Installation:
    kv = await open_configured(data_dir, Backends())  # SQLite, software HSM (data_dir/hsm.key)
    try:
        await kv.vaults.create("v1", retention_days=7)
        await kv.vaults.create("v2", retention_days=7)
        versions = {}
        for name, values in VALUES.items():
            for value in values:
                made = await kv.secrets.set("v1", name, value, tags={"n": name})
                versions[(name, made.properties.version)] = value
        await kv.secrets.set("v2", "other", "other-value-5e")
        key = await kv.keys.create("v1", "sig", "EC", crv="P-256")
        await kv.secrets.delete("v1", "gone")
        return Installation(versions, dict(key.public))
    finally:
        await kv.close()


async def _tally_sqlite(path: Path) -> Tally:
    store = SQLiteStorage(path)
    await store.open()
    try:
        return await tally(store)
    finally:
        await store.close()


async def _tally_pg(dsn: str) -> Tally:
    store = PostgreSQLStorage(dsn, pool_size=2)
    await store.open()
    try:
        return await tally(store)
    finally:
        await store.close()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items() if not k.startswith(("KVAULT_", "KV_TEST"))}
    return subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", "storage", "migrate", *args],
        cwd=ROOT,
        env={**child, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_sqlite_installation_moves_to_postgresql_and_reads_back(
    tmp_path: Path,
    postgres_server: PostgresServer,
    postgres_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = tmp_path / "old"
    made = await _populate(old)
    source = await _tally_sqlite(old / "kvault.db")

    done = _cli(
        *("--from", f"sqlite:{old}", "--to-dsn-env", DSN_VAR, "--batch-size", "4"),
        env={DSN_VAR: postgres_dsn},
    )
    assert done.returncode == 0, done.stderr
    out, err = done.stdout, done.stderr
    assert postgres_server.password not in out + err + " ".join(map(str, done.args))
    assert f"source:       {source.rows} rows, sha256 {source.digest}" in out
    assert f"destination:  {source.rows} rows, sha256 {source.digest}" in out
    assert f"verified:     the destination holds the source's {source.rows} rows" in out
    assert "with the same --hsm and --hsm-option" in out
    assert f"  {KEY_FILE}: " in out and f"  {AUDIT_FILE}: " in out  # what stays behind
    batches = -(-source.rows // 4)
    assert f"{source.rows} rows in {batches} batches" in out
    assert err.count("copied ") == batches  # one progress line per batch, on stderr
    for value in (v for values in VALUES.values() for v in values):
        assert value not in out + err
    assert await _tally_pg(postgres_dsn) == source

    # A new data directory with the old HSM root (an operator copies hsm.key) on PostgreSQL.
    new = tmp_path / "new"
    new.mkdir(mode=0o700)
    shutil.copy2(old / KEY_FILE, new / KEY_FILE)
    on_pg = Backends(storage="postgresql", storage_options={"dsn_env": DSN_VAR})
    monkeypatch.setenv(DSN_VAR, postgres_dsn)
    kv = await open_configured(new, on_pg)
    try:
        assert not (new / "kvault.db").exists()
        assert [v.name for v in await kv.vaults.list()] == ["v1", "v2"]
        for (name, version), value in made.versions.items():
            if name != "gone":
                got = await kv.secrets.get("v1", name, version)
                assert (got.value, got.properties.tags) == (value, {"n": name})
        for name in ("db-password", "api-key"):
            assert (await kv.secrets.get("v1", name)).value == VALUES[name][-1]
        assert (await kv.secrets.get("v2", "other")).value == "other-value-5e"
        deleted = (await kv.secrets.list_deleted("v1")).items
        assert [d.properties.name for d in deleted] == ["gone"]
        await kv.secrets.recover("v1", "gone")
        for (name, version), value in made.versions.items():
            if name == "gone":
                assert (await kv.secrets.get("v1", name, version)).value == value
        assert dict((await kv.keys.get("v1", "sig")).public) == made.key_jwk
        signed = await kv.keys.operate("v1", "sig", "", "Sign", "ES256", KeyInput(DIGEST))
        check = KeyInput(value=signed.value, digest=DIGEST)
        assert (await kv.keys.operate("v1", "sig", "", "Verify", "ES256", check)).valid
    finally:
        await kv.close()

    # Another HSM root cannot open the same rows: the root really is not in storage.
    kv = await open_configured(tmp_path / "other", on_pg)
    try:
        with pytest.raises(KvaultError):
            await kv.secrets.get("v1", "api-key")
    finally:
        await kv.close()


async def test_occupied_destination_is_refused_and_left_untouched(
    tmp_path: Path, postgres_dsn: str
) -> None:
    src = SQLiteStorage(tmp_path / "src" / "kvault.db")
    await src.open()
    await src.commit([Put(f"k/{i:03d}", os.urandom(40)) for i in range(30)])
    await src.close()
    dst = PostgreSQLStorage(postgres_dsn, pool_size=2)
    await dst.open()
    await dst.commit([Put("already/here", b"\x01\x02")])
    await dst.close()
    before = await _tally_pg(postgres_dsn)
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(postgres_dsn + "\n")

    done = _cli("--from", f"sqlite:{tmp_path / 'src'}", "--to-dsn-file", str(dsn_file))
    assert done.returncode == 1
    assert "ERROR: the destination already holds rows" in done.stderr
    assert "nothing was written" in done.stderr
    assert done.stdout == ""
    assert await _tally_pg(postgres_dsn) == before


class _Tampered:
    """Wraps :func:`kvault.storage.migrate.verify` to change the destination between the
    copy and the verification (the test hook: nothing in kvault has one)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
        self.original = migrate_module.verify
        self.change = change
        monkeypatch.setattr(migrate_module, "verify", self)

    async def __call__(
        self, source: Storage, destination: Storage, *, batch: int = migrate_module.BATCH
    ) -> migrate_module.Verification:
        victim = (await destination.list("", limit=3))[-1]
        if self.change == "value":
            flipped = bytes([victim.value[0] ^ 1]) + victim.value[1:]
            await destination.commit([Put(victim.key, flipped)])
        else:
            await destination.commit([Delete(victim.key)])
        return await self.original(source, destination, batch=batch)


@pytest.mark.parametrize("change", ["value", "row"])
def test_a_destination_changed_before_verification_fails_the_migration(
    tmp_path: Path,
    postgres_dsn: str,
    change: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "src.db"

    async def seed() -> None:
        src = SQLiteStorage(db)
        await src.open()
        await src.commit([Put(f"row/{i}", os.urandom(64)) for i in range(12)])
        await src.close()

    asyncio.run(seed())
    _Tampered(monkeypatch, change)
    monkeypatch.setenv(DSN_VAR, postgres_dsn)
    code = main(["storage", "migrate", "--from", f"sqlite:{db}", "--to-dsn-env", DSN_VAR])
    out, err = capsys.readouterr()
    assert code == 1
    assert "MISMATCH" in out and "verification FAILED" in err
    assert "verified:" not in out
    rows = "11 rows" if change == "row" else "12 rows"
    assert f"destination:  {rows}, sha256" in out


async def test_verify_separately_detects_one_changed_byte(
    tmp_path: Path, postgres_dsn: str
) -> None:
    src = SQLiteStorage(tmp_path / "kvault.db")
    await src.open()
    dst = PostgreSQLStorage(postgres_dsn, pool_size=2)
    await dst.open()
    try:
        await src.commit([Put(f"r/{i:02d}", os.urandom(100)) for i in range(25)])
        seen: list[tuple[int, int]] = []
        assert await copy(src, dst, batch=10, progress=lambda n, b: seen.append((n, b))) == (25, 3)
        assert seen == [(10, 10), (20, 10), (25, 5)]
        assert (await verify(src, dst)).ok
        row = await dst.get("r/07")
        assert row is not None and row.revision == 1  # revisions start over
        await dst.commit([Put("r/07", row.value[:-1] + bytes([row.value[-1] ^ 0x80]))])
        result = await verify(src, dst)
        assert not result.ok
        assert result.source.rows == result.destination.rows == 25
        assert result.source.digest != result.destination.digest
        with pytest.raises(DestinationNotEmpty):
            await copy(src, dst)
    finally:
        await src.close()
        await dst.close()


async def test_the_digest_frames_keys_and_values(tmp_path: Path) -> None:
    """``a`` -> ``bc`` and ``ab`` -> ``c`` concatenate alike; their digests must not."""
    one, two = SQLiteStorage(tmp_path / "1.db"), SQLiteStorage(tmp_path / "2.db")
    await one.open()
    await two.open()
    try:
        await one.commit([Put("a", b"bc")])
        await two.commit([Put("ab", b"c")])
        assert (await tally(one)).rows == (await tally(two)).rows == 1
        assert (await tally(one)).digest != (await tally(two)).digest
        empty = SQLiteStorage(tmp_path / "3.db")
        await empty.open()
        with pytest.raises(SourceEmpty):
            await copy(empty, two)
        await empty.close()
    finally:
        await one.close()
        await two.close()


def test_postgresql_back_to_sqlite_with_an_inline_dsn_without_password(
    tmp_path: Path,
    postgres_server: PostgresServer,
    postgres_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def seed() -> Tally:
        store = PostgreSQLStorage(postgres_dsn, pool_size=2)
        await store.open()
        await store.commit([Put(f"x/{i}", os.urandom(30)) for i in range(7)])
        await store.close()
        return await _tally_pg(postgres_dsn)

    source = asyncio.run(seed())
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)  # libpq's, honoured by asyncpg
    inline = f"postgresql://{postgres_server.user}@127.0.0.1:{postgres_server.port}/"
    inline += database_of(postgres_dsn)
    target = tmp_path / "data"
    code = main(["storage", "migrate", "--from", inline, "--to", f"sqlite:{target}/"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"from:         postgresql://127.0.0.1:{postgres_server.port}/" in out
    assert "not moved:    the data directories' files are not storage" in out
    assert asyncio.run(_tally_sqlite(target / "kvault.db")) == source
    assert (target / "kvault.db").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--to", "postgresql://kv:hunter2-pw@db:5432/kv"], 2, "holds a password"),
        (["--to", "postgresql://kv@db/kv?password=hunter2-pw"], 2, "holds a password"),
        (["--to", "host=db password=hunter2-pw"], 2, "takes sqlite:PATH or a postgresql://"),
        (["--to", "sqlite:/x", "--to-dsn-env", "V"], 2, "exactly one of --to"),
        ([], 2, "exactly one of --to"),
        (["--to", "sqlite:SAME"], 2, "the same database file"),
        (["--to", "sqlite:/tmp/x", "--batch-size", "0"], 2, "--batch-size must be at least 1"),
    ],
)
def test_bad_flags_are_refused_without_echoing_a_dsn(
    tmp_path: Path,
    args: list[str],
    code: int,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "kvault.db"
    db.touch()
    args = [a.replace("SAME", str(db)) for a in args]
    assert main(["storage", "migrate", "--from", f"sqlite:{tmp_path}", *args]) == code
    out, err = capsys.readouterr()
    assert message in err
    assert "hunter2" not in out + err


def test_a_missing_source_file_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope" / "kvault.db"
    code = main(
        ["storage", "migrate", "--from", f"sqlite:{missing}", "--to", f"sqlite:{tmp_path}/"]
    )
    assert code == 3
    assert "no such database file" in capsys.readouterr().err
    assert not missing.exists() and not (tmp_path / "kvault.db").exists()


def test_an_empty_source_copies_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def make() -> None:
        store = SQLiteStorage(tmp_path / "empty.db")
        await store.open()
        await store.close()

    asyncio.run(make())
    code = main(
        [
            "storage",
            "migrate",
            "--from",
            f"sqlite:{tmp_path}/empty.db",
            "--to",
            f"sqlite:{tmp_path}/d/",
        ]
    )
    assert code == 1
    assert "the source holds no rows" in capsys.readouterr().err
