"""kvault installed by ``helm install`` and running as a Pod on the test cluster.

The user's path, end to end: the image built from Debian packages (``e2e.image``) and
imported into the node's containerd, the CRDs applied, the chart installed with Helm, the
operator Pod Ready. The handle it returns looks like the host-process ``Operator`` of
``e2e.operator_harness`` (endpoint, CA file, data directory, logs, metrics URL), so the same
scenarios run against either.

From the host the tests reach the data plane through the ``kvault`` Service's ClusterIP
(kube-proxy routes it), with the vault's name as Host/SNI, and read the data directory on
the PersistentVolume's host path (local-path provisioner) for the plaintext scans.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from e2e import kube, versions
from e2e.crds import ROOT, apply_crds
from e2e.fixtures import Cluster
from e2e.wait import wait_for

CHART = ROOT / "charts" / "kvault"
#: Namespaces the in-cluster operator of the test session watches (kopf glob); the host-
#: process operators of other tests watch their own ``e2e-*`` namespaces, so they never meet.
WATCH_PREFIX = "kvic-"
READY_TIMEOUT = 180.0


def helm_binary() -> Path:
    """The Helm built from its Go module (``make install`` provides it)."""
    from e2e import tools

    return tools.ensure("helm")


def helm(kubeconfig: str, *args: str, timeout: float = 300) -> str:
    """Run helm against the test cluster; raise with its output when it fails."""
    env = {**os.environ, "KUBECONFIG": kubeconfig, "HELM_CACHE_HOME": _helm_home("cache")}
    env.update(HELM_CONFIG_HOME=_helm_home("config"), HELM_DATA_HOME=_helm_home("data"))
    res = subprocess.run(
        [str(helm_binary()), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args[:3])} failed:\n{res.stdout}\n{res.stderr}")
    return res.stdout


def _helm_home(kind: str) -> str:
    """Helm's own state under our cache, never the user's ~/.config/helm."""
    path = versions.cache_root() / "helm-home" / kind
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def ensure_image(cluster: Cluster) -> str:
    """Build (cached by input hash) and import the operator image; return its tag."""
    from e2e import image

    built = image.ensure_image("operator")
    if cluster.layout is not None:
        image.import_image(built, str(cluster.layout.containerd_sock))
    return built.tag


@dataclass
class Release:
    """A Helm release of charts/kvault and the handle the scenarios use."""

    cluster: Cluster
    name: str
    namespace: str
    values: dict[str, Any]
    install_seconds: float = 0.0
    env: dict[str, str] = field(default_factory=dict)
    ca_file: str = ""
    data_dir: Path = Path()
    _logs: list[str] = field(default_factory=list)

    @property
    def fullname(self) -> str:
        return self.name if "kvault" in self.name else f"{self.name}-kvault"

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/name=kvault,app.kubernetes.io/instance={self.name}"

    @property
    def endpoint(self) -> str:
        return self.env["KVAULT_ENDPOINT"]

    def pods(self) -> list[client.V1Pod]:
        items = self.cluster.core.list_namespaced_pod(
            self.namespace, label_selector=self.selector
        ).items
        return [p for p in items if p.metadata.deletion_timestamp is None]

    def ready_pod(self) -> client.V1Pod | None:
        for pod in self.pods():
            conds = {c.type: c.status for c in (pod.status.conditions or [])}
            if conds.get("Ready") == "True":
                return pod
        return None

    def alive(self) -> bool:
        return self.ready_pod() is not None

    def text(self) -> str:
        """Logs of every operator Pod seen so far (kept across Pod deletions)."""
        self.remember_logs()
        return "".join(self._logs)

    def remember_logs(self) -> None:
        for pod in self.pods():
            log = kube.get_or_none(
                self.cluster.core.read_namespaced_pod_log, pod.metadata.name, self.namespace
            )
            if log:
                self._logs.append(f"--- {pod.metadata.name}\n{log}")

    def refresh(self) -> None:
        """Endpoint (Service ClusterIP), CA and data dir (the PV's host path), metrics URL."""
        core = self.cluster.core
        svc = core.read_namespaced_service(self.fullname, self.namespace)
        port = next(p.port for p in svc.spec.ports if p.name == "https")
        self.env["KVAULT_ENDPOINT"] = f"https://{svc.spec.cluster_ip}:{port}"
        pod = self.ready_pod()
        assert pod is not None, "no Ready operator pod"
        self.env["KVAULT_METRICS"] = f"http://{pod.status.pod_ip}:9090/metrics"
        self.data_dir = pv_host_path(self.cluster, self.namespace, f"{self.fullname}-data")
        # The CA as a user gets it: the kvault-ca ConfigMap the operator publishes.
        ca = core.read_namespaced_config_map("kvault-ca", self.namespace).data["ca.crt"]
        ca_file = versions.cache_root() / "incluster" / f"{self.namespace}-{self.name}-ca.crt"
        ca_file.parent.mkdir(parents=True, exist_ok=True)
        ca_file.write_text(ca)
        self.ca_file = str(ca_file)
        self.env["KVAULT_CA_FILE"] = self.ca_file

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> client.V1Pod:
        """The Deployment rolled out, a Pod Ready and leading (it holds the Lease)."""
        apps = client.AppsV1Api(self.cluster.api)

        def rolled() -> client.V1Pod | None:
            dep = apps.read_namespaced_deployment(self.fullname, self.namespace)
            st = dep.status
            done = (
                st.observed_generation == dep.metadata.generation
                and (st.updated_replicas or 0) == dep.spec.replicas
                and (st.ready_replicas or 0) == dep.spec.replicas
                and (st.replicas or 0) == dep.spec.replicas
            )
            return self.ready_pod() if done else None

        pod: client.V1Pod = wait_for(rolled, timeout, f"{self.namespace}/{self.fullname} rolled")
        wait_for(self._leading, timeout, "the operator Pod to hold its Lease")
        wait_for(
            lambda: kube.get_or_none(
                self.cluster.core.read_namespaced_config_map, "kvault-ca", self.namespace
            ),
            timeout,
            "the operator to publish ConfigMap kvault-ca",
        )
        self.refresh()
        # Ready Pod != reachable Service: kube-proxy programs the ClusterIP a moment later.
        wait_for(self._answers, timeout, f"{self.endpoint}/healthz through the Service")
        return pod

    def _answers(self) -> bool:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.check_hostname = False  # the certificate names the Service's DNS names, not its IP
        try:
            with urllib.request.urlopen(f"{self.endpoint}/healthz", context=ctx, timeout=5) as r:
                return bool(r.status == 200)
        except OSError:  # refused / reset until the rules are in place
            return False

    def _leading(self) -> bool:
        pod = self.ready_pod()
        if pod is None:
            return False
        coordination = client.CoordinationV1Api(self.cluster.api)
        lease = kube.get_or_none(
            coordination.read_namespaced_lease, "kvault-operator", self.namespace
        )
        holder = lease.spec.holder_identity if lease is not None else None
        return bool(holder and holder.startswith(pod.metadata.name))


def pv_host_path(cluster: Cluster, ns: str, claim: str) -> Path:
    """Host directory of a bound claim's PersistentVolume (local-path provisioner)."""
    pvc = cluster.core.read_namespaced_persistent_volume_claim(claim, ns)
    pv = cluster.core.read_persistent_volume(pvc.spec.volume_name)
    source = pv.spec.host_path or pv.spec.local
    return Path(source.path)


#: Seconds: the shortest certificate validity the session's operator accepts (dev only).
DEV_VALIDITY_FLOOR = 30


def base_values(tag: str, watch: Sequence[str] = (f"{WATCH_PREFIX}*",)) -> dict[str, Any]:
    """What the tests change from the chart's defaults: this build's tag, the watched
    namespaces, and the dev-only certificate validity floor (so a renewal can be watched on
    real time); everything else is the default a user gets."""
    return {
        "image": {"tag": tag},
        "operator": {
            "watchNamespaces": list(watch),
            "dev": {"certificateValidityFloorSeconds": DEV_VALIDITY_FLOOR},
        },
    }


def install(
    cluster: Cluster, name: str, namespace: str, values: dict[str, Any], *extra: str
) -> Release:
    """``helm upgrade --install`` (idempotent) and wait until the operator leads."""
    apply_crds(cluster.api)
    rel = Release(cluster, name, namespace, values)
    started = time.monotonic()
    _helm_with_values(cluster, values, "upgrade", "--install", name, str(CHART), "-n", namespace,
                      "--create-namespace", *extra)  # fmt: skip
    rel.wait_ready()
    rel.install_seconds = time.monotonic() - started
    return rel


def upgrade(rel: Release, values: dict[str, Any]) -> None:
    _helm_with_values(rel.cluster, values, "upgrade", rel.name, str(CHART), "-n", rel.namespace)
    rel.values = values
    rel.wait_ready()


def _helm_with_values(cluster: Cluster, values: dict[str, Any], *args: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(values, f)
        f.flush()
        return helm(cluster.kubeconfig, *args, "-f", f.name)


def uninstall(rel: Release) -> None:
    rel.remember_logs()
    helm(rel.cluster.kubeconfig, "uninstall", rel.name, "-n", rel.namespace, "--wait")


def releases(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    out = helm(cluster.kubeconfig, "list", "-n", namespace, "-o", "json")
    found: list[dict[str, Any]] = json.loads(out or "[]")
    return found


def session_release(cluster: Cluster) -> Iterator[Release]:
    """The test session's release (``kvault`` in ``kvault-e2e``), removed at the end with
    its claim, so every session starts from an empty vault store."""
    tag = ensure_image(cluster)
    rel = install(cluster, "kvault", "kvault-e2e", base_values(tag))
    print(f"helm install -> operator Ready and leading: {rel.install_seconds:.1f} s")
    try:
        yield rel
    finally:
        if reachable(cluster):  # else a teardown test took the cluster, release and all
            remove(rel)


def reachable(cluster: Cluster) -> bool:
    try:
        client.VersionApi(cluster.api).get_code(_request_timeout=5)
    except Exception:  # connection refused, TLS to a new CA, ...: not the cluster we used
        return False
    return True


def remove(rel: Release) -> None:
    """Uninstall (if still installed), then delete what the chart keeps (the claim) and the
    namespace."""
    if any(r["name"] == rel.name for r in releases(rel.cluster, rel.namespace)):
        uninstall(rel)
    core = rel.cluster.core
    kube.get_or_none(
        core.delete_namespaced_persistent_volume_claim, f"{rel.fullname}-data", rel.namespace
    )
    kube.get_or_none(core.delete_namespace, rel.namespace)
