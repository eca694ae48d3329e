"""``--storage postgresql`` chosen on the command line, end to end: a real ``kvault server``
on a real PostgreSQL, the DSN from an environment variable or a file (never argv), and the
data plane answering 503 + ``Retry-After`` in Azure's shape while the database is away."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import SecretClient

from kvault.app.backends import STORAGE, Backends, open_configured
from kvault.errors import ConfigError
from tests.api.conftest import StaticCredential
from tests.fixtures.devserver import DevServer, start_dev_server, start_server, stop
from tests.fixtures.postgres import PostgresServer

VALUE = "pg-backed-value-5b1e"


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


def _client(server: DevServer) -> SecretClient:
    env = server.env
    return SecretClient(
        env["KVAULT_ENDPOINT"],
        StaticCredential(env["KVAULT_TOKEN"]),
        verify_challenge_resource=False,
        connection_verify=env["KVAULT_CA_FILE"],
        retry_total=0,
    )


def test_postgresql_is_in_the_table() -> None:
    assert "postgresql" in STORAGE


async def test_configured_kvault_on_postgresql(
    tmp_path: Path, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KV_TEST_STORAGE_DSN", postgres_dsn)
    backends = Backends(storage="postgresql", storage_options={"dsn_env": "KV_TEST_STORAGE_DSN"})
    kv = await open_configured(tmp_path / "d", backends)
    try:
        await kv.vaults.create("v1", retention_days=7)
    finally:
        await kv.close()
    assert not (tmp_path / "d" / "kvault.db").exists()
    again = await open_configured(tmp_path / "d", backends)
    try:
        assert [v.name for v in await again.vaults.list()] == ["v1"]
    finally:
        await again.close()
    with pytest.raises(ConfigError, match="exactly one of the options dsn_env"):
        await open_configured(tmp_path / "e", Backends(storage="postgresql"))


def test_server_on_postgresql_answers_503_while_the_database_is_away(
    tmp_path: Path, pg: PostgresServer
) -> None:
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(pg.create_database("kv") + "\n")
    dsn_file.chmod(0o600)
    server = start_dev_server(
        tmp_path / "data",
        "--storage",
        "postgresql",
        "--storage-option",
        f"dsn_file={dsn_file}",
        "--storage-option",
        "timeout=3",
    )
    try:
        assert pg.password not in " ".join(server.process.args)  # type: ignore[arg-type]
        with _client(server) as client:
            client.set_secret("held", VALUE)
            assert client.get_secret("held").value == VALUE
            pg.stop()
            for _ in range(3):
                began = time.monotonic()
                with pytest.raises(HttpResponseError) as err:
                    client.get_secret("held")
                assert time.monotonic() - began < 4
                assert err.value.status_code == 503
                assert err.value.response is not None
                assert err.value.response.headers["Retry-After"].isdigit()
                body = err.value.response.json()
                assert body["error"]["code"] == "ServiceUnavailable"
                assert pg.password not in err.value.response.text()
            with pytest.raises(HttpResponseError) as err:
                client.set_secret("held", "while-away")
            assert err.value.status_code == 503
            pg.start()
            deadline = time.monotonic() + 20
            while True:
                try:
                    assert client.get_secret("held").value == VALUE
                    break
                except HttpResponseError as exc:
                    assert exc.status_code == 503 and time.monotonic() < deadline
                    time.sleep(0.2)
            client.set_secret("held", "after")
            assert client.get_secret("held").value == "after"
    finally:
        stop(server)
    assert pg.password not in "".join(server.output)


def test_dsn_in_argv_is_refused_without_echoing_it(tmp_path: Path) -> None:
    url = "postgresql://kv:hunter2-secret@127.0.0.1:1/kv"
    with pytest.raises(AssertionError, match="exited early") as err:
        start_server(
            ["server", "--dev", "--port", "0", "--storage", url],
            tmp_path,
            ("KVAULT_ENDPOINT",),
        )
    assert "never on the command line" in str(err.value)
    assert "hunter2-secret" not in str(err.value)
