"""The fault tier: what a broken dependency does to kvault, and that kvault recovers.

``make test-faults`` runs this file with the issue's durations (the API server away for
30 s); ``make test`` runs it too, bounded (10 s). Each test injects one fault into real
parts: the local cluster's kube-apiserver frozen (SIGSTOP: connections hang, as on a lost
network, rather than being refused), the data directory on a small tmpfs filled up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.fixtures import Cluster
from e2e.operator_harness import (
    ADMIN,
    SU,
    admin_token,
    create,
    data_plane,
    deployment,
    get,
    install_crds,
    provision_vault,
    release,
    restart_hash,
    sa_role,
    secret_data,
    set_secret,
    start_operator,
    wait_condition,
)
from e2e.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
#: Seconds the API server stays away (``make test-faults``: 30).
PAUSE = float(os.environ.get("KVAULT_FAULT_PAUSE", "10"))


@pytest.fixture(autouse=True)
def _released(kube_cluster: Cluster, namespace: str) -> Iterator[None]:
    yield
    release(kube_cluster, [namespace])


def _apiserver_pid(cluster: Cluster) -> int:
    if cluster.layout is None:
        pytest.skip("the API server of a cluster supplied from outside cannot be paused")
    return int(cluster.layout.pidfile("kube-apiserver").read_text().split()[0])


def test_apiserver_away_while_secrets_change_converges_once(
    kube_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """The API server is frozen while a secret changes five times through the data plane
    (which keeps serving: tokens are cached), the last time after the operator stepped down
    (kopf's shutdown once cancelled the data plane's connections too). When it returns, the
    operator (a host process whose 2-second Lease lapsed meanwhile) converges on the last
    value: the Secret holds it, the status names its version, and the workload restarted once
    for it, not per change."""
    cluster, ns = kube_cluster, namespace
    install_crds(cluster)
    data = tmp_path / "data"
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "app"}})
    deployment(cluster, ns, "web")
    op = start_operator(cluster, data, [ns], lease_duration=2)
    try:
        provision_vault(cluster, ns, "main", [sa_role("app", SU), sa_role("admin", ADMIN)])
        plane = data_plane(op, admin_token(cluster, ns), "main", ns)
        set_secret(plane, "db-password", "before-" + uuid.uuid4().hex[:8])
        spec = {
            "vaultRef": {"name": "main"},
            "serviceAccountName": "app",
            "data": [{"secretKey": "value", "remoteRef": {"name": "db-password"}}],
            "rolloutRestart": [{"kind": "Deployment", "name": "web"}],
        }
        create(cluster, ns, "vaultsecrets", "VaultSecret", "app", spec)
        wait_condition(cluster, ns, "vaultsecrets", "app", "True", "Synced")
        generation, _ = restart_hash(cluster, ns, "web")

        pid = _apiserver_pid(cluster)
        values = [f"during-{i}-{uuid.uuid4().hex[:8]}" for i in range(5)]
        os.kill(pid, signal.SIGSTOP)
        try:
            frozen = time.monotonic()
            for value in values[:-1]:  # spread over the pause: the fault lasts PAUSE seconds
                last = set_secret(plane, "db-password", value)
                time.sleep(PAUSE / len(values))
            # The replica has stepped down (its Lease lapsed) and its controller stopped; the
            # data plane still answers, also on the connection it kept alive across that.
            wait_for(lambda: "lost lease" in op.text(), PAUSE + 60, "the operator to step down")
            last = set_secret(plane, "db-password", values[-1])
            time.sleep(max(0.0, PAUSE - (time.monotonic() - frozen)))
            assert time.monotonic() - frozen >= PAUSE
        finally:
            os.kill(pid, signal.SIGCONT)
        back = time.monotonic()

        def converged() -> bool:
            vs = get(cluster, ns, "vaultsecrets", "app") or {}
            status = vs.get("status", {})
            return bool(
                secret_data(cluster, ns, "app") == {"value": values[-1]}
                and status.get("syncedVersions") == {"value": last}
                and restart_hash(cluster, ns, "web")[1] == status.get("contentHash")
            )

        wait_for(converged, 120, "the operator to converge after the API server returned")
        took = time.monotonic() - back
        print(f"API server away {PAUSE:.0f} s: converged {took:.1f} s after it returned")
        assert restart_hash(cluster, ns, "web")[0] == generation + 1  # once, for the last value
        assert op.alive()
    finally:
        op.stop()
    for value in values:
        assert value not in op.text()


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def _fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` with one file; return it."""
    filler = directory / "filler"
    with filler.open("wb") as f:
        block = b"\0" * (64 * 1024)
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_refuses_writes_with_503_keeps_reads_and_recovers(tmp_path: Path) -> None:
    """The data directory on a 4 MiB tmpfs, filled up: writes get 503 (Azure's shape, with
    Retry-After) and change nothing, reads keep working, nothing is corrupted (SQLite's
    integrity check, the audit chain, every acknowledged write), and writes work again once
    space returns."""
    mount = tmp_path / "disk"
    _mount_tmpfs(mount, "4m")
    data = mount / "data"
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kvault.cli.main", "server", "--dev", "--port", "0",
             "--data-dir", str(data)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            call = _client(_announced(proc))
            acked = {}
            for i in range(5):
                status, doc = call("PUT", f"/secrets/kept-{i}", {"value": f"value-{i}"})
                assert status == 200, doc
                acked[f"kept-{i}"] = f"value-{i}"
            filler = _fill(mount)
            refused = [call("PUT", f"/secrets/full-{i}", {"value": "x" * 4000}) for i in range(20)]
            assert {status for status, _ in refused} == {503}, refused[:3]
            assert {doc["error"]["code"] for _, doc in refused} == {"ServiceUnavailable"}
            for name, value in acked.items():  # reads keep working
                status, doc = call("GET", f"/secrets/{name}", None)
                assert (status, doc.get("value")) == (200, value)
            assert call("GET", "/secrets/full-0", None)[0] == 404  # refused: nothing changed
            filler.unlink()
            status, doc = call("PUT", "/secrets/after", {"value": "space is back"})
            assert status == 200, doc
            acked["after"] = "space is back"
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
        assert "Traceback" not in err, err[-2000:]
        verified = _kvault("audit", "verify", str(data / "audit.log"), "--against", str(data),
                           "--checkpoint", str(data / "audit.checkpoint"))  # fmt: skip
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert _sqlite_integrity(data / "kvault.db") == "ok"
    finally:
        unmounted = subprocess.run(["umount", str(mount)], capture_output=True, text=True)
    assert unmounted.returncode == 0, unmounted.stderr  # nothing of the test left mounted


