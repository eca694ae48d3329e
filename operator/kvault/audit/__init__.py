"""The audit log: one hash-chained JSON line per operation, allowed or denied."""

from kvault.audit.chain import GENESIS, line_hash
from kvault.audit.event import AuditEvent, Auditor, NullAuditor
from kvault.audit.log import AuditLog
from kvault.audit.verify import VerifyResult, verify

__all__ = [
    "GENESIS",
    "AuditEvent",
    "AuditLog",
    "Auditor",
    "NullAuditor",
    "VerifyResult",
    "line_hash",
    "verify",
]
