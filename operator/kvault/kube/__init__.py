"""The Kubernetes API, as kvault talks to it (TokenReview now; the operator's calls later)."""

from kvault.kube.client import (
    KubeApiError,
    KubeClient,
    KubeConfig,
    from_kubeconfig,
    in_cluster,
    load_config,
)

__all__ = [
    "KubeApiError",
    "KubeClient",
    "KubeConfig",
    "from_kubeconfig",
    "in_cluster",
    "load_config",
]
