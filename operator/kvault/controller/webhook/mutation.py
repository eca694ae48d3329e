"""Pod + ServiceAccount -> JSONPatch (RFC 6902): pure, so every rule is unit-testable.

The pod label ``kvault.io/use: "true"`` is the switch; the ServiceAccount only supplies
values (``kvault.io/client-id``). Nothing the pod already sets is overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kvault.controller.settings import CA_CONFIGMAP

USE_LABEL = "kvault.io/use"
#: ServiceAccount annotation: the AZURE_CLIENT_ID to inject (default ``<ns>/<sa>``).
CLIENT_ID_ANNOTATION = "kvault.io/client-id"
#: Pod annotation: comma-separated container names to leave alone.
SKIP_CONTAINERS_ANNOTATION = "kvault.io/skip-containers"
TOKEN_VOLUME = "kvault-token"
CA_VOLUME = "kvault-ca"
TOKEN_DIR = "/var/run/secrets/kvault/serviceaccount"
TOKEN_PATH = "token"
CA_DIR = "/var/run/secrets/kvault/ca"
CA_KEY = "ca.crt"
AUDIENCE = "kvault"
TOKEN_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Injection:
    """What every labelled pod is told about kvault (from the operator's flags)."""

    authority_host: str  # https://<kvault service>.<kvault namespace>.svc
    tenant: str = "kvault"
    audience: str = AUDIENCE
    ca_configmap: str = CA_CONFIGMAP


def wanted(pod: Mapping[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return str(labels.get(USE_LABEL, "")).lower() == "true"


def client_id(namespace: str, sa_name: str, sa_annotations: Mapping[str, str]) -> str:
    return sa_annotations.get(CLIENT_ID_ANNOTATION) or f"{namespace}/{sa_name}"


def _env(inj: Injection, cid: str) -> list[dict[str, str]]:
    ca_file = f"{CA_DIR}/{CA_KEY}"
    return [
        {"name": "AZURE_CLIENT_ID", "value": cid},
        {"name": "AZURE_TENANT_ID", "value": inj.tenant},
        {"name": "AZURE_AUTHORITY_HOST", "value": inj.authority_host},
        {"name": "AZURE_FEDERATED_TOKEN_FILE", "value": f"{TOKEN_DIR}/{TOKEN_PATH}"},
        {"name": "REQUESTS_CA_BUNDLE", "value": ca_file},
        {"name": "SSL_CERT_FILE", "value": ca_file},
        {"name": "NODE_EXTRA_CA_CERTS", "value": ca_file},
    ]


def _volumes(inj: Injection) -> list[dict[str, Any]]:
    token = {
        "serviceAccountToken": {
            "audience": inj.audience,
            "expirationSeconds": TOKEN_SECONDS,
            "path": TOKEN_PATH,
        }
    }
    return [
        {"name": TOKEN_VOLUME, "projected": {"sources": [token], "defaultMode": 0o444}},
        {
            "name": CA_VOLUME,
            "configMap": {"name": inj.ca_configmap, "items": [{"key": CA_KEY, "path": CA_KEY}]},
        },
    ]


_MOUNTS = (
    {"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True},
    {"name": CA_VOLUME, "mountPath": CA_DIR, "readOnly": True},
)


def _container_ops(
    kind: str, index: int, container: Mapping[str, Any], env: Sequence[Mapping[str, str]]
) -> list[dict[str, Any]]:
    base = f"/spec/{kind}/{index}"
    ops: list[dict[str, Any]] = []
    have_env = {e.get("name") for e in container.get("env") or ()}
    add_env = [dict(e) for e in env if e["name"] not in have_env]
    if add_env:
        if "env" not in container:
            ops.append({"op": "add", "path": f"{base}/env", "value": add_env})
        else:
            ops += [{"op": "add", "path": f"{base}/env/-", "value": e} for e in add_env]
    mounts = container.get("volumeMounts") or ()
    taken = {m.get("name") for m in mounts} | {m.get("mountPath") for m in mounts}
    add_mounts = [
        dict(m) for m in _MOUNTS if m["name"] not in taken and m["mountPath"] not in taken
    ]
    if add_mounts:
        if "volumeMounts" not in container:
            ops.append({"op": "add", "path": f"{base}/volumeMounts", "value": add_mounts})
        else:
            ops += [{"op": "add", "path": f"{base}/volumeMounts/-", "value": m} for m in add_mounts]
    return ops


def patch(
    pod: Mapping[str, Any],
    namespace: str,
    sa_annotations: Mapping[str, str],
    inj: Injection,
) -> list[dict[str, Any]]:
    """The JSONPatch for ``pod`` (empty when it is not labelled or already has it all).

    Holds no secret: the token is projected by the kubelet, the CA is public."""
    if not wanted(pod):
        return []
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    sa_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    env = _env(inj, client_id(namespace, sa_name, sa_annotations))
    skip = {
        s.strip()
        for s in str((meta.get("annotations") or {}).get(SKIP_CONTAINERS_ANNOTATION, "")).split(",")
        if s.strip()
    }
    ops: list[dict[str, Any]] = []
    for kind in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(kind) or ()):
            if container.get("name") not in skip:
                ops += _container_ops(kind, i, container, env)
    have = {v.get("name") for v in spec.get("volumes") or ()}
    add_volumes = [v for v in _volumes(inj) if v["name"] not in have]
    if add_volumes and ops:
        if "volumes" not in spec:
            ops.append({"op": "add", "path": "/spec/volumes", "value": add_volumes})
        else:
            ops += [{"op": "add", "path": "/spec/volumes/-", "value": v} for v in add_volumes]
    return ops
