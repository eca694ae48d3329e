"""``POST /mutate``: AdmissionReview v1 in, AdmissionReview v1 out (a JSONPatch or nothing).

Our own failures answer HTTP 500, so the API server applies the configuration's
failurePolicy (Fail: the pod is refused with a message; Ignore: admitted unmutated); a
pod is never refused by a deliberate ``allowed: false`` of ours.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kvault.controller.webhook.cabundle import Kube, ensure_ca_config_map
from kvault.controller.webhook.mutation import Injection, patch, wanted
from kvault.kube.errors import NotFound
from kvault.kube.resources import SERVICEACCOUNTS

log = logging.getLogger(__name__)
REVIEW_API = "admission.k8s.io/v1"


@dataclass(frozen=True, slots=True)
class Webhook:
    kube: Kube
    injection: Injection
    ca_pem: str


WEBHOOK: web.AppKey[Webhook] = web.AppKey("webhook", Webhook)


def _answer(uid: str, ops: list[dict[str, Any]]) -> web.Response:
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if ops:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
    body = {"apiVersion": REVIEW_API, "kind": "AdmissionReview", "response": response}
    return web.json_response(body)


async def _sa_annotations(kube: Kube, namespace: str, name: str) -> dict[str, str]:
    try:
        sa = await kube.get(SERVICEACCOUNTS.path(namespace, name))
    except NotFound:
        return {}
    return dict((sa.get("metadata") or {}).get("annotations") or {})


async def mutate(request: web.Request) -> web.Response:
    try:
        review = await request.json()
        req = review["request"]
        uid = str(req["uid"])
    except (ValueError, KeyError, TypeError):
        return web.Response(status=400, text="expected an AdmissionReview v1")
    pod = req.get("object") or {}
    if (req.get("kind") or {}).get("kind") != "Pod" or not wanted(pod):
        return _answer(uid, [])
    hook = request.app[WEBHOOK]
    namespace = str(req.get("namespace") or (pod.get("metadata") or {}).get("namespace") or "")
    spec = pod.get("spec") or {}
    sa_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    try:
        annotations = await _sa_annotations(hook.kube, namespace, sa_name)
        if not req.get("dryRun"):  # sideEffects: NoneOnDryRun
            await ensure_ca_config_map(hook.kube, namespace, hook.ca_pem)
        ops = patch(pod, namespace, annotations, hook.injection)
    except Exception as exc:  # the API server applies failurePolicy
        log.warning("webhook could not mutate a pod in %s: %s", namespace, type(exc).__name__)
        return web.Response(status=500, text=f"kvault webhook: {type(exc).__name__}")
    log.info("webhook mutated a pod in %s (%d patch operations)", namespace, len(ops))
    return _answer(uid, ops)


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def webhook_app(hook: Webhook) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[WEBHOOK] = hook
    app.router.add_post("/mutate", mutate)
    app.router.add_get("/healthz", healthz)
    return app
