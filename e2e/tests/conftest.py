"""Cluster fixtures for the e2e suite (the plugin lives in e2e.fixtures)."""

from collections.abc import Iterator

import pytest

from e2e.fixtures import *  # noqa: F403 - fixtures and hooks are the plugin's public API
from e2e.fixtures import Cluster
from e2e.incluster import Release, session_release


@pytest.fixture(scope="session")
def incluster(kube_cluster: Cluster) -> Iterator[Release]:
    """kvault installed by ``helm install`` as a Pod, once per session (e2e/incluster.py)."""
    yield from session_release(kube_cluster)
