"""The projected Kubernetes Secret: written by server-side apply (skipped when unchanged),
dropped when the identity loses access, released when the VaultSecret goes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from kvault.controller import metrics
from kvault.controller.owners import owned_by
from kvault.controller.settings import ANN_HASH, ANN_OWNER, FIELD_MANAGER, MANAGED_BY
from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import Plan
from kvault.controller.vaultsecret.values import Value
from kvault.kube import objects
from kvault.kube.client import KubeClient
from kvault.kube.resources import SECRETS


def encode(data: Mapping[str, str | bytes]) -> dict[str, str]:
    """Values (text as UTF-8, or bytes) as a Secret's ``data`` (base64)."""
    return {
        k: base64.b64encode(v.encode() if isinstance(v, str) else v).decode()
        for k, v in data.items()
    }


def settle(data: Mapping[str, Value], current: Mapping[str, Any] | None) -> dict[str, str | bytes]:
    """The data to write: text as it is, each binary value as the bytes it settles on given
    what the ``current`` Secret holds under its key (the same bytes when they still hold its
    content: see :class:`~.values.Binary`)."""
    have = (current or {}).get("data") or {}
    out: dict[str, str | bytes] = {}
    for key, value in data.items():
        if isinstance(value, str):
            out[key] = value
            continue
        try:
            previous = base64.b64decode(have[key], validate=True) if have.get(key) else None
        except (binascii.Error, TypeError, ValueError):
            previous = None
        out[key] = value.settle(previous)
    return out


def fingerprint(data: Mapping[str, Any], keys: Iterable[str]) -> str:
    """Which values a Secret holds for ``keys`` (a digest kept in memory only)."""
    chosen = {k: data.get(k) for k in sorted(keys)}
    return hashlib.sha256(json.dumps(chosen).encode()).hexdigest()


def ours(secret: Mapping[str, Any] | None, plan: Plan) -> bool:
    """Labelled as managed by kvault for this VaultSecret."""
    if secret is None:
        return False
    meta = secret.get("metadata", {})
    return (meta.get("annotations") or {}).get(ANN_OWNER) == plan.name and (
        meta.get("labels") or {}
    ).get(MANAGED_BY) == FIELD_MANAGER


def owned(secret: Mapping[str, Any] | None, plan: Plan) -> bool:
    """Owned (ownerReference) by this incarnation of the VaultSecret."""
    if secret is None:
        return False
    refs = secret.get("metadata", {}).get("ownerReferences") or ()
    return any(r.get("uid") == plan.uid for r in refs)


async def existing(kube: KubeClient, plan: Plan) -> dict[str, Any] | None:
    return await objects.get_or_none(kube, SECRETS, plan.namespace, plan.target)


def manifest(plan: Plan, encoded: Mapping[str, str], digest: str) -> dict[str, Any]:
    """The fields kvault owns in the Secret (the full intent of a server-side apply)."""
    meta: dict[str, Any] = {
        "name": plan.target,
        "namespace": plan.namespace,
        "labels": {**plan.labels, MANAGED_BY: FIELD_MANAGER},
        "annotations": {**plan.annotations, ANN_HASH: digest, ANN_OWNER: plan.name},
    }
    if plan.creation == "Owner":
        meta["ownerReferences"] = owned_by("VaultSecret", plan.name, plan.uid)
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": meta}
    body["data"] = dict(encoded)
    if plan.creation != "Merge":
        body["type"] = plan.type
    return body


async def write(
    kube: KubeClient,
    plan: Plan,
    encoded: Mapping[str, str],
    digest: str,
    current: Mapping[str, Any] | None,
) -> bool:
    """Apply the Secret unless it already holds this content; True when written."""
    if current is not None:
        if plan.creation != "Merge" and not ours(current, plan):
            raise Refused(
                "Error",
                f"Secret {plan.namespace}/{plan.target} exists and is not managed by this "
                "VaultSecret; use creationPolicy Merge to add keys to it",
                drop=False,
            )
        have = current.get("data") or {}
        annotations = current.get("metadata", {}).get("annotations") or {}
        if annotations.get(ANN_HASH) == digest and all(
            have.get(k) == v for k, v in encoded.items()
        ):
            return False
    elif plan.creation == "Merge":
        raise Refused(
            "Error",
            f"Secret {plan.namespace}/{plan.target} does not exist; creationPolicy Merge "
            "only adds keys to an existing Secret",
            drop=False,
        )
    await objects.apply(kube, SECRETS, manifest(plan, encoded, digest), field_manager=FIELD_MANAGER)
    metrics.WRITES.inc()
    return True


async def drop(kube: KubeClient, plan: Plan) -> bool:
    """Remove a Secret we own, so a refused identity keeps nothing it projected before."""
    current = await existing(kube, plan)
    if current is not None and ours(current, plan) and owned(current, plan):
        uid = current["metadata"]["uid"]
        return await objects.delete_if_exists(kube, SECRETS, plan.namespace, plan.target, uid)
    return False


async def delete(kube: KubeClient, plan: Plan, current: Mapping[str, Any]) -> None:
    """Delete that incarnation of the Secret (a newer one of the same name stays)."""
    uid = current["metadata"]["uid"]
    await objects.delete_if_exists(kube, SECRETS, plan.namespace, plan.target, uid)


async def release(kube: KubeClient, plan: Plan, *, keep_data: bool = True) -> None:
    """Give up our fields: with ``keep_data`` the data stays as the Secret's own (we
    re-apply without owner reference first, then a bare apply releases ownership)."""
    current = await existing(kube, plan)
    if current is None:
        return
    bare = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": plan.target, "namespace": plan.namespace},
    }
    if keep_data:
        # Hand the data to a separate manager so that releasing ours keeps it.
        kept = {**bare, "data": current.get("data") or {}}
        await objects.apply(kube, SECRETS, kept, field_manager="kvault-retained")
    await objects.apply(kube, SECRETS, bare, field_manager=FIELD_MANAGER)