def _kvault(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", *args],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip


def _sqlite_integrity(path: Path) -> str:
    import contextlib
    import sqlite3

    # closing(): a connection's own context manager ends a transaction, not the connection,
    # and an open database file would keep the tmpfs from being unmounted.
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def _announced(proc: subprocess.Popen[str]) -> dict[str, str]:
    assert proc.stdout is not None
    env: dict[str, str] = {}
    for line in proc.stdout:
        key, sep, value = line.strip().partition("=")
        if sep and key.startswith("KVAULT_"):
            env[key] = value
        if len(env) == 3:
            return env
    raise AssertionError("the dev server did not start")


Call = Callable[[str, str, object], tuple[int, dict[str, Any]]]


def _client(env: dict[str, str]) -> Call:
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=env["KVAULT_CA_FILE"])

    def call(method: str, path: str, body: object) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{env['KVAULT_ENDPOINT']}{path}?api-version=7.5",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {env['KVAULT_TOKEN']}",
                     "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, context=ctx, timeout=15) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    return call


def test_an_hsm_token_removed_gives_503_and_kvault_reconnects_when_it_returns(
    tmp_path: Path,
) -> None:
    """A dev server on the pkcs11 plugin (SoftHSM2): its token's directory taken away, an
    HSM-held key's sign gets 503 (no fallback of any kind) while secrets keep being served
    from the keys already unwrapped; put back, the plugin reconnects and signs again."""
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "KVAULT_FAULT_PIN": "1234"}
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "faults", "--pin", "1234",
         "--so-pin", "5678"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "kvault.cli.main", "server", "--dev", "--port", "0",
         "--data-dir", str(tmp_path / "data"), "--hsm", "pkcs11",
         "--hsm-option", "token_label=faults", "--hsm-option", "pin_env=KVAULT_FAULT_PIN"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    digest = {"alg": "ES256", "value": "A" * 43}
    try:
        call = _client(_announced(proc))
        assert call("PUT", "/secrets/s", {"value": "v"})[0] == 200
        assert call("POST", "/keys/k/create", {"kty": "EC-HSM", "crv": "P-256"})[0] == 200
        assert call("POST", "/keys/k//sign", digest)[0] == 200
        (token,) = list(tokens.iterdir())
        away = tmp_path / "away"
        token.rename(away)
        try:
            status, doc = call("POST", "/keys/k//sign", digest)
            assert (status, doc["error"]["code"]) == (503, "ServiceUnavailable"), doc
            assert call("GET", "/secrets/s", None) == (200, call("GET", "/secrets/s", None)[1])
        finally:
            away.rename(token)
        wait_for(lambda: call("POST", "/keys/k//sign", digest)[0] == 200, 15, "a sign again")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "reconnected to token 'faults'" in err
    # python-pkcs11 prints the failed end of an object search on the dead session from a
    # finaliser (its own traceback, nothing of kvault's); kvault itself logs no error.
    assert " ERROR " not in err and "kvault/" not in err, err[-2000:]
