"""Run ``kvault operator`` as a real subprocess against the test cluster, and small helpers
for the operator tests: CRDs, custom objects, the data plane as an admin ServiceAccount.

Every wait polls with a deadline or follows a watch; nothing sleeps to wait.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from e2e import kube
from e2e.crds import apply_crds
from e2e.fixtures import Cluster
from e2e.wait import wait_for
from kvault.cli.client import DataPlane, Endpoint
from tests.fixtures.devserver import start_server

GROUP, VERSION = "kvault.io", "v1alpha1"
SU = "Key Vault Secrets User"
ADMIN = "Key Vault Administrator"


@dataclass
class Operator:
    process: subprocess.Popen[str]
    env: dict[str, str]
    output: list[str] = field(default_factory=list)
    data_dir: Path = Path()
    cluster: Cluster | None = None
    lease: tuple[str, str] = ("", "")  # namespace, name

    @property
    def endpoint(self) -> str:
        return self.env["KVAULT_ENDPOINT"]

    @property
    def ca_file(self) -> str:
        return self.env["KVAULT_CA_FILE"]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM (then SIGKILL) and remove its Lease, so tests leave nothing behind."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.cluster is not None and self.lease[1]:
            coordination = client.CoordinationV1Api(self.cluster.api)
            kube.get_or_none(coordination.delete_namespaced_lease, self.lease[1], self.lease[0])

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def text(self) -> str:
        return "".join(self.output)


def start_operator(
    cluster: Cluster,
    data_dir: Path,
    namespaces: Sequence[str],
    *,
    lease_name: str | None = None,
    lease_duration: float = 15.0,
    env: dict[str, str] | None = None,
    extra: Sequence[str] = (),
    lease_namespace: str = "default",
) -> Operator:
    """Start the operator (data plane on a free port) and wait for its ready lines."""
    lease = lease_name or f"kvault-{uuid.uuid4().hex[:8]}"
    args = [
        "operator",
        "--data-dir",
        str(data_dir),
        "--kubeconfig",
        cluster.kubeconfig,
        "--port",
        "0",
        "--metrics-port",
        "0",
        "--lease-namespace",
        lease_namespace,
        "--lease-name",
        lease,
        "--lease-duration",
        str(lease_duration),
        *[a for ns in namespaces for a in ("--namespace", ns)],
        *extra,
    ]
    keys = ("KVAULT_ENDPOINT", "KVAULT_CA_FILE", "KVAULT_METRICS")
    started = start_server(args, data_dir, keys, env)
    return Operator(
        started.process, started.env, started.output, data_dir, cluster, (lease_namespace, lease)
    )


def install_crds(cluster: Cluster) -> None:
    apply_crds(cluster.api)


def custom(cluster: Cluster) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(cluster.api)


def create(
    cluster: Cluster, ns: str, plural: str, kind: str, name: str, spec: dict[str, Any]
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }
    custom(cluster).create_namespaced_custom_object(GROUP, VERSION, ns, plural, body)


def get(cluster: Cluster, ns: str, plural: str, name: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = kube.get_or_none(
        custom(cluster).get_namespaced_custom_object, GROUP, VERSION, ns, plural, name
    )
    return found


def delete(cluster: Cluster, ns: str, plural: str, name: str) -> None:
    kube.get_or_none(
        custom(cluster).delete_namespaced_custom_object, GROUP, VERSION, ns, plural, name
    )


def condition(obj: dict[str, Any] | None, type_: str = "Ready") -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or ():
        if c.get("type") == type_:
            return dict(c)
    return {}


def wait_condition(
    cluster: Cluster,
    ns: str,
    plural: str,
    name: str,
    status: str,
    reason: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get(cluster, ns, plural, name)
        c = condition(obj)
        gen = (obj or {}).get("metadata", {}).get("generation")
        if (
            c.get("status") == status
            and (reason is None or c.get("reason") == reason)
            and c.get("observedGeneration") == gen
        ):
            return obj
        return None

    return wait_for(check, timeout, f"{plural} {ns}/{name} Ready={status} {reason or ''}")


def secret_data(cluster: Cluster, ns: str, name: str) -> dict[str, str] | None:
    import base64

    secret = kube.get_or_none(cluster.core.read_namespaced_secret, name, ns)
    if secret is None:
        return None
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def admin_token(cluster: Cluster, ns: str, sa: str = "admin") -> str:
    """A TokenRequest (audience kvault) for ``ns/sa`` (created if missing)."""
    if kube.get_or_none(cluster.core.read_namespaced_service_account, sa, ns) is None:
        cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": sa}})
    spec = {"audiences": ["kvault"], "expirationSeconds": 3600}
    resp = cluster.core.create_namespaced_service_account_token(sa, ns, {"spec": spec})
    return str(resp.status.token)


def data_plane(op: Operator, token: str, vault: str, ns: str) -> DataPlane:
    return DataPlane(Endpoint(op.endpoint, token, op.ca_file, f"{vault}.{ns}.svc"))


def set_secret(plane: DataPlane, name: str, value: str, **extra: Any) -> str:
    doc = plane.request("PUT", f"/secrets/{name}", {"value": value, **extra})
    return str(doc["id"]).rstrip("/").rsplit("/", 1)[-1]


def watch_secret_change(
    cluster: Cluster,
    ns: str,
    name: str,
    key: str,
    expected: str,
    action: Callable[[], None],
    timeout: float = 10.0,
) -> float:
    """Start a watch on the Secret, run ``action``, return seconds until ``key`` holds
    ``expected`` (base64-decoded) as seen by the watch."""
    import base64

    secret = cluster.core.read_namespaced_secret(name, ns)
    rv = secret.metadata.resource_version
    w = watch.Watch()
    stream: Iterator[dict[str, Any]] = w.stream(
        cluster.core.list_namespaced_secret,
        ns,
        field_selector=f"metadata.name={name}",
        resource_version=rv,
        timeout_seconds=int(timeout) + 1,
    )
    started = time.monotonic()
    action()
    try:
        for event in stream:
            obj = event["object"]
            value = (obj.data or {}).get(key)
            if value is not None and base64.b64decode(value).decode() == expected:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                break
    finally:
        w.stop()
    raise AssertionError(f"Secret {ns}/{name} did not get the new {key} within {timeout}s")


def vault_spec(roles: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"sku": "standard", "softDeleteRetentionInDays": 7, "roleAssignments": roles, **extra}


def sa_role(name: str, role: str, scope: str = "/", namespace: str | None = None) -> dict[str, Any]:
    sa: dict[str, Any] = {"name": name}
    if namespace:
        sa["namespace"] = namespace
    return {"principal": {"serviceAccount": sa}, "role": role, "scope": scope}


def make_namespace(cluster: Cluster, prefix: str = "e2e-") -> str:
    """A fresh namespace (besides the fixture's); the caller deletes it."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    meta = client.V1ObjectMeta(name=name, labels={"kvault.io/e2e": "true"})
    cluster.core.create_namespace(client.V1Namespace(metadata=meta))
    wait_for(
        lambda: kube.get_or_none(cluster.core.read_namespaced_service_account, "default", name),
        60,
        f"ServiceAccount default in {name}",
    )
    return name


def provision_vault(
    cluster: Cluster, ns: str, name: str, roles: list[dict[str, Any]]
) -> dict[str, Any]:
    """Create a Vault and wait until the operator provisioned it."""
    create(cluster, ns, "vaults", "Vault", name, vault_spec(roles))
    return wait_condition(cluster, ns, "vaults", name, "True", "Provisioned")


def deployment(cluster: Cluster, ns: str, name: str) -> None:
    """A one-replica busybox Deployment (a workload a VaultSecret can roll)."""
    pod = kube.busybox_pod(name, "sleep 3600")
    spec = pod["spec"]
    spec["restartPolicy"] = "Always"
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }
    client.AppsV1Api(cluster.api).create_namespaced_deployment(ns, body)


