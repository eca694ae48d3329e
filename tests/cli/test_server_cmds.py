"""``kvault server --data-dir D --kubeconfig K`` and ``kvault operator`` start through app/
and announce their KVAULT_*= lines; a bad ``--hsm-option`` is a usage error in both."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.devserver import ROOT, start_server, stop

#: An API server nobody listens on: the data plane starts without calling it.
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:9", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: test-token}
contexts:
- name: x
  context: {cluster: c, user: u, namespace: kvault}
current-context: x
"""


BAD = ("--hsm-option", "novalue")


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return path


def test_cluster_server_announces_endpoint_and_ca(tmp_path: Path, kubeconfig: Path) -> None:
    data = tmp_path / "data"
    args = ["server", "--data-dir", str(data), "--kubeconfig", str(kubeconfig), "--port", "0"]
    server = start_server(args, data, ("KVAULT_ENDPOINT", "KVAULT_CA_FILE"))
    try:
        assert server.env["KVAULT_ENDPOINT"].startswith("https://127.0.0.1:")
        assert server.env["KVAULT_CA_FILE"] == str(data / "tls" / "ca.pem")
        assert (data / "hsm.key").exists()  # the software HSM defaulted into the data dir
    finally:
        stop(server)
    assert server.process.returncode == 0


def test_operator_announces_endpoint_ca_metrics_webhook(tmp_path: Path, kubeconfig: Path) -> None:
    data = tmp_path / "data"
    key = f"key_file={tmp_path / 'root.key'}"
    args = [
        "operator",
        "--data-dir",
        str(data),
        "--kubeconfig",
        str(kubeconfig),
        "--port",
        "0",
        "--metrics-port",
        "0",
        "--hsm-option",
        key,
        "--webhook-port",
        "0",
    ]
    keys = ("KVAULT_ENDPOINT", "KVAULT_CA_FILE", "KVAULT_METRICS", "KVAULT_WEBHOOK")
    server = start_server(args, data, keys)
    try:
        assert server.env["KVAULT_METRICS"].startswith("http://127.0.0.1:")
        assert server.env["KVAULT_WEBHOOK"].startswith("https://127.0.0.1:")
        assert server.env["KVAULT_WEBHOOK"].endswith("/mutate")
        with urllib.request.urlopen(server.env["KVAULT_METRICS"], timeout=10) as page:
            assert b"kvault_" in page.read()  # controller and data-plane registries served
        assert (tmp_path / "root.key").exists()
    finally:
        stop(server)


@pytest.mark.parametrize("verb", ["server", "operator"])
def test_bad_hsm_option_is_a_usage_error(tmp_path: Path, verb: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", verb, "--data-dir", str(tmp_path), *BAD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--hsm-option takes KEY=VALUE, got 'novalue'" in proc.stderr
