"""Pinned versions and well-known paths; one place so cache keys and docs agree."""

from __future__ import annotations

import os
from pathlib import Path

#: Kubernetes release built from the Go module proxy (1.34 still runs on cgroup v1 without
#: overrides and still tolerates Debian's containerd 1.6).
K8S_VERSION = os.environ.get("KVAULT_K8S_VERSION", "1.34.4")
#: etcd server: the one k8s 1.34 is tested with (its go.mod pins 3.6.4); Kubernetes >= 1.31
#: needs >= 3.5.11 and Debian ships 3.4.23.
ETCD_VERSION = os.environ.get("KVAULT_ETCD_VERSION", "3.6.4")

K8S_BINARIES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kubectl",
    "kube-proxy",
)
ALL_BINARIES = (*K8S_BINARIES, "etcd")

#: Name the CRI uses for pod sandboxes; we write this image ourselves.
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
#: Test workload image (Debian busybox-static 1.35), never pulled: use imagePullPolicy Never.
BUSYBOX_IMAGE = "kvault.local/busybox:1.35"


def cache_root() -> Path:
    """Root of everything cached outside the repository."""
    return Path(os.environ.get("KVAULT_CACHE_DIR", Path.home() / ".cache" / "kvault"))


def build_dir(version: str = K8S_VERSION) -> Path:
    """Per-version build directory (wrapper modules + ``bin``)."""
    return cache_root() / "k8s" / version


def bin_dir(version: str = K8S_VERSION) -> Path:
    """Where the built binaries of one version live."""
    return build_dir(version) / "bin"


def cluster_dir() -> Path:
    """All cluster state (pki, configs, data, logs, pids); override with KVAULT_CLUSTER_DIR."""
    env = os.environ.get("KVAULT_CLUSTER_DIR")
    return Path(env) if env else cache_root() / "cluster"


def project_version() -> str:
    """kvault's version from pyproject.toml (the image's default tag)."""
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    return str(tomllib.loads(pyproject.read_text())["project"]["version"])


#: The operator image written by e2e/image.py; also tagged ``<repository>:<input hash12>``
#: so that a new build rolls the Deployment (chart: image.repository / image.tag).
KVAULT_REPOSITORY = "kvault.local/kvault"
KVAULT_IMAGE = f"{KVAULT_REPOSITORY}:{project_version()}"
#: The Azure SDK test client (workload identity e2e); also tagged with its input hash12.
CLIENT_REPOSITORY = "kvault.local/azure-client"
CLIENT_IMAGE = f"{CLIENT_REPOSITORY}:1"
