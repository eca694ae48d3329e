"""The pure pod -> JSONPatch rules of the workload-identity webhook."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kvault.controller.webhook.mutation import Injection, patch

INJ = Injection(authority_host="https://kvault.kvault-system.svc")


def _pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metadata": {"labels": {"kvault.io/use": "true"}},
        "spec": {"serviceAccountName": "app", "containers": [{"name": "main", "image": "x"}]},
    }
    base["spec"].update(spec)
    return base


def _json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 ``add`` (the only op the webhook emits), as the API server applies it."""
    out = copy.deepcopy(doc)
    for op in ops:
        assert op["op"] == "add"
        *parents, last = op["path"].lstrip("/").split("/")
        target: Any = out
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            assert last == "-"
            target.append(op["value"])
        else:
            assert last not in target, f"add would replace {op['path']}"
            target[last] = op["value"]
    return out


def _apply(pod: dict[str, Any], sa: dict[str, str] | None = None) -> dict[str, Any]:
    return _json_patch(pod, patch(pod, "team-a", sa or {}, INJ))


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_labelled_pod_gets_identity_env_token_and_ca() -> None:
    out = _apply(_pod())
    env = _env(out["spec"]["containers"][0])
    assert env == {
        "AZURE_CLIENT_ID": "team-a/app",
        "AZURE_TENANT_ID": "kvault",
        "AZURE_AUTHORITY_HOST": "https://kvault.kvault-system.svc",
        "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/kvault/serviceaccount/token",
        "REQUESTS_CA_BUNDLE": "/var/run/secrets/kvault/ca/ca.crt",
        "SSL_CERT_FILE": "/var/run/secrets/kvault/ca/ca.crt",
        "NODE_EXTRA_CA_CERTS": "/var/run/secrets/kvault/ca/ca.crt",
    }
    volumes = {v["name"]: v for v in out["spec"]["volumes"]}
    token = volumes["kvault-token"]["projected"]["sources"][0]["serviceAccountToken"]
    assert token == {"audience": "kvault", "expirationSeconds": 3600, "path": "token"}
    assert volumes["kvault-ca"]["configMap"]["name"] == "kvault-ca"
    mounts = {m["name"]: m for m in out["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["kvault-token"] == {
        "name": "kvault-token",
        "mountPath": "/var/run/secrets/kvault/serviceaccount",
        "readOnly": True,
    }
    assert mounts["kvault-ca"]["readOnly"] is True


@pytest.mark.parametrize(
    "labels", [{}, {"kvault.io/use": "false"}, {"other": "true"}], ids=["none", "false", "other"]
)
def test_unlabelled_pod_is_untouched(labels: dict[str, str]) -> None:
    pod = _pod()
    pod["metadata"]["labels"] = labels
    assert patch(pod, "team-a", {}, INJ) == []


def test_client_id_from_service_account_annotation_and_default_sa() -> None:
    out = _apply(_pod(), {"kvault.io/client-id": "my-app"})
    assert _env(out["spec"]["containers"][0])["AZURE_CLIENT_ID"] == "my-app"
    pod = _pod()
    del pod["spec"]["serviceAccountName"]
    assert _env(_apply(pod)["spec"]["containers"][0])["AZURE_CLIENT_ID"] == "team-a/default"


def test_existing_values_are_kept_and_init_containers_get_them_too() -> None:
    pod = _pod(
        initContainers=[{"name": "init", "env": [{"name": "AZURE_TENANT_ID", "value": "mine"}]}],
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    out = _apply(pod)
    init_env = _env(out["spec"]["initContainers"][0])
    assert init_env["AZURE_TENANT_ID"] == "mine"
    assert init_env["AZURE_CLIENT_ID"] == "team-a/app"
    names = [v["name"] for v in out["spec"]["volumes"]]
    assert names == ["data", "kvault-token", "kvault-ca"]
    mounts = [m["name"] for m in out["spec"]["containers"][0]["volumeMounts"]]
    assert mounts == ["data", "kvault-token", "kvault-ca"]


def test_second_pass_changes_nothing() -> None:
    once = _apply(_pod())
    assert patch(once, "team-a", {}, INJ) == []


def test_skip_containers_annotation() -> None:
    pod = _pod()
    pod["spec"]["containers"].append({"name": "sidecar"})
    pod["metadata"]["annotations"] = {"kvault.io/skip-containers": "sidecar"}
    out = _apply(pod)
    assert "env" not in out["spec"]["containers"][1]
    assert _env(out["spec"]["containers"][0])["AZURE_TENANT_ID"] == "kvault"


def test_patch_holds_no_secret_material() -> None:
    text = repr(patch(_pod(), "team-a", {}, INJ))
    assert "BEGIN" not in text and "PRIVATE" not in text
