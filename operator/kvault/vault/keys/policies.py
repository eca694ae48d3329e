"""A key's rotation policy row (the policy and the version last notified about, sealed like
every record) and the operations on it. The scheduler derives every due time from it and the
key's current version, so nothing it needs lives only in memory."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kvault.errors import IntegrityError
from kvault.vault.keys.rotation import RotationPolicy
from kvault.vault.records import dump


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    policy: RotationPolicy
    #: The key version a Notify action was carried out for (not again for it).
    notified: str | None = None

    def encode(self) -> bytes:
        return dump({"policy": self.policy.to_doc(), "notified": self.notified})

    @classmethod
    def decode(cls, raw: bytes) -> PolicyRecord:
        try:
            doc = json.loads(raw)
            notified = doc["notified"]
            if notified is not None and not isinstance(notified, str):
                raise TypeError
            return cls(RotationPolicy.from_doc(doc["policy"]), notified)
        except (ValueError, KeyError, TypeError):
            raise IntegrityError("stored key rotation policy is malformed") from None
