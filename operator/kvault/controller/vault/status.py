"""A ``Vault``'s status: one ``Ready`` condition, its URL and item counts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kvault.controller.conditions import condition


def ready_status(
    body: Mapping[str, Any], ok: bool, reason: str, message: str, **extra: Any
) -> dict[str, Any]:
    meta, status = body["metadata"], body.get("status") or {}
    generation = meta.get("generation")
    return {
        "conditions": [
            condition(status.get("conditions"), "Ready", ok, reason, message, generation)
        ],
        "observedGeneration": generation,
        **extra,
    }
