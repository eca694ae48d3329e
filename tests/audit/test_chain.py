"""The hash chain covers every field of every line: editing, adding or removing any of them
(the item, the version, the time as much as the principal) breaks ``verify`` at that line.
In-process and fast: the test set of the mutation run over audit/chain.py and verify.py."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kvault.audit.chain import GENESIS, canonical, line_hash
from kvault.audit.event import AuditEvent
from kvault.audit.log import AuditLog
from kvault.audit.verify import VerifyResult, verify

EVENTS = [
    AuditEvent("alice", "v1", "SecretSet", "ok", "db", "a" * 32, "req-1"),
    AuditEvent("bob", "v1", "SecretGet", "ForbiddenByRbac", "db", "b" * 32, "req-2"),
    AuditEvent("carol", "v2", "KeySign", "ok", "signer", "c" * 32, "req-3"),
    AuditEvent("", "", "Authenticate", "Unauthenticated", source="10.0.0.7", count=3),
    AuditEvent("dave", "v2", "SecretList", "ok"),
]


def _log(path: Path) -> list[dict[str, Any]]:
    log = AuditLog(path)
    for event in EVENTS:
        log.record(event)
    log.close()
    return [json.loads(line) for line in path.read_text().splitlines()]


def _rewrite(path: Path, lines: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(json.dumps(ln).encode() + b"\n" for ln in lines))


def _changed(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return "x"
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str) and value.endswith("Z"):  # a time: one millisecond later
        return value[:-2] + str((int(value[-2]) + 1) % 10) + "Z"
    return value + "x" if isinstance(value, str) else "x"


def test_a_log_as_written_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    lines = _log(path)
    assert verify(path) == VerifyResult(len(EVENTS))
    assert verify(path).ok
    assert lines[0]["prev"] == GENESIS
    for before, line in itertools.pairwise(lines):
        assert line["prev"] == before["hash"]
    assert {"time", "item", "version", "request_id"} <= set(lines[0])
    assert (lines[3]["source"], lines[3]["count"]) == ("10.0.0.7", 3)
    assert "source" not in lines[0] and "count" not in lines[0]


def test_each_line_is_the_canonical_json_of_its_fields_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _log(path)
    for raw in path.read_bytes().splitlines():
        line = json.loads(raw)
        assert raw == canonical(line)  # "hash" in its sorted place, with or without "count"
        prev, digest = line["prev"], line.pop("hash")
        assert digest == line_hash(prev, line)


def test_the_time_is_utc_to_the_millisecond(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    lines = _log(path)
    after = datetime.now(UTC) + timedelta(seconds=1)
    for line in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
        assert before <= datetime.fromisoformat(line["time"]) <= after


@pytest.mark.parametrize("index", range(len(EVENTS)))
def test_editing_any_field_of_any_line_breaks_the_chain_there(tmp_path: Path, index: int) -> None:
    path = tmp_path / "audit.log"
    lines = _log(path)
    assert set(lines[index]) >= {
        "time",
        "principal",
        "vault",
        "operation",
        "outcome",
        "item",
        "version",
        "request_id",
        "prev",
        "hash",
    }
    for field in lines[index]:
        edited = [dict(ln) for ln in lines]
        edited[index][field] = _changed(edited[index][field])
        _rewrite(path, edited)
        result = verify(path)
        assert (result.broken_at, result.lines) == (index + 1, index), field
        assert not result.ok
        reason = "link broken" if field == "prev" else "hash mismatch (the line was edited)"
        assert reason in result.reason, field


@pytest.mark.parametrize("field", ["item", "version", "time", "source", "request_id"])
def test_adding_or_removing_a_field_breaks_the_chain(tmp_path: Path, field: str) -> None:
    path = tmp_path / "audit.log"
    lines = _log(path)
    edited = [dict(ln) for ln in lines]
    if field in edited[3]:
        del edited[3][field]
    else:
        edited[3][field] = "added"
    _rewrite(path, edited)
    assert verify(path).broken_at == 4


def test_the_hash_is_sha256_of_the_previous_hash_and_the_canonical_line() -> None:
    fields = {"b": "é", "a": 1, "prev": GENESIS}
    assert canonical(fields) == b'{"a":1,"b":"\\u00e9","prev":"' + GENESIS.encode() + b'"}'
    expected = hashlib.sha256(GENESIS.encode() + canonical(fields)).hexdigest()
    assert line_hash(GENESIS, fields) == expected
    assert line_hash("1" * 64, fields) != expected  # the previous hash is part of it
    assert GENESIS == "0" * 64


@pytest.mark.parametrize(
    "fields",
    [
        {"principal": "system:serviceaccount:team-a:app", "count": 3, "prev": GENESIS},
        {"b": True, "a": None, "c": False, "z": -(2**63), "y": 2**64 - 1},
        {"big": 2**64, "neg": -(2**63) - 1},  # beyond orjson's integers
        {"ctl": "\x00\x01\x1f\b\t\n\f\r", "quote": '"\\/'},
        {"del": "a\x7fb"},  # json escapes DEL, orjson does not
        {"name": "é", "sep": "\u2028", "astral": "\U0001f511"},
        {"float": 1e16, "small": 0.1},  # spelt differently by the two
        {"nested": {"b": 1, "a": [1, "x"]}},
        {2: "int keys", 1: "json makes them strings"},
    ],
)
def test_canonical_is_jsons_spelling_whatever_the_fields(fields: dict[Any, Any]) -> None:
    """orjson writes audit lines (fast), json defines them: the same bytes for any fields."""
    expected = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert canonical(fields) == expected.encode()


def test_verify_stops_at_the_first_line_that_is_not_a_json_object(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    lines = _log(path)
    for bad in (b"[1, 2]\n", b"not json\n", b"\n", b'"text"\n'):
        path.write_bytes(
            b"".join(json.dumps(ln).encode() + b"\n" for ln in lines[:2])
            + bad
            + json.dumps(lines[2]).encode()
            + b"\n"
        )
        assert verify(path) == VerifyResult(2, 3, "not a JSON object")


def test_a_line_without_a_hash_or_with_a_foreign_first_link_breaks(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    lines = _log(path)
    no_hash = [dict(ln) for ln in lines]
    del no_hash[1]["hash"]
    _rewrite(path, no_hash)
    assert verify(path) == VerifyResult(1, 2, "hash mismatch (the line was edited)")
    _rewrite(path, lines[2:])  # the head cut off: its first line does not start the chain
    assert verify(path) == VerifyResult(
        0, 1, "previous-hash link broken (a line was removed or reordered)"
    )
    path.write_bytes(b"")
    assert verify(path) == VerifyResult(0)  # empty: a cut tail is the checkpoint's to catch
