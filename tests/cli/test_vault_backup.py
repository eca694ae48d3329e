"""``kvault vault backup|restore`` against real ``kvault server --dev`` processes over TLS.

The disaster-recovery drill of issue 13: a vault with secrets (versions, a deleted one,
disabled, tags, expiry, values at the size limit), keys (versions, a rotation policy, a
deleted one), certificates (issued, pending, deleted; contacts, an issuer) and role
assignments is backed up, purged, and restored with a passphrase into a fresh installation
with another HSM root; everything the data plane shows, every version and attribute, is
compared by a canonical digest. Altered, truncated and foreign files and a wrong passphrase
are refused with a clear error and restore nothing. Progress: a bar on a terminal (a pty),
JSON lines otherwise. And the two routes under the CLI, in Azure's error shape."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pty
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from aiohttp.test_utils import TestClient, TestServer

from kvault.api.app import build_app
from kvault.api.config import ApiConfig
from kvault.app.backends import AUDIT_FILE, Backends, open_configured, open_kvault
from kvault.hsm.registry import load
from kvault.identity.model import Principal, RoleAssignment
from kvault.identity.static import StaticTokens
from kvault.vault import backupfile as bf
from tests.fixtures.devserver import DevServer, start_dev_server, stop

VAULT = "src"
PASS = "a passphrase long enough for a DR drill"
ROLES = (
    RoleAssignment("team-a/admin", "Key Vault Administrator"),
    RoleAssignment("team-a/app", "Key Vault Secrets User", "/secrets/db"),
    RoleAssignment("system:serviceaccounts:team-b", "Key Vault Reader"),
)
POLICY = {
    "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
    "secret_props": {"contentType": "application/x-pem-file"},
    "x509_props": {"subject": "CN=web.example", "validity_months": 12},
    "issuer": {"name": "Self"},
}
#: Values at Azure's size limit: the file passes the data plane's 256 KiB body limit.
BIG = 24 * 1024


def kvault(server: DevServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **server.env},
        check=False,
        timeout=300,
    )


def progress_lines(stderr: str) -> list[dict[str, Any]]:
    """The JSON progress lines (every stderr line but a final ``ERROR:``)."""
    lines = [ln for ln in stderr.splitlines() if not ln.startswith("ERROR: ")]
    return [json.loads(ln) for ln in lines]


class Api:
    """Raw HTTPS against one vault of a dev server (its Host names the vault)."""

    def __init__(self, server: DevServer, vault: str = VAULT) -> None:
        self.base = server.endpoint
        port = urlsplit(self.base).port
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {server.env['KVAULT_TOKEN']}"
        self.s.headers["Host"] = f"{vault}.localhost:{port}"
        self.ca = server.env["KVAULT_CA_FILE"]  # per request: the environment may name another

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        if "api-version=" not in path:
            path += ("&" if "?" in path else "?") + "api-version=7.5"
        return self.s.request(method, self.base + path, json=body, timeout=120, verify=self.ca)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        r = self.call(method, path, body)
        assert r.status_code in (200, 202), f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def read(self, path: str) -> Any:
        """Status and body, whatever they are (a disabled version's 403 is part of the state)."""
        r = self.call("GET", path)
        return {"status": r.status_code, "body": r.json() if r.content else None}

    def listing(self, path: str) -> Any:
        """Every page of a listing (the status instead when it is not 200)."""
        r = self.call("GET", path)
        if r.status_code != 200:
            return {"status": r.status_code}
        items: list[Any] = []
        doc = r.json()
        while True:
            items += doc.get("value") or []
            link = doc.get("nextLink")
            if not link:
                return items
            parts = urlsplit(link)
            doc = self.ok("GET", f"{parts.path}?{parts.query}")


def _segments(item: dict[str, Any], member: str = "id") -> list[str]:
    """The path segments of an item's id (``kid`` for keys)."""
    item_id = str(item[member] if member in item else item["kid"])
    return urlsplit(item_id).path.strip("/").split("/")


def snapshot(api: Api) -> dict[str, Any]:
    """Everything the data plane shows of the vault: each kind's items, every version (value
    or public key, attributes, tags), deleted items, policies, pending operations, issuers and
    contacts; ids without the server's address (each server has its own port)."""
    out: dict[str, Any] = {}
    for kind in ("secrets", "keys", "certificates"):
        query = "?includePending=true" if kind == "certificates" else ""
        items: dict[str, Any] = {}
        for item in api.listing(f"/{kind}{query}"):
            name = _segments(item)[1]
            versions = api.listing(f"/{kind}/{name}/versions")
            entry: dict[str, Any] = {"listed": item, "versions": {}}
            if isinstance(versions, list):
                for v in versions:
                    version = _segments(v)[2]
                    entry["versions"][version] = {
                        "listed": v,
                        "read": api.read(f"/{kind}/{name}/{version}"),
                    }
            else:
                entry["versions"] = versions
            if kind == "keys":
                entry["rotationpolicy"] = api.read(f"/keys/{name}/rotationpolicy")
            if kind == "certificates":
                entry["policy"] = api.read(f"/certificates/{name}/policy")
                entry["pending"] = api.read(f"/certificates/{name}/pending")
            items[name] = entry
        deleted = {}
        for d in api.listing(f"/deleted{kind}"):
            name = _segments(d, "recoveryId")[1]
            deleted[name] = api.read(f"/deleted{kind}/{name}")
        out[kind] = {"items": items, "deleted": deleted}
    issuers = api.listing("/certificates/issuers")
    out["issuers"] = {
        i["id"].rsplit("/", 1)[-1]: api.read(f"/certificates/issuers/{i['id'].rsplit('/', 1)[-1]}")
        for i in issuers
    }
    out["contacts"] = api.read("/certificates/contacts")
    text = re.sub(r"https://[^/\"]+", "https://VAULT", json.dumps(out, sort_keys=True))
    return dict(json.loads(text))


def digest(state: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def populate(api: Api) -> list[str]:
    """Something of every kind and state; returns the secret values written."""
    values = [f"dr-value-{i}-e6b1" for i in range(6)]
    api.ok("PUT", "/secrets/db", {"value": values[0], "tags": {"env": "prod"}, "contentType": "t"})
    api.ok("PUT", "/secrets/db", {"value": values[1]})
    api.ok("PUT", "/secrets/db", {"value": values[2], "attributes": {"exp": 4102444800}})
    api.ok("PUT", "/secrets/off", {"value": values[3], "attributes": {"enabled": False, "nbf": 1}})
    api.ok("PUT", "/secrets/gone", {"value": values[4], "tags": {"why": "retired"}})
    api.ok("DELETE", "/secrets/gone")
    for i in range(16):
        api.ok("PUT", f"/secrets/big-{i}", {"value": f"{i:02d}" + "x" * (BIG - 2)})
    for i in range(60):
        api.ok("PUT", f"/secrets/bulk-{i}", {"value": f"{values[5]}-{i}"})
    api.ok("POST", "/keys/sig/create", {"kty": "EC", "crv": "P-256", "tags": {"use": "jwt"}})
    api.ok("POST", "/keys/sig/rotate")
    action = {"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}}
    rotation = {"lifetimeActions": [action]}
    api.ok("PUT", "/keys/sig/rotationpolicy", rotation)
    api.ok("POST", "/keys/wrap/create", {"kty": "RSA", "key_size": 2048})
    api.ok("POST", "/keys/old/create", {"kty": "EC"})
    api.ok("DELETE", "/keys/old")
    api.ok("POST", "/certificates/web/create", {"policy": POLICY})
    unknown = {**POLICY, "issuer": {"name": "Unknown"}}
    api.ok("POST", "/certificates/csr/create", {"policy": unknown})
    api.ok("POST", "/certificates/retired/create", {"policy": POLICY})
    api.ok("DELETE", "/certificates/retired")
    api.ok("PUT", "/certificates/contacts", {"contacts": [{"email": "ops@example.com"}]})
    api.ok("PUT", "/certificates/issuers/ext", {"provider": "DigiCert"})
    return values


def _prepare(data_dir: Path) -> None:
    """The source installation's vault, with role assignments (set by the operator from a
    Vault resource in a cluster; here in process, before the server starts)."""

    async def run() -> None:
        kv = await open_configured(data_dir, Backends())
        try:
            await kv.vaults.create(VAULT, retention_days=30, role_assignments=ROLES)
        finally:
            await kv.close()

    asyncio.run(run())


def _purge(data_dir: Path) -> None:
    async def run() -> None:
        kv = await open_configured(data_dir, Backends())
        try:
            await kv.vaults.delete(VAULT)
            await kv.vaults.purge(VAULT)
            assert await kv.vaults.find(VAULT) is None
        finally:
            await kv.close()

    asyncio.run(run())


def _roles(data_dir: Path) -> tuple[RoleAssignment, ...]:
    async def run() -> tuple[RoleAssignment, ...]:
        kv = await open_configured(data_dir, Backends())
        try:
            info = await kv.vaults.find(VAULT)
            assert info is not None
            return info.role_assignments
        finally:
            await kv.close()

    return asyncio.run(run())


def _frames(data: bytes) -> list[tuple[int, int]]:
    splitter = bf.Splitter()
    splitter.feed(data)
    assert splitter.header is not None
    start, out = len(splitter.header.raw) + bf.TAG, []
    while start < len(data):
        end = start + bf.FRAME_HEAD + int.from_bytes(data[start + 5 : start + 9], "big")
        out.append((start, end))
        start = end
    return out


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[DevServer]]:
    """Servers a test starts (appended here), stopped whatever happens."""
    started: list[DevServer] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            stop(server)


def _refused(server: DevServer, expected: str, *args: str) -> None:
    result = kvault(server, "vault", "restore", *args)
    assert result.returncode != 0, result
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("ERROR: ") and expected in error, result.stderr
    gone = Api(server).call("GET", "/secrets")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "VaultNotFound"


def test_disaster_recovery_into_a_fresh_installation(
    tmp_path: Path, servers: list[DevServer]
) -> None:
    a_dir, b_dir = tmp_path / "a" / "data", tmp_path / "b" / "data"
    _prepare(a_dir)
    a = start_dev_server(a_dir)
    servers.append(a)
    values = populate(Api(a))
    before = snapshot(Api(a))
    # 78 secrets and the certificate's own (managed) one
    assert len(before["secrets"]["items"]) == 79 and before["secrets"]["deleted"]
    assert before["keys"]["deleted"] and before["certificates"]["deleted"]
    assert before["issuers"] and before["contacts"]["status"] == 200

    # -- back up: with a passphrase, and under the HSM root ---------------------------------
    (tmp_path / "pass").write_text(PASS + "\n")
    (tmp_path / "wrong").write_text("not the passphrase at all\n")
    sealed_pw, sealed_root = tmp_path / "src.kvb", tmp_path / "src-root.kvb"
    pw = ("--passphrase-file", str(tmp_path / "pass"))
    result = kvault(a, "vault", "backup", "--vault-name", VAULT, "--file", str(sealed_pw), *pw)
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    assert made["sealed"] == "scrypt" and made["vault"] == VAULT and made["chunks"] >= 2
    assert made["digest"].startswith("sha256:") and made["bytes"] == sealed_pw.stat().st_size
    assert made["bytes"] > 256 * 1024  # larger than any declared request body may be
    for kind, title in (("secrets", "Secrets"), ("keys", "Keys"), ("certificates", "Certificates")):
        assert made["counts"][f"deleted{title}"] == len(before[kind]["deleted"]), kind
    assert made["counts"]["secrets"] == 79 and made["counts"]["keys"] == len(
        before["keys"]["items"]
    )
    steps = progress_lines(result.stderr)  # not a terminal: JSON lines
    assert steps[0] == {"phase": "backup", "done": 0, "total": made["records"]}
    assert steps[-1] == {"phase": "backup", "done": made["records"], "total": made["records"]}
    assert [s["done"] for s in steps] == sorted(s["done"] for s in steps) and len(steps) > 2
    assert oct(sealed_pw.stat().st_mode & 0o777) == "0o600"
    assert not (tmp_path / "src.kvb.partial").exists()
    result = kvault(a, "vault", "backup", "--vault-name", VAULT, "--file", str(sealed_root))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["digest"] == made["digest"]
    raw = sealed_pw.read_bytes()
    for value in values:
        assert value.encode() not in raw and value.encode() not in sealed_root.read_bytes()
    again = kvault(a, "vault", "backup", "--vault-name", VAULT, "--file", str(sealed_pw))
    assert again.returncode == 2 and "exists" in again.stderr

    # -- the vault is lost ----------------------------------------------------------------------
    stop(a)
    _purge(a_dir)

    # -- a fresh installation (its own HSM root) refuses what it cannot trust ---------------------
    b = start_dev_server(b_dir)
    servers.append(b)
    assert (b_dir / "hsm.key").read_bytes() != (a_dir / "hsm.key").read_bytes()
    _refused(b, "HSM root", "--file", str(sealed_root))
    frames = _frames(raw)
    middle = (frames[1][0] + frames[1][1]) // 2
    tampered = tmp_path / "tampered.kvb"
    tampered.write_bytes(raw[:middle] + bytes([raw[middle] ^ 1]) + raw[middle + 1 :])
    _refused(b, "chunk 2 failed authentication", "--file", str(tampered), *pw)
    truncated = tmp_path / "truncated.kvb"
    truncated.write_bytes(raw[: frames[-1][0]])  # the last chunk is missing
    _refused(b, "truncated", "--file", str(truncated), *pw)
    wrong = ("--passphrase-file", str(tmp_path / "wrong"))
    _refused(b, "passphrase is wrong", "--file", str(sealed_pw), *wrong)

    # -- restored with the passphrase: identical ------------------------------------------------
    result = kvault(b, "vault", "restore", "--file", str(sealed_pw), *pw)
    assert result.returncode == 0, result.stderr
    restored = json.loads(result.stdout)
    assert restored["vault"] == VAULT and restored["created"] and restored["settingsRestored"]
    assert restored["digest"] == made["digest"] and restored["records"] == made["records"]
    steps = progress_lines(result.stderr)
    assert steps[0] == {"phase": "restore", "done": 0, "total": made["records"]}
    assert {"phase": "restore", "done": made["records"], "total": made["records"]} in steps
    assert steps[-1] == {"phase": "commit", "done": 1, "total": 1}
    after = snapshot(Api(b))
    assert after == before
    assert digest(after) == digest(before)
    # The vault's settings and role assignments came too: its own backup has the same digest.
    result = kvault(b, "vault", "backup", "--vault-name", VAULT, "--file", str(tmp_path / "b.kvb"))
    assert result.returncode == 0 and json.loads(result.stdout)["digest"] == made["digest"]
    # A second restore into the vault, which now holds items, is refused.
    result = kvault(b, "vault", "restore", "--file", str(sealed_pw), *pw)
    assert result.returncode == 1 and "(Conflict)" in result.stderr and "not empty" in result.stderr

    audit = [json.loads(ln) for ln in (b_dir / AUDIT_FILE).read_text().splitlines()]
    mine = [(ln["operation"], ln["outcome"]) for ln in audit if ln["vault"] == VAULT]
    assert mine.count(("VaultRestore", "ok")) == 1
    assert mine.count(("VaultRestore", "committing")) == 1
    assert mine.count(("VaultRestore", "BadParameter")) == 4
    assert ("VaultRestore", "Conflict") in mine and ("VaultBackup", "ok") in mine
    stop(b)
    logs = (b_dir / AUDIT_FILE).read_text() + "".join(b.output) + "".join(a.output)
    for secret in (*values, PASS):
        assert secret not in logs
    assert _roles(b_dir) == ROLES

    # -- the same installation restores its HSM-root backup (name from the file) -------------------
    a = start_dev_server(a_dir)
    servers.append(a)
    result = kvault(a, "vault", "restore", "--file", str(sealed_root))
    assert result.returncode == 0, result.stderr
    assert snapshot(Api(a)) == before


def test_a_terminal_gets_a_progress_bar(dev_server: DevServer, tmp_path: Path) -> None:
    api = Api(dev_server, "dev")
    for i in range(3):
        api.ok("PUT", f"/secrets/bar-{i}", {"value": f"bar-{i}"})
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kvault.cli.main",
            "vault",
            "backup",
            "--vault-name",
            "dev",
            "--file",
            str(tmp_path / "dev.kvb"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, **dev_server.env},
    )
    os.close(slave)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, "no output from the CLI on its terminal"
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the CLI closed the terminal
                break
            if not data:
                break
            seen += data
    finally:
        os.close(master)
    assert proc.wait(timeout=60) == 0
    assert proc.stdout is not None
    summary = json.loads(proc.stdout.read())
    text = seen.decode()
    bars = re.findall(r"\rbackup +\[([#-]{30})\] (\d+)/(\d+) records", text)
    assert bars, text
    assert bars[-1] == ("#" * 30, str(summary["records"]), str(summary["records"]))
    assert int(summary["records"]) >= 3
    assert "{" not in text  # no JSON lines on a terminal


def test_vault_commands_and_their_hints(dev_server: DevServer, tmp_path: Path) -> None:
    unknown = kvault(dev_server, "vault", "create")
    assert unknown.returncode == 2
    assert "vaults are Kubernetes resources here" in unknown.stderr
    assert "Commands here: backup, restore" in unknown.stderr
    missing = kvault(dev_server, "vault", "restore", "--file", str(tmp_path / "none.kvb"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    (tmp_path / "junk.kvb").write_bytes(b"PK\x03\x04 not a backup")
    junk = kvault(dev_server, "vault", "restore", "--file", str(tmp_path / "junk.kvb"))
    assert junk.returncode == 2 and "not a kvault vault backup" in junk.stderr
    (tmp_path / "empty").write_text("\n")
    backup = ("vault", "backup", "--vault-name", "dev", "--file", str(tmp_path / "x.kvb"))
    empty = kvault(dev_server, *backup, "--passphrase-file", str(tmp_path / "empty"))
    assert empty.returncode == 2 and "holds no passphrase" in empty.stderr
    (tmp_path / "short").write_text("short\n")
    short = kvault(dev_server, *backup, "--passphrase-file", str(tmp_path / "short"))
    assert short.returncode == 1 and "shorter than 12" in short.stderr
    assert not (tmp_path / "x.kvb").exists() and not (tmp_path / "x.kvb.partial").exists()


# -- the routes under the CLI ---------------------------------------------------------------------


async def test_the_routes_answer_in_azures_shape(tmp_path: Path) -> None:
    kv = await open_kvault(
        tmp_path / "data", load("software", {"key_file": str(tmp_path / "hsm.key")})
    )
    await kv.vaults.create(VAULT, role_assignments=ROLES)
    await kv.vaults.create("other", role_assignments=ROLES)
    await kv.secrets.set(VAULT, "db", "route-secret-value")
    tokens = StaticTokens(
        {
            "admin": Principal("system:serviceaccount:team-a:admin"),
            "reader": Principal(
                "system:serviceaccount:team-b:x", ("system:serviceaccounts:team-b",)
            ),
            "root": Principal("kvault:root", superuser=True),
        }
    )

    def h(token: str, vault: str = VAULT) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Host": f"{vault}.localhost"}

    def error(doc: Any) -> tuple[str, str | None, str]:
        e = doc["error"]
        return e["code"], (e.get("innererror") or {}).get("code"), e["message"]

    async with TestClient(TestServer(build_app(ApiConfig(kv, tokens)))) as client:
        r = await client.post("/kvault/backup", headers=h("reader"))
        assert r.status == 403
        code, inner, message = error(await r.json())
        assert (code, inner) == ("Forbidden", "ForbiddenByRbac")
        assert "Microsoft.KeyVault/vaults/kvault/vaultBackup/action" in message
        r = await client.post("/kvault/backup", headers=h("admin"), json={"passphrase": 7})
        assert r.status == 400 and error(await r.json())[0] == "BadParameter"
        r = await client.post("/kvault/backup", headers=h("admin"), data=b"{not json")
        assert r.status == 400
        r = await client.post("/kvault/backup", headers=h("admin", "nope"))
        assert r.status == 404 and error(await r.json())[0] == "VaultNotFound"
        r = await client.post("/kvault/backup", headers=h("admin"), json={"passphrase": PASS})
        assert r.status == 200 and r.headers["Content-Type"] == bf.MEDIA_TYPE
        assert r.headers["x-ms-request-id"]
        data = await r.read()
        assert data.startswith(bf.MAGIC) and b"route-secret-value" not in data
        options = json.dumps({"passphrase": PASS}).encode() + b"\n"

        async def restore(token: str, vault: str, body: bytes) -> tuple[int, Any]:
            r = await client.post("/kvault/restore", headers=h(token, vault), data=body)
            return r.status, await r.json()

        status, doc = await restore("reader", "other", options + data)
        assert status == 403 and error(doc)[1] == "ForbiddenByRbac"
        status, doc = await restore("admin", VAULT, options + data)
        assert status == 409 and "not empty" in error(doc)[2]
        status, doc = await restore("admin", "copy", options + data)
        assert status == 404 and error(doc)[0] == "VaultNotFound"  # creating is a superuser's
        bad = ((data, "options"), (b"[]\n" + data, "object"), (b"{}\n" + data, "passphrase"))
        for body, field in bad:
            status, doc = await restore("root", "copy", body)
            assert status == 400 and field in error(doc)[2], (status, doc)
        status, doc = await restore("root", "copy", options + data[:-1] + bytes([data[-1] ^ 1]))
        assert status == 400 and "failed authentication" in error(doc)[2]
        r = await client.get("/secrets", headers=h("root", "copy"))
        assert r.status == 404
        status, doc = await restore("admin", "other", options + data)
        assert status == 200, doc
        assert doc["records"] == 2 and not doc["created"] and not doc["settingsRestored"]
        status, doc = await restore("root", "copy", options + data)
        assert status == 200 and doc["created"] and doc["settingsRestored"]
    assert (await kv.secrets.get("copy", "db")).value == "route-secret-value"
    await kv.close()
