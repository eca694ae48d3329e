"""Reading and writing objects by :class:`Resource`: the verbs the operator uses, with the
outcomes that are not failures (gone already, changed meanwhile) answered as values."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from kvault.kube.client import JSON_PATCH, KubeClient
from kvault.kube.errors import Conflict, Invalid, NotFound
from kvault.kube.resources import SERVICEACCOUNTS, Resource


async def get_or_none(kube: KubeClient, res: Resource, ns: str, name: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    try:
        return await kube.get(res.path(ns, name))
    except NotFound:
        return None


async def service_account(kube: KubeClient, ns: str, name: str) -> dict[str, Any] | None:
    """ServiceAccount ``ns/name``, or None: the identity a VaultSecret or a pod acts as."""
    return await get_or_none(kube, SERVICEACCOUNTS, ns, name)


async def delete_if_exists(
    kube: KubeClient, res: Resource, ns: str, name: str, uid: str | None = None
) -> bool:
    """Delete; with ``uid`` only that incarnation (a precondition). False if it was gone."""
    body = {"preconditions": {"uid": uid}} if uid else None
    try:
        await kube.delete(res.path(ns, name), body)
    except (NotFound, Conflict):
        return False
    return True


async def apply(
    kube: KubeClient, res: Resource, body: Mapping[str, Any], *, field_manager: str
) -> dict[str, Any]:
    """Server-side apply of ``body`` (its metadata names the object) as ``field_manager``."""
    meta = body["metadata"]
    return await kube.apply(
        res.path(meta.get("namespace"), meta["name"]), body, field_manager=field_manager
    )


async def merge_patch(
    kube: KubeClient, res: Resource, ns: str, name: str, patch: Mapping[str, Any]
) -> dict[str, Any]:
    return await kube.patch(res.path(ns, name), patch)


async def patch_status(
    kube: KubeClient, res: Resource, ns: str, name: str, status: Mapping[str, Any]
) -> None:
    """Merge ``status`` into the status subresource; an object deleted meanwhile is no error
    (there is nothing left to report on)."""
    with contextlib.suppress(NotFound):
        await kube.patch(res.path(ns, name, "status"), {"status": dict(status)})


async def add_finalizer(
    kube: KubeClient, res: Resource, body: Mapping[str, Any], final: str
) -> None:
    meta = body.get("metadata", {})
    if final in (meta.get("finalizers") or []):
        return
    ops: list[dict[str, Any]] = (
        [{"op": "add", "path": "/metadata/finalizers/-", "value": final}]
        if meta.get("finalizers")
        else [{"op": "add", "path": "/metadata/finalizers", "value": [final]}]
    )
    await kube.patch(res.path(meta["namespace"], meta["name"]), ops, content_type=JSON_PATCH)


async def remove_finalizer(
    kube: KubeClient, res: Resource, body: Mapping[str, Any], final: str
) -> None:
    """JSON patch with a test on the list, so a concurrent change is not overwritten."""
    meta = body.get("metadata", {})
    finalizers = list(meta.get("finalizers") or [])
    if final not in finalizers:
        return
    index = finalizers.index(final)
    ops = [
        {"op": "test", "path": f"/metadata/finalizers/{index}", "value": final},
        {"op": "remove", "path": f"/metadata/finalizers/{index}"},
    ]
    with contextlib.suppress(NotFound, Invalid):
        await kube.patch(res.path(meta["namespace"], meta["name"]), ops, content_type=JSON_PATCH)
