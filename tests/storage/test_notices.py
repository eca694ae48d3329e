"""The payloads replicas send each other through a shared store's notices."""

from __future__ import annotations

from kvault.storage.base import Check, Delete, DeletePrefix, Op, Put
from kvault.storage.notices import (
    MAX_PAYLOAD,
    note_payload,
    origin_prefix,
    parse_note,
    parse_rows_changed,
    rows_changed,
)


def test_rows_changed_round_trips_keys_and_prefixes() -> None:
    ops: list[Op] = [Put("b/ключ", b"v"), Delete("a/k"), DeletePrefix("p/"), Check("c/k", 1)]
    ops.append(Put("a/k", b""))
    payload = rows_changed("abc", ops)
    assert payload is not None
    notice = parse_rows_changed(payload)
    assert (notice.origin, notice.keys, notice.prefixes) == ("abc", ("a/k", "b/ключ"), ("p/",))
    assert not notice.everything
    assert rows_changed("abc", [Check("c/k", 1)]) is None


def test_too_many_keys_are_announced_as_everything() -> None:
    ops = [Put(f"k/{i:06d}", b"") for i in range(MAX_PAYLOAD // 8)]
    payload = rows_changed("abc", ops)
    assert payload is not None and len(payload.encode()) <= MAX_PAYLOAD
    assert parse_rows_changed(payload).everything


def test_a_listener_knows_its_own_payloads_by_their_beginning() -> None:
    own = origin_prefix("abc")
    mine = [rows_changed("abc", [Put("k", b"")]), note_payload("abc", "n")]
    theirs = [rows_changed("abcd", [Put("k", b"")]), note_payload("ab", "n"), '{"x":1}']
    assert all(p is not None and p.startswith(own) for p in mine)
    assert not any(p is not None and p.startswith(own) for p in theirs)
    assert parse_note(note_payload("ab", "n")) == ("ab", "n")
