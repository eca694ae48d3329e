"""The ownerReference that lets garbage collection remove what a resource of ours created."""

from __future__ import annotations

from typing import Any

from kvault.controller.settings import API_VERSION


def owned_by(kind: str, name: str, uid: str) -> list[dict[str, Any]]:
    """``metadata.ownerReferences`` naming our ``kind`` ``name`` (``uid``) as the controller."""
    return [
        {
            "apiVersion": API_VERSION,
            "kind": kind,
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
