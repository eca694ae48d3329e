"""SQLite-only guarantees: file permissions, safety PRAGMAs, no lingering deleted ciphertext."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import pytest_asyncio

from kvault.errors import ConfigError
from kvault.storage.base import Delete, DeletePrefix, Op, Put, Row, Storage
from kvault.storage.sqlite import SQLiteStorage, prefix_upper_bound


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "nested" / "kvault.db"


@pytest_asyncio.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(db_path)
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def db_files(db_path: Path) -> list[Path]:
    return [p for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")) if p.exists()]


async def test_registered_as_entry_point() -> None:
    (ep,) = entry_points(group="kvault.storage", name="sqlite")
    assert ep.load() is SQLiteStorage


async def test_from_options(tmp_path: Path) -> None:
    storage = SQLiteStorage.from_options({"path": str(tmp_path / "x.db")})
    assert isinstance(storage, Storage)
    assert storage.path == tmp_path / "x.db"
    with pytest.raises(ConfigError, match="path"):
        SQLiteStorage.from_options({})


async def test_files_are_owner_only(store: SQLiteStorage, db_path: Path) -> None:
    await store.commit([Put("a", b"b")])
    assert mode(db_path.parent) == mode(db_path.parent.parent) == 0o700
    files = db_files(db_path)
    assert Path(f"{db_path}-wal") in files
    for path in files:
        assert mode(path) == 0o600, path


async def test_existing_lax_file_mode_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "kvault.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    os.chmod(tmp_path, 0o755)
    storage = SQLiteStorage(path)
    await storage.open()
    try:
        assert mode(path) == 0o600
        assert mode(tmp_path) == 0o755  # an existing directory (a volume mount) is left alone
    finally:
        await storage.close()


async def test_safety_pragmas_are_effective(store: SQLiteStorage) -> None:
    assert await store.pragmas() == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "secure_delete": 1,
        "temp_store": 2,  # MEMORY
    }
    assert await store.integrity_check() == "ok"


async def test_schema_and_stamp(store: SQLiteStorage, db_path: Path) -> None:
    await store.commit([Put("k", b"v")])
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        sql = conn.execute("SELECT sql FROM sqlite_schema WHERE name = 'rows'").fetchone()[0]
        assert "WITHOUT ROWID" in sql
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x6B766C74
        assert conn.execute("SELECT key, value, revision FROM rows").fetchall() == [("k", b"v", 1)]
    finally:
        conn.close()


@pytest.mark.parametrize("size", [48, 300_000])
@pytest.mark.parametrize("how", ["delete", "overwrite", "delete_prefix"])
async def test_deleted_value_bytes_are_gone_after_checkpoint(
    store: SQLiteStorage, db_path: Path, how: str, size: int
) -> None:
    """Crypto-shredding: a deleted data key must not be recoverable from the files."""
    marker = os.urandom(16).hex().encode()
    secret = (marker * (size // len(marker) + 1))[:size]
    await store.commit([Put("keep/a", b"neighbour" * 10), Put("dek/1", secret)])
    await store.commit([Put("keep/b", b"x")])
    await store.checkpoint()  # the secret now sits in the main database file too
    assert any(marker in p.read_bytes() for p in db_files(db_path)), "test cannot fail"
    await store.commit([Put("dek/1", secret[:-1] + b"!")])  # an overwrite leaves an old version
    choices: dict[str, list[Op]] = {
        "delete": [Delete("dek/1")],
        "overwrite": [Put("dek/1", b"replaced")],
        "delete_prefix": [DeletePrefix("dek/")],
    }
    await store.commit(choices[how])
    await store.checkpoint()
    for path in db_files(db_path):
        assert marker not in path.read_bytes(), f"deleted bytes still in {path.name}"
    assert await store.get("keep/a") == Row("keep/a", b"neighbour" * 10, 1)
    assert await store.integrity_check() == "ok"


async def test_checkpoint_truncates_wal(store: SQLiteStorage, db_path: Path) -> None:
    await store.commit([Put("a", os.urandom(10_000))])
    assert Path(f"{db_path}-wal").stat().st_size > 0
    await store.checkpoint()
    assert Path(f"{db_path}-wal").stat().st_size == 0


async def test_no_temp_files(store: SQLiteStorage, db_path: Path) -> None:
    allowed = {db_path.name, f"{db_path.name}-wal", f"{db_path.name}-shm"}
    await store.commit([Put(f"t/{i:05d}", os.urandom(2000)) for i in range(2000)])
    await store.commit([Put("t/big", os.urandom(1 << 20))])
    assert len(await store.list("t/")) == 2001
    await store.commit([Put(f"t/{i:05d}", b"y") for i in range(0, 2000, 3)])
    await store.commit([DeletePrefix("t/0")])
    await store.checkpoint()
    assert {p.name for p in db_path.parent.iterdir()} <= allowed
    await store.close()
    assert {p.name for p in db_path.parent.iterdir()} == {db_path.name}


async def test_refuses_foreign_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    storage = SQLiteStorage(path)
    with pytest.raises(ConfigError, match="not a kvault store"):
        await storage.open()
    await storage.close()


async def test_refuses_non_database_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    storage = SQLiteStorage(path)
    with pytest.raises(ConfigError):
        await storage.open()
    await storage.close()


async def test_unusable_path_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    storage = SQLiteStorage(tmp_path / "file" / "kvault.db")
    with pytest.raises(ConfigError, match="cannot create"):
        await storage.open()
    await storage.close()


async def test_use_before_open_and_after_close(db_path: Path) -> None:
    storage = SQLiteStorage(db_path)
    with pytest.raises(RuntimeError, match="not open"):
        await storage.get("k")
    await storage.open()
    await storage.close()
    with pytest.raises(RuntimeError, match="closed"):
        await storage.commit([Put("k", b"v")])
    with pytest.raises(RuntimeError):
        await storage.open()


@pytest.mark.parametrize(
    ("prefix", "bound"),
    [
        ("", None),
        ("a", "b"),
        ("a/", "a0"),
        ("a\x7f", "a\x80"),
        ("\ud7ff", "\ue000"),
        ("a\U0010ffff", "b"),
        ("\U0010ffff\U0010ffff", None),
    ],
)
def test_prefix_upper_bound(prefix: str, bound: str | None) -> None:
    assert prefix_upper_bound(prefix) == bound
