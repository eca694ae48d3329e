"""kvault installed the way users install it: ``helm install``, the operator as a Pod.

What a platform engineer checks after ``helm install``: the Pod runs as the chart says,
its claim binds on the default StorageClass, ``helm test`` passes; a workload labelled
``kvault.io/use: "true"`` reads with unmodified Azure SDK code; deleting the operator Pod
loses nothing; ``helm upgrade`` rolls it and ``helm uninstall`` keeps only the claim and the
CRDs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from e2e import kube
from e2e.fixtures import Cluster
from e2e.incluster import (
    WATCH_PREFIX,
    Release,
    base_values,
    ensure_image,
    helm,
    install,
    releases,
    remove,
    uninstall,
    upgrade,
)
from e2e.operator_harness import (
    ADMIN,
    SU,
    admin_token,
    create,
    data_plane,
    deployment,
    make_namespace,
    provision_vault,
    release,
    restart_hash,
    sa_role,
    secret_data,
    set_secret,
    wait_condition,
    watch_secret_change,
)
from e2e.wait import wait_for

VALUE = "in-cluster-" + uuid.uuid4().hex[:8]


@pytest.fixture
def namespace(kube_cluster: Cluster, incluster: Release) -> Iterator[str]:
    name = make_namespace(kube_cluster, prefix=WATCH_PREFIX)
    yield name
    release(kube_cluster, [name])
    kube.get_or_none(kube_cluster.core.delete_namespace, name)


def test_helm_install_runs_the_operator_as_a_pod(kube_cluster: Cluster, incluster: Release) -> None:
    pod = incluster.ready_pod()
    assert pod is not None
    container = pod.spec.containers[0]
    assert container.image.startswith("kvault.local/kvault:")
    assert pod.spec.security_context.run_as_user == 65532
    assert container.security_context.read_only_root_filesystem is True
    assert container.security_context.allow_privilege_escalation is False
    claim = kube_cluster.core.read_namespaced_persistent_volume_claim(
        f"{incluster.fullname}-data", incluster.namespace
    )
    assert claim.status.phase == "Bound"
    storage = client.StorageV1Api(kube_cluster.api).read_storage_class(
        claim.spec.storage_class_name
    )
    assert storage.metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"
    assert (incluster.data_dir / "audit.log").exists()  # the data directory is on the claim
    out = helm(kube_cluster.kubeconfig, "test", incluster.name, "-n", incluster.namespace)
    assert "Phase:          Succeeded" in out, out
    print(f"helm install -> Ready: {incluster.install_seconds:.1f} s")


def test_operator_pod_deleted_loses_nothing_and_restarts_once(
    kube_cluster: Cluster, namespace: str, incluster: Release
) -> None:
    """``kubectl delete pod``: the Deployment makes a new Pod, every acknowledged write reads
    back from the claim, projection resumes, and the workload is restarted once per change."""
    cluster, ns = kube_cluster, namespace
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "app"}})
    provision_vault(cluster, ns, "main", [sa_role("app", SU), sa_role("admin", ADMIN)])
    plane = data_plane(incluster, admin_token(cluster, ns), "main", ns)
    written = {f"item-{i}": f"{VALUE}-{i}" for i in range(20)}
    for name, value in written.items():
        set_secret(plane, name, value)
    deployment(cluster, ns, "web")
    spec: dict[str, Any] = {
        "vaultRef": {"name": "main"},
        "serviceAccountName": "app",
        "data": [{"secretKey": "value", "remoteRef": {"name": "item-0"}}],
        "rolloutRestart": [{"kind": "Deployment", "name": "web"}],
    }
    create(cluster, ns, "vaultsecrets", "VaultSecret", "app", spec)
    wait_condition(cluster, ns, "vaultsecrets", "app", "True", "Synced")
    generation, _ = restart_hash(cluster, ns, "web")

    old = incluster.ready_pod()
    assert old is not None
    incluster.remember_logs()
    cluster.core.delete_namespaced_pod(old.metadata.name, incluster.namespace)
    wait_for(
        lambda: (p := incluster.ready_pod()) is not None and p.metadata.name != old.metadata.name,
        180,
        "a new operator Pod Ready",
    )
    incluster.wait_ready()

    plane = data_plane(incluster, admin_token(cluster, ns), "main", ns)
    for name, value in written.items():
        assert plane.request("GET", f"/secrets/{name}")["value"] == value
    assert restart_hash(cluster, ns, "web")[0] == generation  # a new operator restarts nothing
    rotated = f"{VALUE}-rotated"
    took = watch_secret_change(
        cluster, ns, "app", "value", rotated, lambda: set_secret(plane, "item-0", rotated)
    )
    print(f"after the operator Pod was replaced: write -> Secret {took * 1000:.0f} ms")
    vs = wait_for(
        lambda: (
            (
                obj := kube.get_or_none(
                    client.CustomObjectsApi(cluster.api).get_namespaced_custom_object,
                    "kvault.io",
                    "v1alpha1",
                    ns,
                    "vaultsecrets",
                    "app",
                )
            )
            and restart_hash(cluster, ns, "web")[1] == obj["status"].get("contentHash")
            and obj
        ),
        30,
        "the rollout restart for the rotated value",
    )
    assert restart_hash(cluster, ns, "web")[0] == generation + 1, vs["status"]
    assert secret_data(cluster, ns, "app") == {"value": rotated}


def test_helm_upgrade_rolls_and_uninstall_keeps_only_the_claim(kube_cluster: Cluster) -> None:
    """A second release of its own (so the session's stays up): upgrade with a changed value
    makes a new Pod on the same claim; uninstall removes every object but the claim (kept, as
    ``persistence.keep`` says) and the CRDs (not part of the chart)."""
    cluster = kube_cluster
    tag = ensure_image(cluster)
    values = base_values(tag, watch=["kvup-*"])
    values["webhook"] = {"enabled": False}  # the session's release already mutates pods
    rel = install(cluster, "kvup", "kvault-upgrade", values)
    ns = make_namespace(cluster, prefix="kvup-")
    try:
        provision_vault(cluster, ns, "main", [sa_role("admin", ADMIN)])
        plane = data_plane(rel, admin_token(cluster, ns), "main", ns)
        set_secret(plane, "kept", VALUE)
        before = rel.ready_pod()
        assert before is not None
        changed = {**values, "operator": {**values["operator"], "workers": 8}}
        upgrade(rel, changed)
        after = rel.ready_pod()
        assert after is not None and after.metadata.name != before.metadata.name
        assert "--workers=8" in after.spec.containers[0].args
        plane = data_plane(rel, admin_token(cluster, ns), "main", ns)
        assert plane.request("GET", "/secrets/kept")["value"] == VALUE

        _uninstall_and_check(rel)
    finally:
        release(cluster, [ns])
        kube.get_or_none(cluster.core.delete_namespace, ns)
        remove(rel)


def _uninstall_and_check(rel: Release) -> None:
    cluster, ns = rel.cluster, rel.namespace
    claim_name = f"{rel.fullname}-data"
    uninstall(rel)
    assert not any(r["name"] == rel.name for r in releases(cluster, ns))
    selector = f"app.kubernetes.io/instance={rel.name}"
    apps, rbac = client.AppsV1Api(cluster.api), client.RbacAuthorizationV1Api(cluster.api)
    admission = client.AdmissionregistrationV1Api(cluster.api)
    left = {
        "deployments": apps.list_namespaced_deployment(ns, label_selector=selector).items,
        "services": cluster.core.list_namespaced_service(ns, label_selector=selector).items,
        "serviceaccounts": cluster.core.list_namespaced_service_account(
            ns, label_selector=selector
        ).items,
        "configmaps": cluster.core.list_namespaced_config_map(ns, label_selector=selector).items,
        "clusterroles": rbac.list_cluster_role(label_selector=selector).items,
        "clusterrolebindings": rbac.list_cluster_role_binding(label_selector=selector).items,
        "webhooks": admission.list_mutating_webhook_configuration(label_selector=selector).items,
    }
    assert {k: [o.metadata.name for o in v] for k, v in left.items() if v} == {}
    wait_for(
        lambda: not cluster.core.list_namespaced_pod(ns, label_selector=selector).items,
        60,
        "the operator Pod gone",
    )
    claim = cluster.core.read_namespaced_persistent_volume_claim(claim_name, ns)
    assert claim.metadata.annotations["helm.sh/resource-policy"] == "keep"
    crds = client.ApiextensionsV1Api(cluster.api)
    for crd in ("vaults.kvault.io", "vaultsecrets.kvault.io"):
        assert crds.read_custom_resource_definition(crd) is not None


def _client_image(cluster: Cluster) -> str:
    """The unmodified Azure SDK program's image, built from Debian packages like ours."""
    from e2e import image

    built = image.ensure_image("client")
    if cluster.layout is not None:
        image.import_image(built, str(cluster.layout.containerd_sock))
    return built.ref


def _finished(cluster: Cluster, ns: str, name: str) -> client.V1Pod | None:
    pod = cluster.core.read_namespaced_pod(name, ns)
    return pod if pod.status.phase in ("Succeeded", "Failed") else None


def test_labelled_pod_reads_with_default_azure_credential(
    kube_cluster: Cluster, namespace: str, incluster: Release
) -> None:
    """Zero-config workload identity: a pod labelled ``kvault.io/use: "true"`` runs
    ``DefaultAzureCredential()`` + ``SecretClient("https://<vault>.<ns>.svc")`` with no kvault
    settings of its own; the webhook gives it env, token and CA. Its ServiceAccount may read
    one secret (200) and not the other (403 ForbiddenByRbac). An unlabelled pod is untouched."""
    cluster, ns = kube_cluster, namespace
    ref = _client_image(cluster)
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "reader"}})
    roles = [sa_role("reader", SU, scope="/secrets/allowed"), sa_role("admin", ADMIN)]
    provision_vault(cluster, ns, "main", roles)
    plane = data_plane(incluster, admin_token(cluster, ns), "main", ns)
    set_secret(plane, "allowed", VALUE)
    set_secret(plane, "forbidden", "never-shown-" + VALUE)

    container = {
        "name": "app",
        "image": ref,
        "imagePullPolicy": "IfNotPresent",
        "args": [f"https://main.{ns}.svc", "allowed", "forbidden"],
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sdk", "labels": {"kvault.io/use": "true"}},
        "spec": {
            "serviceAccountName": "reader",
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
        },
    }
    created = cluster.core.create_namespaced_pod(ns, pod)
    env = {e.name: e.value for e in created.spec.containers[0].env or []}
    assert env["AZURE_CLIENT_ID"] == f"{ns}/reader"
    assert set(env) >= {
        "AZURE_TENANT_ID",
        "AZURE_AUTHORITY_HOST",
        "AZURE_FEDERATED_TOKEN_FILE",
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "NODE_EXTRA_CA_CERTS",
    }
    (token,) = [v for v in created.spec.volumes if v.name == "kvault-token"]
    sources = [s.service_account_token for s in token.projected.sources if s.service_account_token]
    assert [s.audience for s in sources] == ["kvault"]

    done = wait_for(lambda: _finished(cluster, ns, "sdk"), 180, "the SDK pod to finish")
    log = cluster.core.read_namespaced_pod_log("sdk", ns)
    assert f"allowed={VALUE}" in log, log
    assert "forbidden ERROR status=403 code=Forbidden inner=ForbiddenByRbac" in log, log
    assert "never-shown" not in log
    assert done.status.phase == "Failed"  # the program exits 1 when a read fails

    plain = kube.busybox_pod("plain", "true")
    plain["metadata"]["labels"] = {"kvault.io/use": "false"}
    untouched = cluster.core.create_namespaced_pod(ns, plain)
    assert not untouched.spec.containers[0].env
    assert not [v for v in untouched.spec.volumes or [] if v.name.startswith("kvault")]


