"""charts/kvault rendered and validated by the real helm binary (``make install`` builds it)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e import tools

CHART = Path(__file__).resolve().parents[2] / "charts" / "kvault"
NS = "kvault-system"


def _helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    home = tools.versions.cache_root() / "helm-home"
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    res = subprocess.run(
        [str(tools.ensure("helm")), *args], capture_output=True, text=True, env=env, timeout=120
    )
    if check:
        assert res.returncode == 0, res.stderr
    return res


def render(*sets: str, name: str = "kvault", namespace: str = NS) -> list[dict[str, Any]]:
    args = ["template", name, str(CHART), "-n", namespace]
    for s in sets:
        args += ["--set", s]
    docs = yaml.safe_load_all(_helm(*args).stdout)
    return [d for d in docs if d]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{kind} {name}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def test_lint_strict_is_clean() -> None:
    res = _helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in res.stdout, res.stdout


def test_defaults_render_a_hardened_operator() -> None:
    docs = render()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "MutatingWebhookConfiguration",
            "PersistentVolumeClaim",
            "Pod",
            "Role",
            "RoleBinding",
            "Service",
            "Service",
            "ServiceAccount",
        ]
    )
    for d in docs:
        assert d["metadata"]["labels"]["app.kubernetes.io/instance"] == "kvault"
    dep = one(docs, "Deployment", "kvault")
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == "kvault.local/kvault:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    args = container["args"]
    assert "--webhook-port=9443" in args
    assert "--webhook-service=kvault-webhook" in args
    assert f"--webhook-configuration={NS}-kvault" in args
    assert "--lease-name=kvault-operator" in args
    assert "--publish-ca" in args
    assert not [a for a in args if a.startswith("--dev-")]  # dev-only settings: never by default
    assert "checksum/values" in dep["spec"]["template"]["metadata"]["annotations"]
    pvc = one(docs, "PersistentVolumeClaim", "kvault-data")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    svc = one(docs, "Service", "kvault")
    assert {p["name"] for p in svc["spec"]["ports"]} == {"https", "metrics"}
    test_pod = one(docs, "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"


def test_webhook_configuration_selects_only_labelled_pods_elsewhere() -> None:
    docs = render()
    mwc = one(docs, "MutatingWebhookConfiguration", f"{NS}-kvault")
    (hook,) = mwc["webhooks"]
    assert hook["objectSelector"] == {"matchLabels": {"kvault.io/use": "true"}}
    (expr,) = hook["namespaceSelector"]["matchExpressions"]
    assert expr["key"] == "kubernetes.io/metadata.name" and expr["operator"] == "NotIn"
    assert set(expr["values"]) == {NS, "kube-system"}
    assert hook["failurePolicy"] == "Fail"
    assert hook["sideEffects"] == "NoneOnDryRun"
    assert "caBundle" not in hook["clientConfig"]  # the operator sets it
    assert hook["clientConfig"]["service"] == {
        "name": "kvault-webhook",
        "namespace": NS,
        "path": "/mutate",
        "port": 443,
    }
    role = one(docs, "ClusterRole")
    rule = next(
        r for r in role["rules"] if "mutatingwebhookconfigurations" in r.get("resources", [])
    )
    assert rule["resourceNames"] == [f"{NS}-kvault"]
    assert sorted(rule["verbs"]) == ["get", "patch"]


def test_webhook_disabled_renders_no_webhook() -> None:
    docs = render("webhook.enabled=false")
    assert not [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
    assert len([d for d in docs if d["kind"] == "Service"]) == 1
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in args if a.startswith("--webhook")]


def test_two_releases_never_share_cluster_scoped_names() -> None:
    a = render(name="kvault", namespace="kvault-e2e")
    b = render("webhook.enabled=false", name="kvup", namespace="kvault-upgrade")
    c = render(name="kvault", namespace="other")
    cluster_kinds = {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"}

    def names(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in cluster_kinds}

    assert not names(a) & names(b) and not names(a) & names(c)
    assert one(b, "PersistentVolumeClaim")["metadata"]["name"] == "kvup-kvault-data"


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("replicaCount=two", "/replicaCount"),
        ("persistence.size=5", "/persistence/size"),
        ("operator.workers=-1", "/operator/workers"),
        ("operator.hsm.plugin=foo", "/operator/hsm/plugin"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("webhook.failurePolicy=Maybe", "/webhook/failurePolicy"),
        ("webhook.port=70000", "/webhook/port"),
        ("metrics.serviceMonitor.enabled=yes", "/metrics/serviceMonitor/enabled"),
        ("unknownValue=1", "unknownValue"),
        ("operator.dev.certificateValidityFloorSeconds=0", "/operator/dev"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(setting: str, field: str) -> None:
    _, _, value = setting.partition("=")
    flag = "--set-string" if not value.lstrip("-").isdigit() else "--set"
    res = _helm("template", "kvault", str(CHART), flag, setting, check=False)
    assert res.returncode != 0
    assert "values don't meet the specifications of the schema" in res.stderr
    assert field in res.stderr, res.stderr


def test_dev_certificate_validity_floor_reaches_the_operator() -> None:
    docs = render("operator.dev.certificateValidityFloorSeconds=60")
    (container,) = one(docs, "Deployment", "kvault")["spec"]["template"]["spec"]["containers"]
    assert "--dev-certificate-validity-floor=60" in container["args"]


def test_service_monitor_only_when_enabled() -> None:
    assert not [d for d in render() if d["kind"] == "ServiceMonitor"]
    docs = render("metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=p")
    sm = one(docs, "ServiceMonitor", "kvault")
    assert sm["metadata"]["labels"]["release"] == "p"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm["spec"]["endpoints"][0]["interval"] == "30s"


def test_dashboard_config_map_is_valid_json_on_real_metric_names() -> None:
    cm = one(render(), "ConfigMap", "kvault-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["kvault.json"])
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    from kvault.api import metrics as data_plane
    from kvault.controller import metrics

    registries = (metrics.REGISTRY, data_plane.REGISTRY)
    exported = {m.name for r in registries for m in r.collect()}
    assert "kvault_http_requests" in exported
    for name in exported:
        assert name in exprs, f"{name} has no panel"
    assert not [d for d in render("metrics.dashboard.enabled=false") if d["kind"] == "ConfigMap"]


def test_chart_app_version_is_the_package_version() -> None:
    import tomllib

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text())
    assert chart["appVersion"] == project["project"]["version"]


def test_cluster_role_grants_what_the_operator_does() -> None:
    docs = render()
    role = one(docs, "ClusterRole")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = {
        ("kvault.io", "vaults", "watch"),
        ("kvault.io", "vaultsecrets/status", "patch"),
        ("kvault.io", "vaults/finalizers", "update"),
        ("", "secrets", "create"),
        ("", "secrets", "patch"),
        ("", "secrets", "delete"),
        ("", "services", "create"),
        ("", "configmaps", "update"),
        ("", "events", "create"),
        ("events.k8s.io", "events", "create"),
        ("apps", "deployments", "patch"),
        ("apps", "statefulsets", "get"),
        ("apps", "daemonsets", "patch"),
        ("", "serviceaccounts", "get"),
        ("", "namespaces", "watch"),
    }
    assert needed <= granted, needed - granted
    bindings = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert {b["roleRef"]["name"] for b in bindings} >= {"system:auth-delegator"}


def test_values_switch_things_off() -> None:
    docs = render(
        "persistence.existingClaim=my-data",
        "serviceAccount.create=false",
        "serviceAccount.name=custom",
        "image.repository=registry.example/kvault",
        "image.tag=1.2.3",
        "operator.watchNamespaces={team-a,team-b}",
        "operator.hsm.plugin=pkcs11",
        "operator.hsm.options.slot=0",
        "metrics.enabled=false",
    )
    kinds = {d["kind"] for d in docs}
    assert "PersistentVolumeClaim" not in kinds and "ServiceAccount" not in kinds
    deploy = one(docs, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "custom"
    assert pod["containers"][0]["image"] == "registry.example/kvault:1.2.3"
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["my-data"]
    args = pod["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    assert "--hsm=pkcs11" in args and "--hsm-option=slot=0" in args
    assert "--metrics-port=-1" in args
