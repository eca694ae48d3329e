"""The plaintext form of stored records (sealed by the barrier before they reach storage): the
vault record here, item records in :mod:`kvault.vault.items.records`."""

from __future__ import annotations

import json
from typing import Any

import orjson

from kvault.errors import IntegrityError
from kvault.jsonbytes import sorted_ascii
from kvault.vault.model import RoleAssignment, VaultInfo


def dump(doc: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, ASCII only: json's spelling. orjson writes the same bytes
    several times faster when its output is plain ASCII without DEL (json escapes both), which
    it is for nearly every record (a write's records are encoded on its hot path)."""
    fast = sorted_ascii(doc)  # records hold no floats
    if fast is not None:
        return fast
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def load(raw: bytes, what: str) -> dict[str, Any]:
    """A record :func:`dump` wrote. orjson reads it several times faster, as json would: records
    hold strings, booleans, null and integers far within 64 bits; what orjson refuses and json
    might read (``NaN``, an escaped lone surrogate) is left to json."""
    try:
        doc = orjson.loads(raw)
    except ValueError:
        try:
            doc = json.loads(raw)
        except ValueError:
            raise IntegrityError(f"stored {what} is malformed") from None
    if not isinstance(doc, dict):
        raise IntegrityError(f"stored {what} is malformed")
    return doc


def roles_doc(info: VaultInfo) -> list[dict[str, str]]:
    """The vault's role assignments as stored (and as a backup holds them)."""
    return [
        {"principal": r.principal, "role": r.role, "scope": r.scope} for r in info.role_assignments
    ]


def encode_vault(info: VaultInfo) -> bytes:
    return dump(
        {
            "name": info.name,
            "id": info.id,
            "created": info.created,
            "sku": info.sku,
            "retentionDays": info.retention_days,
            "purgeProtection": info.purge_protection,
            "roleAssignments": roles_doc(info),
            "deletedDate": info.deleted_date,
            "scheduledPurgeDate": info.scheduled_purge_date,
        }
    )


def decode_vault(raw: bytes) -> VaultInfo:
    doc = load(raw, "vault")
    try:
        return VaultInfo(
            name=doc["name"],
            id=doc["id"],
            created=doc["created"],
            sku=doc["sku"],
            retention_days=doc["retentionDays"],
            purge_protection=doc["purgeProtection"],
            role_assignments=tuple(
                RoleAssignment(r["principal"], r["role"], r["scope"])
                for r in doc["roleAssignments"]
            ),
            deleted_date=doc["deletedDate"],
            scheduled_purge_date=doc["scheduledPurgeDate"],
        )
    except (KeyError, TypeError):
        raise IntegrityError("stored vault is malformed") from None
