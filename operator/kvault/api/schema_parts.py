"""The OpenAPI building blocks every kind's schemas use (one spelling of each)."""

from __future__ import annotations

from typing import Any

from kvault.vault.names import MAX_UNIX_TIME

REF = "#/components/schemas/"
TIME = {"type": "integer", "minimum": 0, "maximum": MAX_UNIX_TIME}
TAGS = {
    "type": "object",
    "maxProperties": 15,
    "additionalProperties": {"type": "string", "maxLength": 256},
}
#: What a deleted item of any kind adds to its item.
DELETION = {
    "type": "object",
    "required": ["recoveryId", "deletedDate", "scheduledPurgeDate"],
    "properties": {
        "recoveryId": {"type": "string", "format": "uri"},
        "deletedDate": {"type": "integer"},
        "scheduledPurgeDate": {"type": "integer"},
    },
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def listing(item: str) -> dict[str, Any]:
    """A page of ``item``: ``value`` and ``nextLink``."""
    return {
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": {"type": "array", "items": ref(item)},
            "nextLink": {"type": "string", "nullable": True},
        },
    }
