"""The hash chain: each line carries the hash of the previous one and its own.

``hash = sha256(prev_hash_hex + canonical JSON of the line without "hash")``, so removing,
reordering or editing any line breaks the link of the line after it (or its own hash).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS = "0" * 64


def canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def line_hash(prev: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256(prev.encode() + canonical(fields)).hexdigest()
