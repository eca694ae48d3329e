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
    #: Refused authentication only: the client address, and how many refusals the line stands
    #: for (see :mod:`kvault.vault.authfail`); other lines leave them out.
    source: str = ""
    count: int = 0


class Auditor(Protocol):
    def record(self, event: AuditEvent) -> None: ...

    async def settle(self) -> None:
        """Return once every line recorded so far is durable (on disk, not only written)."""
        ...


class NullAuditor:
    """For tools that run without an audit log (benchmarks)."""

    def record(self, event: AuditEvent) -> None:
        return None

    async def settle(self) -> None:
        return None
