"""Audit checkpoints: a cut tail (or an emptied, or rewritten, log) is reported against a
checkpoint sealed under the HSM root; a checkpoint cannot be forged or edited without it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kvault.app.audit_anchor import CHECKPOINT_FILE, CheckpointPublisher, file_sink
from kvault.app.backends import AUDIT_FILE
from kvault.audit.checkpoint import Checkpoint, against
from kvault.audit.event import AuditEvent
from kvault.audit.log import AuditLog
from kvault.barrier.portable import PortableSealer
from kvault.errors import IntegrityError
from kvault.hsm.registry import load

ROOT = Path(__file__).resolve().parents[2]


def _kvault(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


async def _sealer(key_file: Path) -> PortableSealer:
    hsm = load("software", {"key_file": str(key_file)})
    await hsm.open()
    return PortableSealer(hsm)


def _write(log: AuditLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        log.record(AuditEvent("alice", "v1", "SecretSet", "ok", f"item{i}", f"{i:032x}", f"r{i}"))


async def test_a_checkpoint_opens_only_as_it_was_sealed(tmp_path: Path) -> None:
    sealer = await _sealer(tmp_path / "root.key")
    doc = await Checkpoint("audit.log", 12, "ab" * 32, "2026-12-06T10:00:00Z").sealed(sealer)
    assert await Checkpoint.opened(doc, sealer) == Checkpoint(
        "audit.log", 12, "ab" * 32, "2026-12-06T10:00:00Z"
    )
    with pytest.raises(IntegrityError, match="differ from what its seal holds"):
        await Checkpoint.opened({**doc, "lines": 11}, sealer)  # edited in the clear
    other = await _sealer(tmp_path / "other.key")
    with pytest.raises(IntegrityError):
        await Checkpoint.opened(doc, other)  # another HSM root: not ours
    with pytest.raises(IntegrityError):
        await Checkpoint.opened({**doc, "seal": "not base64!"}, sealer)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda ls: ls[:-10], "cut tail: the checkpoint of"),  # the last 10 lines dropped
        (lambda ls: [], "the file has 0"),  # emptied
        (lambda ls: ls[:-1], "counts 30 lines, the file has 29"),
    ],
)
async def test_verify_reports_a_cut_tail_against_the_published_checkpoint(
    tmp_path: Path, damage: object, expected: str
) -> None:
    key = tmp_path / "root.key"
    path = tmp_path / AUDIT_FILE
    log = AuditLog(path)
    _write(log, 30)
    publisher = CheckpointPublisher(
        log, await _sealer(key), [file_sink(tmp_path / CHECKPOINT_FILE)]
    )
    assert await publisher.publish()
    assert not await publisher.publish()  # nothing new: no new checkpoint
    log.close()
    args = ("--checkpoint", str(tmp_path / CHECKPOINT_FILE), "--hsm-option", f"key_file={key}")
    ok = _kvault("audit", "verify", str(path), *args)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "holds the 30 lines of the checkpoint of" in ok.stdout

    lines = path.read_text().splitlines()
    kept = damage(lines)  # type: ignore[operator]
    path.write_text("".join(line + "\n" for line in kept))
    cut = _kvault("audit", "verify", str(path), *args)
    assert cut.returncode == 1, cut.stdout + cut.stderr
    assert "chain intact" in cut.stdout  # what is left still chains: only the checkpoint tells
    assert expected in cut.stdout


async def test_a_log_rewritten_from_scratch_is_not_the_checkpointed_one(tmp_path: Path) -> None:
    """Someone who can write the volume but not use the HSM writes a whole new, valid chain of
    the same length: the line at the checkpoint is not the one it saw."""
    key, path = tmp_path / "root.key", tmp_path / AUDIT_FILE
    log = AuditLog(path)
    _write(log, 5)
    head = log.head()
    assert head is not None
    doc = await Checkpoint(path.name, *head, "2026-12-06T10:00:00Z").sealed(await _sealer(key))
    log.close()
    path.unlink()
    forged = AuditLog(path)
    _write(forged, 5, start=100)
    forged.close()
    (tmp_path / "cp.json").write_text(json.dumps(doc))
    opened = await Checkpoint.opened(doc, await _sealer(key))
    assert against(path, opened) is not None
    result = _kvault(
        "audit", "verify", str(path), "--checkpoint", str(tmp_path / "cp.json"),
        "--hsm-option", f"key_file={key}",
    )  # fmt: skip
    assert result.returncode == 1
    assert "line 5 is not the one the checkpoint" in result.stdout


def test_the_dev_server_publishes_a_checkpoint_that_verifies(tmp_path: Path) -> None:
    """``kvault server --dev`` writes ``audit.checkpoint`` beside its log when it stops."""
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kvault.cli.main", "server", "--dev", "--port", "0",
         "--data-dir", str(data)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("KVAULT_CA_FILE="):
            break
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    checkpoint = json.loads((data / CHECKPOINT_FILE).read_text())
    assert checkpoint["file"] == AUDIT_FILE and checkpoint["lines"] >= 1
    result = _kvault(
        "audit", "verify", str(data / AUDIT_FILE), "--checkpoint", str(data / CHECKPOINT_FILE)
    )
    assert result.returncode == 0, result.stdout + result.stderr
