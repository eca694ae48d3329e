"""The rows beside a certificate's versions, as plaintext records: its pending create
operation, the vault's issuers and contacts. Each is sealed by the barrier like every row."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from kvault.errors import IntegrityError
from kvault.vault.records import dump


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: Any) -> bytes | None:
    return None if text is None else base64.b64decode(text, validate=True)


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A create operation: ``key`` is the encoded key version value waiting for ``merge``
    (Unknown issuer), sealed in this row only until the merge stages it as the key. ``name``
    (as the writer spelled it) and ``created`` describe the pending version in a listing
    (rows written before they were kept have ``""`` and 0)."""

    issuer: str
    status: str
    request_id: str
    version: str
    csr: bytes | None = None
    cancellation_requested: bool = False
    status_details: str | None = None
    error: dict[str, str] | None = None
    key: bytes | None = field(default=None, repr=False)
    enabled: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    name: str = ""
    created: int = 0

    def encode(self) -> bytes:
        doc = asdict(self)
        doc["csr"], doc["key"] = _b64(self.csr), _b64(self.key)
        return dump(doc)

    @classmethod
    def decode(cls, raw: bytes) -> PendingRecord:
        try:
            doc = json.loads(raw)
            doc["csr"], doc["key"] = _unb64(doc["csr"]), _unb64(doc["key"])
            return cls(**doc)
        except (ValueError, KeyError, TypeError):
            raise IntegrityError("stored certificate operation is malformed") from None


@dataclass(frozen=True, slots=True)
class IssuerRecord:
    """An issuer: ``provider`` (``kvault-ca`` signs with the certificate ``account_id`` of
    this vault); other providers are stored for clients that read them back."""

    name: str
    provider: str
    account_id: str | None = None
    password: str | None = field(default=None, repr=False)
    org_id: str | None = None
    admins: tuple[dict[str, str], ...] = ()
    enabled: bool = True
    created: int = 0
    updated: int = 0

    def encode(self) -> bytes:
        doc = asdict(self)
        doc["admins"] = list(self.admins)
        return dump(doc)

    @classmethod
    def decode(cls, raw: bytes) -> IssuerRecord:
        try:
            doc = json.loads(raw)
            doc["admins"] = tuple(doc["admins"])
            return cls(**doc)
        except (ValueError, KeyError, TypeError):
            raise IntegrityError("stored certificate issuer is malformed") from None


def encode_contacts(contacts: list[dict[str, str]]) -> bytes:
    return dump({"contacts": contacts})


def decode_contacts(raw: bytes) -> list[dict[str, str]]:
    try:
        contacts = json.loads(raw)["contacts"]
        if not isinstance(contacts, list):
            raise TypeError
        return contacts
    except (ValueError, KeyError, TypeError):
        raise IntegrityError("stored certificate contacts are malformed") from None
