"""Smoke tests: the cluster does what kvault relies on (real pods, tokens, RBAC)."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from e2e import kube
from e2e.fixtures import Cluster
from e2e.wait import wait_for

AUDIENCE = "kvault"


def test_namespace_gets_default_service_account(kube_cluster: Cluster, namespace: str) -> None:
    sa = kube_cluster.core.read_namespaced_service_account("default", namespace)
    assert sa.metadata.name == "default"


def test_pod_reads_mounted_secret_and_sees_update(kube_cluster: Cluster, namespace: str) -> None:
    core = kube_cluster.core
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "app"}, "stringData": {"value": "first"}}
    )
    script = 'while true; do echo "value=$(cat /etc/app/value)"; sleep 1; done'
    pod = kube.busybox_pod(
        "reader",
        script,
        volumes=[{"name": "app", "secret": {"secretName": "app"}}],
        mounts=[{"name": "app", "mountPath": "/etc/app", "readOnly": True}],
    )
    core.create_namespaced_pod(namespace, pod)
    kube.wait_pod_running(core, namespace, "reader")
    kube.wait_log_line(core, namespace, "reader", "value=first")

    core.patch_namespaced_secret("app", namespace, {"stringData": {"value": "second"}})
    kube.wait_log_line(core, namespace, "reader", "value=second", timeout=90)


def _token(core: client.CoreV1Api, ns: str, sa: str, audiences: list[str] | None) -> str:
    spec: dict[str, object] = {"expirationSeconds": 600}
    if audiences:
        spec["audiences"] = audiences
    resp = core.create_namespaced_service_account_token(sa, ns, {"spec": spec})
    return str(resp.status.token)


def _review(api: client.ApiClient, token: str, audience: str) -> client.V1TokenReviewStatus:
    review = {"spec": {"token": token, "audiences": [audience]}}
    return client.AuthenticationV1Api(api).create_token_review(review).status


def test_token_request_is_bound_to_its_audience(kube_cluster: Cluster, namespace: str) -> None:
    core = kube_cluster.core
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "app"}})
    token = _token(core, namespace, "app", [AUDIENCE])

    ok = _review(kube_cluster.api, token, AUDIENCE)
    assert ok.authenticated is True
    assert ok.user.username == f"system:serviceaccount:{namespace}:app"
    assert AUDIENCE in ok.audiences

    other = _review(kube_cluster.api, token, "not-kvault")
    assert not other.authenticated


def test_rbac_denies_service_account_without_binding(kube_cluster: Cluster, namespace: str) -> None:
    core = kube_cluster.core
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    as_sa = client.CoreV1Api(
        kube.token_client(kube_cluster.api, _token(core, namespace, "nobody", None))
    )

    with pytest.raises(ApiException) as denied:
        as_sa.list_namespaced_secret(namespace)
    assert denied.value.status == 403

    rbac = client.RbacAuthorizationV1Api(kube_cluster.api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "read-secrets"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "nobody-reads"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "read-secrets",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": namespace}],
        },
    )
    # Positive control: the same identity is allowed once bound (RBAC caches: poll).
    wait_for(lambda: as_sa.list_namespaced_secret(namespace) is not None, 30, "RBAC grant")
