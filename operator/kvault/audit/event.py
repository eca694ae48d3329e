"""What one audited operation records. Never a value: only who, what, where and how it went."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AuditEvent:
    principal: str
    vault: str
    operation: str
    outcome: str  # "ok", or the error code that ended the operation
    item: str = ""
    version: str = ""
    request_id: str = ""


class Auditor(Protocol):
    def record(self, event: AuditEvent) -> None: ...


class NullAuditor:
    """For tools that run without an audit log (benchmarks)."""

    def record(self, event: AuditEvent) -> None:
        return None
