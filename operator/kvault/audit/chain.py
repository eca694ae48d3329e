"""The hash chain: each line carries the hash of the previous one and its own.

``hash = sha256(prev_hash_hex + canonical JSON of the line without "hash")``, so removing,
reordering or editing any line breaks the link of the line after it (or its own hash).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kvault.jsonbytes import sorted_ascii

GENESIS = "0" * 64
#: The value types whose orjson form is json's, byte for byte, once the output is plain ASCII
#: without DEL (json escapes both, orjson neither); no floats (their spellings differ).
_FLAT = frozenset({str, int, bool, type(None)})


def canonical(fields: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, ASCII only (json's spelling; orjson writes the same bytes
    about ten times faster for the flat objects of audit lines, so it does when it can)."""
    if _FLAT.issuperset(map(type, fields.values())):
        fast = sorted_ascii(fields)
        if fast is not None:
            return fast
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def line_hash(prev: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256(prev.encode() + canonical(fields)).hexdigest()
