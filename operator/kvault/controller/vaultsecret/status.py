"""A VaultSecret's status: ``Ready`` and ``Synced`` conditions with one reason, what was
projected (versions, a content hash, never content), and whether a write is worth it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kvault.controller.conditions import condition
from kvault.controller.vaultsecret.plan import Plan

_VOLATILE = ("lastSyncTime", "lastTransitionTime")


def status(
    body: Mapping[str, Any], plan: Plan, ok: bool, reason: str, message: str, **extra: Any
) -> dict[str, Any]:
    old = (body.get("status") or {}).get("conditions")
    return {
        "conditions": [
            condition(old, "Ready", ok, reason, message, plan.generation),
            condition(old, "Synced", ok, reason, message, plan.generation),
        ],
        "observedGeneration": plan.generation,
        **extra,
    }


def certificates_status(previous: Mapping[str, Any], facts: list[dict[str, Any]]) -> dict[str, Any]:
    """``certificates``: one entry per ``Certificate`` data entry (``secretKey``, ``name``,
    ``version``, ``serialNumber``, ``notAfter``, ``renewsAt`` when the vault renews it), never
    material. A list, so a merge patch replaces it whole; ``None`` removes one that is no
    longer true, and nothing is said when there was none."""
    if facts:
        return {"certificates": facts}
    return {"certificates": None} if previous.get("certificates") else {}


def stable(status: Mapping[str, Any]) -> str:
    """The status without its timestamps: equal means there is nothing new to write."""

    def strip(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: strip(v) for k, v in value.items() if k not in _VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(status), sort_keys=True)
