"""Teardown leaves nothing behind, also after a crash. Runs last (marker), local cluster only.

These tests stop the session cluster, so they run only when a test session started it and
no other session uses it (not with KVAULT_E2E_EXISTING=1, a cluster started by hand, or
KVAULT_E2E_KEEP=1).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from e2e import host, kube, lifecycle, procs, sessions
from e2e.components import components
from e2e.fixtures import Cluster
from e2e.layout import Layout

pytestmark = pytest.mark.cluster_teardown

WARM_START_LIMIT = 60.0


@pytest.fixture(scope="module")
def owned_layout(kube_cluster: Cluster) -> Layout:
    """The cluster's layout, if these tests may tear it down (decided once, before any)."""
    lay = kube_cluster.layout
    if kube_cluster.existing or lay is None or not sessions.started_by_tests(lay):
        pytest.skip("the cluster was not started by tests; it must not be torn down")
    if sessions.others(lay):
        pytest.skip("another test session uses the cluster; it must not be torn down")
    return lay


def _start_secret_pod(kubeconfig: str) -> None:
    """A pod with a Secret volume: gives teardown mounts, a shim, a netns and an IP lease."""
    api = kube.api_client(kubeconfig)
    try:
        core = kube.client.CoreV1Api(api)
        core.create_namespaced_secret(
            "default", {"metadata": {"name": "td"}, "stringData": {"v": "x"}}
        )
        pod = kube.busybox_pod(
            "td",
            "sleep 3600",
            volumes=[{"name": "s", "secret": {"secretName": "td"}}],
            mounts=[{"name": "s", "mountPath": "/s"}],
        )
        core.create_namespaced_pod("default", pod)
        kube.wait_pod_running(core, "default", "td")
    finally:
        api.close()


def _our_shim_sockets(lay: Layout) -> list[Path]:
    return [p for p in host.shim_sockets(lay) if p.exists()]


def test_down_leaves_nothing_behind(owned_layout: Layout) -> None:
    lay = owned_layout
    _start_secret_pod(str(lay.kubeconfig))
    sockets = _our_shim_sockets(lay)
    assert sockets, "expected a live shim socket while a pod runs"
    assert any(item.startswith("mount ") for item in host.residue(lay))

    secs = lifecycle.down(lay)
    print(f"teardown: {secs:.1f}s")

    assert host.residue(lay) == []
    assert not [p for p in sockets if p.exists()]
    assert not lifecycle.status(lay).healthy


def _crash(lay: Layout) -> None:
    """SIGKILL every daemon at once, as a machine-level crash would; nothing cleans up."""
    pids = [rec[0] for n in components("node") if (rec := procs.read_pidfile(lay.pidfile(n)))]
    assert len(pids) == len(components("node"))
    for pid in pids:
        procs.kill(pid, signal.SIGKILL)
    assert procs.wait_gone(pids, 10.0) == []


def test_up_after_crash_cleans_up_first(owned_layout: Layout) -> None:
    lay = owned_layout
    secs = lifecycle.up("node", lay)
    sessions.mark_started(lay)  # if this test fails, the session end still tears it down
    print(f"warm start to Ready node: {secs:.1f}s")
    assert secs <= WARM_START_LIMIT
    _start_secret_pod(str(lay.kubeconfig))

    _crash(lay)
    assert not lifecycle.status(lay).healthy
    assert any(item.startswith("mount ") for item in host.residue(lay))

    lifecycle.up("node", lay)
    sessions.mark_started(lay)
    assert lifecycle.status(lay).healthy
    assert host.mounts_under(lay.kubelet / "pods") == [], "the crashed run's pod mounts survived"

    lifecycle.down(lay)
    assert host.residue(lay) == []
