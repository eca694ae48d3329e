"""Cluster objects the node tier's host daemons need, applied by ``up`` (kubectl apply).

A real cluster gets these from its installer: the kube-dns Service, RBAC for CoreDNS and
the local-path provisioner (their client certificates come from e2e/pki.py), the
provisioner's namespace and ConfigMap, and the default StorageClass.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from e2e import versions
from e2e.layout import BRIDGE_IP, DNS_SERVICE_IP, LOCAL_PATH_NAMESPACE, STORAGE_CLASS, Layout

PROVISIONER = "rancher.io/local-path"
LOCAL_PATH_CONFIGMAP = "local-path-config"
_RBAC = "rbac.authorization.k8s.io"


def _cluster_role(name: str, user: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": rules,
        },
        {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": _RBAC, "kind": "User", "name": user}],
        },
    ]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def dns_objects() -> list[dict[str, Any]]:
    """RBAC for CoreDNS and kube-system/kube-dns: fixed ClusterIP, endpoint on the bridge."""
    ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    ]
    rbac = _cluster_role(
        "kvault-e2e:coredns",
        "system:kvault:coredns",
        [
            _rule([""], ["endpoints", "services", "pods", "namespaces"], ["list", "watch"]),
            _rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),
        ],
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
        },
        "spec": {"clusterIP": DNS_SERVICE_IP, "ports": [{**p, "targetPort": 53} for p in ports]},
    }
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kube-dns-host",
            "namespace": "kube-system",
            "labels": {
                "kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": "kvault-e2e",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [BRIDGE_IP], "conditions": {"ready": True}}],
        "ports": ports,
    }
    return [*rbac, service, slice_]


#: v0.0.30 takes the helper image from this template (its --helper-image flag is unused):
#: our pre-imported busybox, with a non-latest tag so IfNotPresent never pulls.
HELPER_POD = f"""apiVersion: v1
kind: Pod
metadata:
  name: helper-pod
spec:
  priorityClassName: system-node-critical
  containers:
  - name: helper-pod
    image: {versions.BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
"""


def storage_objects() -> list[dict[str, Any]]:
    """Namespace, ConfigMap (scripts + helper pod), RBAC and the default StorageClass."""
    rbac = _cluster_role(
        "kvault-e2e:local-path-provisioner",
        "system:kvault:local-path-provisioner",
        [
            _rule(
                [""], ["nodes", "persistentvolumeclaims", "configmaps"], ["get", "list", "watch"]
            ),
            _rule([""], ["pods", "pods/log"], ["get", "list", "watch", "create", "delete"]),
            _rule(
                [""],
                ["persistentvolumes"],
                ["get", "list", "watch", "create", "patch", "update", "delete"],
            ),
            _rule([""], ["events"], ["create", "patch"]),
            _rule(["storage.k8s.io"], ["storageclasses"], ["get", "list", "watch"]),
        ],
    )
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LOCAL_PATH_NAMESPACE}},
        *rbac,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": LOCAL_PATH_CONFIGMAP, "namespace": LOCAL_PATH_NAMESPACE},
            "data": {
                "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
                "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
                "helperPod.yaml": HELPER_POD,
            },
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": PROVISIONER,
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete",
        },
    ]


def manifest() -> str:
    """Every addon object as one multi-document YAML."""
    return yaml.safe_dump_all([*dns_objects(), *storage_objects()], sort_keys=False)


def apply(bin_dir: Path, lay: Layout) -> None:
    """Server-side apply of the addons as admin (idempotent)."""
    path = lay.etc / "addons.yaml"
    path.write_text(manifest())
    kubectl = str(bin_dir / "kubectl")
    argv = [kubectl, f"--kubeconfig={lay.kubeconfig}", "apply", "--server-side"]
    res = subprocess.run(
        [*argv, "--field-manager=kvault-e2e", "-f", str(path)], capture_output=True, text=True
    )
    if res.returncode != 0:
        raise RuntimeError(f"applying {path} failed: {res.stderr.strip()}")
