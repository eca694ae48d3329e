"""Status conditions in the Kubernetes shape; a transition time moves only on a change."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any


def now_iso(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at))


def condition(
    previous: Iterable[Mapping[str, Any]] | None,
    type_: str,
    ok: bool,
    reason: str,
    message: str,
    generation: int | None,
) -> dict[str, Any]:
    """One condition; keeps ``lastTransitionTime`` if the status did not flip."""
    status = "True" if ok else "False"
    since = now_iso()
    for old in previous or ():
        if old.get("type") == type_ and old.get("status") == status:
            since = str(old.get("lastTransitionTime") or since)
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message[:1024],
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def reason_of(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> str | None:
    for c in conditions or ():
        if c.get("type") == type_:
            return str(c.get("reason"))
    return None
