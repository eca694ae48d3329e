"""What a reconcile ends with: a refusal (a condition reason, no values inside) or a result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Refused(Exception):
    """The projection cannot happen; ``reason`` is the condition reason. No values inside."""

    def __init__(self, reason: str, message: str, *, drop: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.drop = drop  # remove a Secret we wrote earlier


@dataclass(slots=True)
class Result:
    status: dict[str, Any]
    reason: str
    wrote: bool = False
    content_hash: str = ""
    fingerprint: str = ""  # digest of the written data (kept in memory for drift checks)
    keys: tuple[str, ...] = ()
    restarted: list[str] = field(default_factory=list)
