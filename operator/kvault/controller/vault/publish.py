"""What clients of a vault need in its namespace: a Service named like the Vault (its URL's
host) and kvault's CA in ConfigMap ``kvault-ca``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kvault.controller.owners import owned_by
from kvault.controller.settings import FIELD_MANAGER, MANAGED_BY, Options
from kvault.controller.webhook.cabundle import ca_config_map
from kvault.kube import objects
from kvault.kube.client import KubeClient
from kvault.kube.resources import CONFIGMAPS, SERVICES


def service(body: Mapping[str, Any], options: Options) -> dict[str, Any]:
    """An alias of kvault's own Service (ExternalName) or a selector of kvault's pods."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {MANAGED_BY: FIELD_MANAGER, "kvault.io/vault": name},
            "ownerReferences": owned_by("Vault", name, meta["uid"]),
        },
        "spec": {
            **(
                {"type": "ExternalName", "externalName": options.service_target}
                if options.service_target
                else {"selector": dict(options.service_selector)}
            ),
            "ports": [
                {"name": "https", "port": 443, "targetPort": options.data_port, "protocol": "TCP"}
            ],
        },
    }


async def publish(kube: KubeClient, body: Mapping[str, Any], options: Options) -> None:
    await objects.apply(kube, SERVICES, service(body, options), field_manager=FIELD_MANAGER)
    if options.ca_pem:
        config_map = ca_config_map(body["metadata"]["namespace"], options.ca_pem)
        await objects.apply(kube, CONFIGMAPS, config_map, field_manager=FIELD_MANAGER)
