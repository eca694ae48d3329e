"""The audit log: one chained JSON line per operation, never a value; verify finds breaks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kvault.app.backends import AUDIT_FILE
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