def test_audit_checkpoints_reach_a_config_map_and_catch_a_cut_tail(
    kube_cluster: Cluster, namespace: str, incluster: Release, tmp_path: Any
) -> None:
    """The operator pod seals its audit log's head under the HSM root into ConfigMap
    ``kvault-audit-checkpoint`` (key ``<pod>.json``, at start and each minute in which lines
    were added); the pod's log verifies against it, and a copy with its tail cut is reported,
    though what is left of it still chains."""
    import shutil
    import subprocess
    import sys

    cluster, ns = kube_cluster, namespace
    provision_vault(cluster, ns, "main", [sa_role("admin", ADMIN)])
    set_secret(data_plane(incluster, admin_token(cluster, ns), "main", ns), "audited", VALUE)
    written = len((incluster.data_dir / "audit.log").read_text().splitlines())
    pod = incluster.ready_pod()
    assert pod is not None
    key = f"{pod.metadata.name}.json"

    def published() -> str | None:
        cm = kube.get_or_none(
            cluster.core.read_namespaced_config_map, "kvault-audit-checkpoint", incluster.namespace
        )
        doc = None if cm is None else (cm.data or {}).get(key)
        return doc if doc and json.loads(doc)["lines"] >= written else None

    # The next checkpoint after those writes: within a minute.
    doc = wait_for(published, 90, "a checkpoint of the pod's audit log covering our writes")
    checkpoint = tmp_path / "checkpoint.json"
    checkpoint.write_text(doc)
    log = tmp_path / "audit.log"
    shutil.copy(incluster.data_dir / "audit.log", log)

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kvault.cli.main", "audit", "verify", str(log),
             "--checkpoint", str(checkpoint),
             "--hsm-option", f"key_file={incluster.data_dir / 'hsm.key'}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    whole = verify()
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert "lines of the checkpoint of" in whole.stdout
    lines = log.read_text().splitlines(keepends=True)
    counted = json.loads(doc)["lines"]
    log.write_text("".join(lines[: counted // 2]))
    cut = verify()
    assert cut.returncode == 1, cut.stdout + cut.stderr
    assert "chain intact" in cut.stdout and "cut tail" in cut.stdout
