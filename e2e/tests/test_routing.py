"""The cluster routes like a real one: cluster DNS, ClusterIP and ExternalName Services
(from pods and from the host), and PersistentVolumeClaims on the default StorageClass."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from e2e import kube
from e2e.fixtures import Cluster
from e2e.layout import SERVICE_IP
from e2e.wait import wait_for

WEB_PAGE = "hello-from-web"
TIMEOUT = 90.0


@pytest.fixture
def other_namespace(kube_cluster: Cluster) -> Iterator[str]:
    """A second fresh namespace (the `namespace` fixture gives one per test)."""
    core = kube_cluster.core
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"kvault.io/e2e": "true"}}})
    try:
        wait_for(
            lambda: kube.get_or_none(core.read_namespaced_service_account, "default", name),
            60,
            f"ServiceAccount default in {name}",
        )
        yield name
    finally:
        kube.get_or_none(core.delete_namespace, name)


def _http_get(host: str, port: int) -> str:
    """What the busybox client does: a plain HTTP/1.0 GET with nc (busybox wget crashes)."""
    return f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} {port}"


def _retry(check: str, done: str) -> str:
    """Shell: repeat ``check`` until it passes (new Services take a moment), then say so."""
    return f"until {check}; do sleep 1; done; echo {done}"


def _start_web(core: client.CoreV1Api, ns: str) -> None:
    """busybox httpd behind Service `web` (port 80 -> 8080)."""
    script = f"mkdir -p /www && echo {WEB_PAGE} > /www/index.html && exec httpd -f -p 8080 -h /www"
    pod = kube.busybox_pod("web", script)
    pod["metadata"]["labels"] = {"app": "web"}
    core.create_namespaced_pod(ns, pod)
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    kube.wait_pod_running(core, ns, "web")


def test_pod_resolves_and_reaches_services_by_name(
    kube_cluster: Cluster, namespace: str, other_namespace: str
) -> None:
    core = kube_cluster.core
    _start_web(core, other_namespace)
    target = f"web.{other_namespace}.svc.cluster.local"
    core.create_namespaced_service(
        namespace,
        {"metadata": {"name": "alias"}, "spec": {"type": "ExternalName", "externalName": target}},
    )
    api = "kubernetes.default.svc.cluster.local"
    alias = f"alias.{namespace}.svc.cluster.local"
    steps = [
        f"until nslookup {api} | grep -q '^Address: '; do sleep 1; done",
        f"echo dns=$(nslookup {api} | awk '/^Address: /{{print $2}}')",
        "until echo | nc -w 2 kubernetes.default.svc 443; do sleep 1; done; echo api-tcp-ok",
        _retry(f"{_http_get(f'web.{other_namespace}.svc', 80)} | grep -q {WEB_PAGE}", "service-ok"),
        _retry(f"nslookup {alias} | grep -q 'canonical name = {target}'", "cname-ok"),
        _retry(f"{_http_get('alias', 80)} | grep -q {WEB_PAGE}", "alias-ok"),
        "cat /etc/resolv.conf",
        "ip route | sed 's/^/route: /'",
        "exec sleep 3600",
    ]
    core.create_namespaced_pod(namespace, kube.busybox_pod("client", "\n".join(steps)))
    kube.wait_pod_running(core, namespace, "client")
    for line in (f"dns={SERVICE_IP}", "api-tcp-ok", "service-ok", "cname-ok", "alias-ok"):
        kube.wait_log_line(core, namespace, "client", line, timeout=TIMEOUT)
    log = core.read_namespaced_pod_log("client", namespace)
    assert f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local" in log
    routes = [ln for ln in log.splitlines() if ln.startswith("route: ")]
    assert routes, log
    assert not [r for r in routes if r.startswith("route: default")], "pods must not egress"


def test_host_reaches_service_by_cluster_ip(kube_cluster: Cluster, namespace: str) -> None:
    if kube_cluster.existing:
        pytest.skip("only the local cluster's host routes ClusterIPs (kind's host does not)")
    core = kube_cluster.core
    _start_web(core, namespace)
    ip = core.read_namespaced_service("web", namespace).spec.cluster_ip

    def page() -> bool:
        with urllib.request.urlopen(f"http://{ip}/", timeout=2) as resp:
            return WEB_PAGE in resp.read().decode()

    wait_for(page, TIMEOUT, f"http://{ip}/ from the host")


def _pvc_pod(name: str, script: str) -> dict[str, Any]:
    return kube.busybox_pod(
        name,
        script,
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        mounts=[{"name": "data", "mountPath": "/data"}],
    )


def _pod_phase(core: client.CoreV1Api, ns: str, name: str) -> str | None:
    status = core.read_namespaced_pod(name, ns).status
    return status.phase if status else None


def test_claim_binds_on_default_class_keeps_data_and_is_removed(
    kube_cluster: Cluster, namespace: str
) -> None:
    core = kube_cluster.core
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Mi"}}}
    core.create_namespaced_persistent_volume_claim(
        namespace, {"metadata": {"name": "data"}, "spec": spec}
    )
    pvc = core.read_namespaced_persistent_volume_claim("data", namespace)
    assert pvc.spec.storage_class_name == "local-path", "no default StorageClass applied"

    core.create_namespaced_pod(namespace, _pvc_pod("writer", "echo kept > /data/file"))
    wait_for(
        lambda: _pod_phase(core, namespace, "writer") == "Succeeded", TIMEOUT, "writer pod done"
    )
    pvc = core.read_namespaced_persistent_volume_claim("data", namespace)
    assert pvc.status.phase == "Bound"
    pv = core.read_persistent_volume(pvc.spec.volume_name)
    source = pv.spec.host_path or pv.spec.local
    host_dir = Path(source.path)
    if not kube_cluster.existing:
        assert (host_dir / "file").read_text() == "kept\n"

    core.delete_namespaced_pod("writer", namespace)
    core.create_namespaced_pod(namespace, _pvc_pod("reader", "cat /data/file; sleep 3600"))
    kube.wait_log_line(core, namespace, "reader", "kept", timeout=TIMEOUT)

    core.delete_namespaced_pod("reader", namespace, grace_period_seconds=0)
    core.delete_namespaced_persistent_volume_claim("data", namespace)
    name = pv.metadata.name
    wait_for(
        lambda: kube.get_or_none(core.read_persistent_volume, name) is None,
        TIMEOUT,
        f"PersistentVolume {name} deleted",
    )
    if not kube_cluster.existing:
        wait_for(lambda: not host_dir.exists(), TIMEOUT, f"{host_dir} removed")
