"""Stored records are json's canonical spelling, whichever encoder wrote them."""

from __future__ import annotations

import json
import random
import string

from kvault.vault.records import dump, load


def _json(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def test_records_are_jsons_bytes() -> None:
    rng = random.Random(14)
    docs: list[dict[str, object]] = [
        {"version": "ab", "created": 1_700_000_000, "tags": {"z": "1", "a": "b"}, "n": None},
        {"name": "é", "tags": {"k": "€"}},  # non-ASCII: escaped, as json does
        {"a": "x\x7f", "b": [True, False]},  # DEL: escaped, as json does
        {"big": 2**70},  # beyond 64 bits: json's spelling
    ]
    alphabet = string.printable + "é€\u2028"
    for _ in range(500):
        doc: dict[str, object] = {
            "".join(rng.choices(alphabet, k=5)): "".join(rng.choices(alphabet, k=9))
            for _ in range(4)
        }
        doc["meta"] = {"n": rng.randint(-(2**63), 2**63 - 1), "t": [True, None]}
        docs.append(doc)
    for doc in docs:
        assert dump(doc) == _json(doc)
        assert load(dump(doc), "record") == doc
