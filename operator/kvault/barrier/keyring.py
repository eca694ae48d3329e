"""A vault's key-encryption keys (KEKs), by term, as stored: wrapped by an HSM root key.

The stored record is not secret (every KEK in it is wrapped and authenticated by the HSM),
so it is plain JSON. Unwrapped KEKs exist only in :class:`Keyring`, in memory.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kvault.errors import IntegrityError
from kvault.hsm.base import WrappedKey


def kek_aad(vault_id: str, term: int) -> bytes:
    """Binds a wrapped KEK to its vault and term, so it cannot be replayed elsewhere."""
    return f"kvault/kek\x1f{vault_id}\x1f{term}".encode()


@dataclass(frozen=True, slots=True)
class StoredKeyring:
    """The persisted form: every term's wrapped KEK and which term new data uses."""

    active: int
    wrapped: dict[int, WrappedKey]

    def encode(self) -> bytes:
        return json.dumps(
            {
                "active": self.active,
                "keys": {
                    str(term): {"root": w.key_id, "blob": base64.b64encode(w.blob).decode()}
                    for term, w in sorted(self.wrapped.items())
                },
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> StoredKeyring:
        try:
            doc = json.loads(raw)
            wrapped = {
                int(term): WrappedKey(k["root"], base64.b64decode(k["blob"], validate=True))
                for term, k in doc["keys"].items()
            }
            active = int(doc["active"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"stored keyring is malformed: {type(exc).__name__}") from None
        if active not in wrapped:
            raise IntegrityError("stored keyring names an active term it does not hold")
        return cls(active, wrapped)


@dataclass(slots=True)
class Keyring:
    """Unwrapped KEKs of one vault, ready to use. Lives in memory only."""

    active: int
    keys: dict[int, AESGCM] = field(default_factory=dict)
