"""Rollout restarts of the workloads that use a Secret, when its content changes."""

from __future__ import annotations

from kvault.controller import metrics
from kvault.controller.conditions import now_iso
from kvault.controller.settings import ANN_RESTARTED
from kvault.controller.vaultsecret.plan import Plan
from kvault.kube import objects
from kvault.kube.client import KubeClient
from kvault.kube.resources import WORKLOADS


def hash_annotation(name: str) -> str:
    """The pod-template annotation holding the content hash a workload was restarted for."""
    return f"kvault.io/hash-{name}"[:63] if len(name) < 48 else "kvault.io/hash"


async def restart(kube: KubeClient, plan: Plan, digest: str) -> list[str]:
    """Like ``kubectl rollout restart``, once per content hash (the hash goes on the pod
    template too, so a crash and retry never restarts twice for one change)."""
    done = []
    key = hash_annotation(plan.name)
    for kind, name in plan.restarts:
        res = WORKLOADS.get(kind)
        if res is None:
            continue
        workload = await objects.get_or_none(kube, res, plan.namespace, name)
        if workload is None:
            continue
        tmeta = workload.get("spec", {}).get("template", {}).get("metadata") or {}
        if (tmeta.get("annotations") or {}).get(key) == digest:
            continue
        annotations = {ANN_RESTARTED: now_iso(), key: digest}
        patch = {"spec": {"template": {"metadata": {"annotations": annotations}}}}
        await objects.merge_patch(kube, res, plan.namespace, name, patch)
        metrics.RESTARTS.inc()
        done.append(f"{kind}/{name}")
    return done
