"""The only door to the Kubernetes API: configuration, one transport, resource references
that build URLs, one error class per status, and the calls kvault makes, by concern
(``objects``, ``events``, ``lease``, ``tokens``)."""

from kvault.kube.client import KubeClient
from kvault.kube.config import KubeConfig, from_kubeconfig, in_cluster, load_config
from kvault.kube.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Invalid,
    KubeApiError,
    NotFound,
    Unauthorized,
)
from kvault.kube.resources import Resource

__all__ = [
    "ApiError",
    "Conflict",
    "Forbidden",
    "Invalid",
    "KubeApiError",
    "KubeClient",
    "KubeConfig",
    "NotFound",
    "Resource",
    "Unauthorized",
    "from_kubeconfig",
    "in_cluster",
    "load_config",
]
