"""kvault's CA where clients need it: the webhook configuration's caBundle (so the API server
trusts the webhook) and the ``kvault-ca`` ConfigMap in a pod's namespace (so the pod trusts
kvault). Both writes are idempotent, so every replica may do them."""

from __future__ import annotations

import base64
import logging
from typing import Any, Protocol

from kvault.controller.settings import CA_CONFIGMAP, FIELD_MANAGER, MANAGED_BY
from kvault.kube.client import JSON_PATCH
from kvault.kube.resources import CONFIGMAPS, MUTATING_WEBHOOK_CONFIGURATIONS

log = logging.getLogger(__name__)


class Kube(Protocol):
    async def get(self, path: str) -> dict[str, Any]: ...

    async def patch(
        self, path: str, body: list[Any], *, content_type: str = ...
    ) -> dict[str, Any]: ...

    async def apply(
        self, path: str, body: dict[str, Any], *, field_manager: str
    ) -> dict[str, Any]: ...


def ca_config_map(namespace: str, ca_pem: str) -> dict[str, Any]:
    """The same object the Vault controller publishes (same field manager: no conflict)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CA_CONFIGMAP,
            "namespace": namespace,
            "labels": {MANAGED_BY: FIELD_MANAGER},
        },
        "data": {"ca.crt": ca_pem},
    }


async def ensure_ca_config_map(kube: Kube, namespace: str, ca_pem: str) -> None:
    path = CONFIGMAPS.path(namespace, CA_CONFIGMAP)
    await kube.apply(path, ca_config_map(namespace, ca_pem), field_manager=FIELD_MANAGER)


async def patch_ca_bundle(kube: Kube, name: str, ca_pem: str) -> bool:
    """Set every webhook's ``clientConfig.caBundle`` of configuration ``name`` to kvault's CA;
    True when something changed (False: already right)."""
    path = MUTATING_WEBHOOK_CONFIGURATIONS.path(name=name)
    current = await kube.get(path)
    bundle = base64.b64encode(ca_pem.encode()).decode()
    ops: list[dict[str, Any]] = []
    for i, hook in enumerate(current.get("webhooks") or ()):
        if (hook.get("clientConfig") or {}).get("caBundle") != bundle:
            ops.append(
                {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": bundle}
            )
    if not ops:
        return False
    version = current["metadata"]["resourceVersion"]
    ops.insert(0, {"op": "test", "path": "/metadata/resourceVersion", "value": version})
    await kube.patch(path, ops, content_type=JSON_PATCH)
    log.info("caBundle of mutatingwebhookconfiguration %s set to kvault's CA", name)
    return True
