"""The operator as a host process: what needs fault injection or several replicas.

A SIGKILL right after a Secret write (``KVAULT_FAULT``) and two replicas sharing a Lease are
controller behaviour, tested here with the operator as a subprocess of the test (watching
only the test's ``e2e-*`` namespace); every user-facing scenario runs against the operator
installed by Helm in ``test_operator.py`` and ``test_incluster.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from e2e.fixtures import Cluster
from e2e.operator_harness import (
    ADMIN,
    SU,
    Operator,
    admin_token,
    create,
    data_plane,
    deployment,
    get,
    install_crds,
    provision_vault,
    release,
    restart_hash,
    sa_role,
    secret_data,
    set_secret,
    start_operator,
    vault_spec,
    wait_condition,
)
from e2e.wait import wait_for

VALUE1 = "s3cr3t-value-" + uuid.uuid4().hex[:8]
VALUE2 = "r0tated-value-" + uuid.uuid4().hex[:8]


@pytest.fixture(autouse=True)
def _released(kube_cluster: Cluster, namespace: str) -> Iterator[None]:
    """Drop leftover finalizers after the operators stopped, so deleting the namespace never
    waits for an operator that is gone."""
    yield
    release(kube_cluster, [namespace])


def test_sigkill_mid_sync_converges_without_lost_or_duplicate_updates(
    kube_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster, ns = kube_cluster, namespace
    install_crds(cluster)
    data, lease = tmp_path / "data", f"crash-{uuid.uuid4().hex[:6]}"
    crash = {"KVAULT_FAULT": "exit-after-secret-write"}
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "app"}})
    deployment(cluster, ns, "web")
    logs: list[str] = []

    def start(env: dict[str, str] | None = None) -> Operator:
        return start_operator(cluster, data, [ns], lease_name=lease, lease_duration=2, env=env)

    # 1. SIGKILL right after the first Secret write, before status: the restart converges.
    op = start(crash)
    try:
        provision_vault(cluster, ns, "main", [sa_role("app", SU), sa_role("admin", ADMIN)])
        plane = data_plane(op, admin_token(cluster, ns), "main", ns)
        v1 = set_secret(plane, "db-password", VALUE1)
        spec = {
            "vaultRef": {"name": "main"},
            "serviceAccountName": "app",
            "data": [{"secretKey": "value", "remoteRef": {"name": "db-password"}}],
            "rolloutRestart": [{"kind": "Deployment", "name": "web"}],
        }
        create(cluster, ns, "vaultsecrets", "VaultSecret", "app", spec)
        wait_for(lambda: not op.alive(), 30, "operator killed itself after the Secret write")
    finally:
        op.stop()
        logs.append(op.text())
    written = cluster.core.read_namespaced_secret("app", ns).metadata.resource_version
    op = start()
    try:
        vs = wait_condition(cluster, ns, "vaultsecrets", "app", "True", "Synced")
        assert vs["status"]["syncedVersions"] == {"value": v1}
        # Not written twice: the first write was complete and is recognised by its hash.
        assert cluster.core.read_namespaced_secret("app", ns).metadata.resource_version == written
        generation, _ = restart_hash(cluster, ns, "web")  # the first projection restarts nothing
    finally:
        op.stop()
        logs.append(op.text())

    # 2. SIGKILL after a rotation's Secret write, before the rollout restart and the status.
    op = start(crash)
    try:
        plane = data_plane(op, admin_token(cluster, ns), "main", ns)
        v2 = set_secret(plane, "db-password", VALUE2)
        wait_for(lambda: not op.alive(), 30, "operator killed itself after the rotation write")
    finally:
        op.stop()
        logs.append(op.text())
    assert secret_data(cluster, ns, "app") == {"value": VALUE2}
    op = start()
    try:
        vs = wait_condition(cluster, ns, "vaultsecrets", "app", "True", "Synced")
        wait_for(
            lambda: (
                get(cluster, ns, "vaultsecrets", "app")["status"]["syncedVersions"] == {"value": v2}
            ),
            30,
            "status of the rotated version",
        )
        vs = get(cluster, ns, "vaultsecrets", "app")
        assert vs is not None
        after, restarted_for = restart_hash(cluster, ns, "web")
        assert restarted_for == vs["status"]["contentHash"]  # the restart was not lost
        assert after == generation + 1  # and happened once
        # 3. Drift: a hand-edited and a deleted Secret are restored.
        cluster.core.patch_namespaced_secret("app", ns, {"stringData": {"value": "tampered"}})
        wait_for(lambda: secret_data(cluster, ns, "app") == {"value": VALUE2}, 10, "edit healed")
        cluster.core.delete_namespaced_secret("app", ns)
        wait_for(
            lambda: secret_data(cluster, ns, "app") == {"value": VALUE2}, 10, "deletion healed"
        )
        assert restart_hash(cluster, ns, "web")[0] == generation + 1  # same content: no restart
    finally:
        op.stop()
        logs.append(op.text())
    for text in logs:
        assert VALUE1 not in text and VALUE2 not in text


def test_one_active_controller_through_the_lease(
    kube_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """Two replicas serve the data plane; only the Lease holder reconciles, and when it dies
    the other takes over within the lease duration."""
    cluster, ns = kube_cluster, namespace
    install_crds(cluster)
    lease = f"ha-{uuid.uuid4().hex[:6]}"
    first = start_operator(cluster, tmp_path / "a", [ns], lease_name=lease, lease_duration=3)
    wait_for(lambda: "acquired lease" in first.text(), 20, "first replica leads")
    second = start_operator(cluster, tmp_path / "b", [ns], lease_name=lease, lease_duration=3)
    try:
        provision_vault(cluster, ns, "main", [])
        assert "acquired lease" not in second.text()
        holder = client.CoordinationV1Api(cluster.api).read_namespaced_lease(lease, "default")
        assert f"-{first.process.pid}-" in holder.spec.holder_identity
        first.kill()
        wait_for(lambda: "acquired lease" in second.text(), 20, "second replica takes over")
        create(cluster, ns, "vaults", "Vault", "after", vault_spec([]))
        wait_condition(cluster, ns, "vaults", "after", "True", "Provisioned")
    finally:
        first.stop()
        second.stop()