def restart_hash(
    cluster: Cluster, ns: str, name: str, vaultsecret: str = "app"
) -> tuple[int, str | None]:
    """The Deployment's generation and the content hash of the last rollout restart that the
    VaultSecret ``vaultsecret`` made."""
    dep = client.AppsV1Api(cluster.api).read_namespaced_deployment(name, ns)
    annotations = dep.spec.template.metadata.annotations or {}
    return dep.metadata.generation, annotations.get(f"kvault.io/hash-{vaultsecret}")


def events(cluster: Cluster, ns: str, name: str | None = None) -> list[Any]:
    items = cluster.core.list_namespaced_event(ns).items
    return [e for e in items if name is None or e.involved_object.name == name]


def wait_gone(cluster: Cluster, ns: str, plural: str, name: str, timeout: float = 30) -> None:
    wait_for(lambda: get(cluster, ns, plural, name) is None, timeout, f"{plural} {ns}/{name} gone")


def release(cluster: Cluster, namespaces: Sequence[str]) -> None:
    """After the operator stopped: drop its finalizers from our objects in ``namespaces``, so
    deleting the test's namespaces never waits for an operator that is gone."""
    api = custom(cluster)
    for ns in namespaces:
        for plural in ("vaultsecrets", "vaults"):
            listed = kube.get_or_none(api.list_namespaced_custom_object, GROUP, VERSION, ns, plural)
            for obj in (listed or {}).get("items", []):
                if obj["metadata"].get("finalizers"):
                    kube.get_or_none(
                        api.patch_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        ns,
                        plural,
                        obj["metadata"]["name"],
                        {"metadata": {"finalizers": None}},
                    )
