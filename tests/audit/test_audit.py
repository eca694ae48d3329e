"""The audit log: one chained JSON line per operation, never a value; verify finds breaks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kvault.app.backends import AUDIT_FILE, DB_FILE
from kvault.audit.event import AuditEvent
from kvault.audit.log import AuditLog
from kvault.errors import NotFound
from kvault.vault.core import Caller
from kvault.vault.service import Kvault


def _kvault(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _write(path: Path, n: int) -> None:
    log = AuditLog(path)
    for i in range(n):
        log.record(AuditEvent("alice", "v1", "SecretGet", "ok", f"item{i}", "", f"req{i}"))
    log.close()


async def test_every_operation_is_one_line_without_values(kv: Kvault, tmp_path: Path) -> None:
    caller = Caller("system:serviceaccount:team-a:app", "req-123")
    s = await kv.secrets.set("v1", "pw", "hunter2-value", caller=caller)
    await kv.secrets.get("v1", "pw", caller=caller)
    with pytest.raises(NotFound):
        await kv.secrets.get("v1", "missing", caller=caller)
    await kv.close()
    path = tmp_path / "data" / AUDIT_FILE
    text = path.read_text()
    assert "hunter2-value" not in text
    lines = [json.loads(ln) for ln in text.splitlines()]
    ops = [(ln["operation"], ln["item"], ln["outcome"]) for ln in lines]
    assert ops[-3:] == [
        ("SecretSet", "pw", "ok"),
        ("SecretGet", "pw", "ok"),
        ("SecretGet", "missing", "NotFound"),
    ]
    last_set = lines[-3]
    assert last_set["principal"] == "system:serviceaccount:team-a:app"
    assert last_set["request_id"] == "req-123"
    assert last_set["version"] == s.properties.version
    assert last_set["vault"] == "v1"
    assert {"time", "prev", "hash"} <= set(last_set)
    result = _kvault("audit", "verify", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(lines)} lines, chain intact" in result.stdout


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _write(path, 3)
    _write(path, 2)
    assert _kvault("audit", "verify", str(path)).returncode == 0


@pytest.mark.parametrize(
    ("mutate", "line", "reason"),
    [
        (lambda ls: ls[:2] + ls[3:], 3, "removed or reordered"),  # a line removed
        (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 2, "removed or reordered"),
        (lambda ls: [*ls[:3], ls[3].replace("alice", "mallory"), *ls[4:]], 4, "edited"),
        (lambda ls: [*ls[:1], ls[1].replace('"ok"', '"denied"'), *ls[2:]], 2, "edited"),
        (lambda ls: [*ls[:4], "{not json", *ls[5:]], 5, "not a JSON object"),
        (lambda ls: ls[1:], 1, "removed or reordered"),  # the head cut off
    ],
)
def test_verify_reports_the_first_broken_link(
    tmp_path: Path, mutate: object, line: int, reason: str
) -> None:
    path = tmp_path / "audit.log"
    _write(path, 6)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(mutate(lines)) + "\n")  # type: ignore[operator]
    result = _kvault("audit", "verify", str(path))
    assert result.returncode == 1
    assert f"chain broken at line {line}" in result.stdout
    assert reason in result.stdout


def test_verify_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = _kvault("audit", "verify", str(tmp_path / "nope.log"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr


async def test_verify_against_the_data_directory_finds_a_version_without_its_line(
    tmp_path: Path,
) -> None:
    """``--against`` opens the data directory and names every stored version that no line
    accounts for: here one written by a kvault that had no audit log."""
    from kvault.app.backends import open_kvault
    from kvault.hsm.registry import load
    from kvault.storage.sqlite import SQLiteStorage
    from kvault.vault.service import Kvault as Plain

    data, key = tmp_path / "data", tmp_path / "root.key"
    kv = await open_kvault(data, load("software", {"key_file": str(key)}))
    await kv.vaults.create("v1")
    await kv.secrets.set("v1", "audited", "one")
    await kv.keys.create("v1", "signer", "EC", crv="P-256")
    await kv.close()
    args = ("--against", str(data), "--hsm", "software", "--hsm-option", f"key_file={key}")
    path = data / AUDIT_FILE
    result = _kvault("audit", "verify", str(path), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every stored version has its audit line" in result.stdout

    storage = SQLiteStorage(data / DB_FILE)
    await storage.open()
    hsm = load("software", {"key_file": str(key)})
    await hsm.open()
    silent = await Plain.open(storage, hsm)
    hidden = await silent.secrets.set("v1", "unaudited", "two")
    await silent.close()
    result = _kvault("audit", "verify", str(path), *args)
    assert result.returncode == 1
    assert f"secret v1/unaudited version {hidden.properties.version}: no audit line" in (
        result.stdout
    )
    assert "1 stored versions have no audit line" in result.stdout
