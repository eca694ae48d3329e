"""Small helpers over the official ``kubernetes`` client for e2e tests.

Every wait is a poll with a deadline (``e2e.wait.wait_for``), never a bare sleep.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from e2e import versions
from e2e.wait import Abort, wait_for

T = TypeVar("T")


def api_client(kubeconfig: str | None) -> client.ApiClient:
    """An ApiClient for a kubeconfig file (None: $KUBECONFIG / ~/.kube/config)."""
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig
    )
    return api


def token_client(base: client.ApiClient, token: str) -> client.ApiClient:
    """A client for the same server that authenticates only with a bearer token."""
    src = base.configuration
    cfg = client.Configuration()
    cfg.host = src.host
    cfg.ssl_ca_cert = src.ssl_ca_cert
    cfg.verify_ssl = src.verify_ssl
    cfg.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(cfg)


def status_of(exc: BaseException) -> int | None:
    """HTTP status of an API error (None for anything else)."""
    return exc.status if isinstance(exc, ApiException) else None


def get_or_none(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call a read API; None on 404 instead of an exception."""
    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def busybox_image() -> str:
    """Busybox image for test pods; KVAULT_E2E_IMAGE overrides (e.g. on other clusters)."""
    return os.environ.get("KVAULT_E2E_IMAGE", versions.BUSYBOX_IMAGE)


def busybox_pod(
    name: str,
    script: str,
    volumes: list[dict[str, Any]] | None = None,
    mounts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Manifest of a one-container busybox pod running ``sh -c script``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": busybox_image(),
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                    "volumeMounts": mounts or [],
                }
            ],
            "volumes": volumes or [],
        },
    }


def wait_pod_running(core: client.CoreV1Api, ns: str, name: str, timeout: float = 90) -> None:
    """Wait until the pod's phase is Running; fail fast if it ended."""

    def running() -> bool:
        status = core.read_namespaced_pod(name, ns).status
        phase = status.phase if status else None
        if phase in ("Succeeded", "Failed"):
            raise Abort(f"pod {ns}/{name} ended in phase {phase}")
        return bool(phase == "Running")

    wait_for(running, timeout, f"pod {ns}/{name} Running")


def wait_log_line(
    core: client.CoreV1Api, ns: str, name: str, line: str, timeout: float = 60
) -> None:
    """Wait until the pod's log contains ``line`` as a whole line."""

    def has_line() -> bool:
        log = core.read_namespaced_pod_log(name, ns, tail_lines=50)
        return line in log.splitlines()

    wait_for(has_line, timeout, f"log line {line!r} from pod {ns}/{name}")
