"""Check an audit log's chain and say where it first breaks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kvault.audit.chain import GENESIS, line_hash


@dataclass(frozen=True, slots=True)
class VerifyResult:
    lines: int  # lines that verified
    broken_at: int | None = None  # 1-based line number of the first broken link
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(path: Path) -> VerifyResult:
    prev = GENESIS
    count = 0
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                fields = json.loads(raw)
                if not isinstance(fields, dict):
                    raise ValueError
            except ValueError:
                return VerifyResult(count, number, "not a JSON object")
            claimed = fields.pop("hash", None)
            if fields.get("prev") != prev:
                return VerifyResult(
                    count, number, "previous-hash link broken (a line was removed or reordered)"
                )
            if claimed != line_hash(prev, fields):
                return VerifyResult(count, number, "hash mismatch (the line was edited)")
            prev = claimed
            count += 1
    return VerifyResult(count)
