"""``kvault server --dev`` as a user runs it: restartable on its data directory, stops cleanly
on SIGINT/SIGTERM, and keeps secret values out of its output and off the disk."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from azure.keyvault.secrets import SecretClient

from tests.api.conftest import StaticCredential
from tests.fixtures.devserver import ROOT, DevServer, start_dev_server, stop

VALUE = "correct-horse-battery-staple-8c1f"


def _client(server: DevServer) -> SecretClient:
    env = server.env
    return SecretClient(
        env["KVAULT_ENDPOINT"],
        StaticCredential(env["KVAULT_TOKEN"]),
        verify_challenge_resource=False,
        connection_verify=env["KVAULT_CA_FILE"],
    )


def test_restart_keeps_vault_token_and_ca(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_dev_server(data)
    try:
        with _client(first) as client:
            client.set_secret("kept", VALUE)
        ca = Path(first.env["KVAULT_CA_FILE"]).read_bytes()
    finally:
        first.process.send_signal(signal.SIGINT)
        assert first.process.wait(timeout=20) == 0

    second = start_dev_server(data)
    try:
        assert second.env["KVAULT_TOKEN"] == first.env["KVAULT_TOKEN"]
        assert Path(second.env["KVAULT_CA_FILE"]).read_bytes() == ca
        with _client(second) as client:
            assert client.get_secret("kept").value == VALUE
    finally:
        stop(second)
    assert second.process.returncode == 0

    for output in (first.output, second.output):
        assert VALUE not in "".join(output)
    for path in data.rglob("*"):
        if path.is_file():
            assert VALUE.encode() not in path.read_bytes(), path
    assert (data / "root-token").stat().st_mode & 0o777 == 0o600
    assert (data / "tls" / "ca-key.pem").stat().st_mode & 0o777 == 0o600


def test_temporary_data_dir_is_removed_on_exit() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kvault.cli.main", "server", "--dev", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    ca_file = ""
    for line in proc.stdout:
        if line.startswith("KVAULT_CA_FILE="):
            ca_file = line.strip().partition("=")[2]
            break
    assert Path(ca_file).exists()
    proc.terminate()
    assert proc.wait(timeout=20) == 0
    assert not Path(ca_file).parent.parent.exists()


def test_non_dev_server_explains_itself() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", "server"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "--dev" in result.stderr
