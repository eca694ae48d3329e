"""Backends under the conformance suite.

To add one, write a :class:`StorageFactory` and add it to ``BACKENDS``. A factory hands out
connections to *one* fresh, empty store, so a test can close and reopen it. PostgreSQL runs on
the session's own server (``tests/fixtures/postgres.py``), a fresh database per test; the
server starts only when a PostgreSQL test is collected to run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

import pytest
import pytest_asyncio

from kvault.storage.base import Storage
from kvault.storage.postgresql import PostgreSQLStorage
from kvault.storage.sqlite import SQLiteStorage
from tests.fixtures.postgres import PostgresServer, database_of


class StorageFactory(Protocol):
    async def open(self) -> Storage:
        """A new, opened handle on this factory's store (same data every time)."""
        ...

    async def cleanup(self) -> None:
        """Drop the store (files, schema...) once the test is done."""
        ...


class SQLiteFactory:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "store" / "kvault.db"

    async def open(self) -> Storage:
        storage = SQLiteStorage(self.path)
        await storage.open()
        return storage

    async def cleanup(self) -> None:
        return None


class PostgreSQLFactory:
    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.server: PostgresServer = request.getfixturevalue("postgres_server")
        self.dsn = self.server.create_database()

    async def open(self) -> Storage:
        storage = PostgreSQLStorage(self.dsn, pool_size=4)
        await storage.open()
        return storage

    async def cleanup(self) -> None:
        if self.server.running:
            self.server.drop_database(database_of(self.dsn))


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], StorageFactory]] = {
    "sqlite": lambda request, tmp_path: SQLiteFactory(tmp_path),
    "postgresql": lambda request, tmp_path: PostgreSQLFactory(request),
}


@pytest_asyncio.fixture(params=sorted(BACKENDS))
async def storage_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StorageFactory]:
    factory = BACKENDS[request.param](request, tmp_path)
    try:
        yield factory
    finally:
        await factory.cleanup()


@pytest_asyncio.fixture
async def storage(storage_factory: StorageFactory) -> AsyncIterator[Storage]:
    handle = await storage_factory.open()
    try:
        yield handle
    finally:
        await handle.close()
