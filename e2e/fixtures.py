"""pytest plugin: a real cluster for the whole session and a fresh namespace per test.

Load it with ``from e2e.fixtures import *`` in a conftest (as e2e/tests/conftest.py does)
or ``-p e2e.fixtures``. Choice of cluster, by environment:

- default: the local cluster (``e2e.lifecycle``), tier ``KVAULT_E2E_TIER`` (default
  ``node``). If it was already up it is reused. If a test session started it, the last
  session still using it stops it at the end (``e2e.sessions``); a cluster started by hand,
  or with ``KVAULT_E2E_KEEP=1``, is left up.
- ``KVAULT_E2E_EXISTING=1``: the cluster of ``$KUBECONFIG`` (e.g. kind); never touched.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client

from e2e import kube, lifecycle, sessions
from e2e.layout import Layout
from e2e.wait import wait_for

__all__ = [
    "Cluster",
    "kube_cluster",
    "namespace",
    "pytest_collection_modifyitems",
    "pytest_configure",
]

TEARDOWN_MARK = "cluster_teardown"
NAMESPACE_TIMEOUT = 60.0


@dataclass
class Cluster:
    """Handle on the cluster under test: kubeconfig, API clients, and who owns it."""

    kubeconfig: str
    api: client.ApiClient
    owned: bool  # started by a test session: the last session out tears it down
    existing: bool  # supplied from outside (KVAULT_E2E_EXISTING=1)
    layout: Layout | None = None
    core: client.CoreV1Api = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)


def _flag(name: str) -> bool:
    return os.environ.get(name, "") in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    """Register our marker (pyproject's marker list belongs to the unit suite)."""
    config.addinivalue_line(
        "markers", f"{TEARDOWN_MARK}: tears the session cluster down; always runs last"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run teardown-marked tests after every other test of the session."""
    items.sort(key=lambda item: item.get_closest_marker(TEARDOWN_MARK) is not None)


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[Cluster]:
    """The session's cluster: started once (or reused), shared by every test."""
    if _flag("KVAULT_E2E_EXISTING"):
        kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        yield Cluster(kubeconfig, kube.api_client(kubeconfig), owned=False, existing=True)
        return
    lay = Layout.default()
    tier = os.environ.get("KVAULT_E2E_TIER", "node")
    keep = _flag("KVAULT_E2E_KEEP")
    sessions.register(lay)
    try:
        was_up = lifecycle.status(lay).healthy
        lifecycle.up(tier, lay)
        if not was_up and not keep:
            sessions.mark_started(lay)
        kubeconfig = str(lay.kubeconfig)
        owned = sessions.started_by_tests(lay)
        cluster = Cluster(kubeconfig, kube.api_client(kubeconfig), owned, False, lay)
        yield cluster
        cluster.api.close()  # type: ignore[no-untyped-call]
    finally:
        sessions.unregister(lay)
        if sessions.started_by_tests(lay) and not sessions.others(lay) and not keep:
            lifecycle.down(lay)


@pytest.fixture
def namespace(kube_cluster: Cluster) -> Iterator[str]:
    """A fresh namespace whose ``default`` ServiceAccount and root CA exist; deleted after."""
    core = kube_cluster.core
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    meta = client.V1ObjectMeta(name=name, labels={"kvault.io/e2e": "true"})
    core.create_namespace(client.V1Namespace(metadata=meta))

    def ready() -> bool:
        sa = kube.get_or_none(core.read_namespaced_service_account, "default", name)
        ca = kube.get_or_none(core.read_namespaced_config_map, "kube-root-ca.crt", name)
        return sa is not None and ca is not None

    try:
        wait_for(ready, NAMESPACE_TIMEOUT, f"ServiceAccount default in namespace {name}")
        yield name
    finally:
        kube.get_or_none(core.delete_namespace, name)
