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


# The smallest PostgreSQL values the chart accepts: the DSN Secret and a shared root key.
POSTGRESQL = (
    "storage.backend=postgresql",
    "storage.postgresql.existingSecret=kvault-pg",
    "operator.hsm.options.key_env=KVAULT_ROOT_KEY",
)


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def test_sqlite_keeps_one_replica_recreated_and_no_disruption_budget() -> None:
    docs = render()
    deployment = one(docs, "Deployment", "kvault")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not [d for d in docs if d["kind"] in ("StatefulSet", "PodDisruptionBudget")]
    assert len([d for d in docs if d["kind"] == "Service"]) == 2  # no headless Service
    pod = _pod(deployment)
    assert "affinity" not in pod
    (container,) = pod["containers"]
    assert not [a for a in container["args"] if a.startswith("--storage")]
    assert [v["name"] for v in pod["volumes"]] == ["data", "tmp"]
    assert one(docs, "PersistentVolumeClaim", "kvault-data")
    # replicaCount 0 (stopped) stays possible on SQLite.
    assert one(render("replicaCount=0"), "Deployment")["spec"]["replicas"] == 0


def test_sqlite_output_is_unchanged_by_the_new_values() -> None:
    """The values that only matter on PostgreSQL (or when set) leave the SQLite Deployment as
    it was: only the values checksum moves."""

    def workload(*sets: str) -> dict[str, Any]:
        deployment = one(render(*sets), "Deployment", "kvault")
        del deployment["spec"]["template"]["metadata"]["annotations"]["checksum/values"]
        return deployment

    assert workload() == workload(
        "storage.backend=sqlite",
        "replicaCount=1",
        "storage.postgresql.existingSecret=unused",
        "storage.postgresql.poolSize=4",
        "podDisruptionBudget.maxUnavailable=1",
    )


def test_postgresql_runs_two_replicas_each_with_its_own_volume() -> None:
    docs = render(*POSTGRESQL)
    assert not [d for d in docs if d["kind"] in ("Deployment", "PersistentVolumeClaim")]
    sts = one(docs, "StatefulSet", "kvault")
    spec = sts["spec"]
    assert spec["replicas"] == 2
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["serviceName"] == "kvault-headless"
    headless = one(docs, "Service", "kvault-headless")
    assert headless["spec"]["clusterIP"] == "None"
    # The data plane's Service, the headless one and the PDB select every replica.
    service = one(docs, "Service", "kvault")
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert headless["spec"]["selector"] == spec["selector"]["matchLabels"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    pod = _pod(sts)
    (container,) = pod["containers"]
    args = container["args"]
    assert "--storage=postgresql" in args
    assert "--storage-option=dsn_file=/etc/kvault/postgresql/dsn" in args
    assert "--hsm-option=key_env=KVAULT_ROOT_KEY" in args
    assert "--data-dir=/var/lib/kvault" in args
    assert {"name": "data", "mountPath": "/var/lib/kvault"} in container["volumeMounts"]
    assert "data" not in [v["name"] for v in pod["volumes"]]  # from the claim template
    # The DSN only as a file from the Secret: never in argv or the environment.
    (dsn,) = [v for v in pod["volumes"] if v["name"] == "postgresql"]
    assert dsn["secret"]["secretName"] == "kvault-pg"
    assert dsn["secret"]["items"] == [{"key": "dsn", "path": "dsn"}]
    assert dsn["secret"]["defaultMode"] == 0o440  # readable by the pod's fsGroup
    assert {"name": "postgresql", "mountPath": "/etc/kvault/postgresql", "readOnly": True} in (
        container["volumeMounts"]
    )
    assert not [a for a in args if "postgresql://" in a or "dsn_env" in a]
    for env in container["env"]:
        assert "dsn" not in env["name"].lower() and "PG" not in env["name"]
        assert "kvault-pg" not in json.dumps(env)
    # Spread over nodes, and a drain keeps one serving.
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    (term,) = anti
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"] == spec["selector"]
    pdb = one(docs, "PodDisruptionBudget", "kvault")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"] == {"minAvailable": 1, "selector": spec["selector"]}


def test_postgresql_storage_options_and_replica_count_are_passed() -> None:
    docs = render(
        *POSTGRESQL,
        "replicaCount=3",
        "storage.postgresql.secretKey=url",
        "storage.postgresql.poolSize=4",
        "storage.postgresql.timeout=2.5",
        "storage.postgresql.cacheMB=0",
        "persistence.enabled=false",
        "podDisruptionBudget.maxUnavailable=1",
    )
    sts = one(docs, "StatefulSet", "kvault")
    assert sts["spec"]["replicas"] == 3
    assert "volumeClaimTemplates" not in sts["spec"]
    assert "persistentVolumeClaimRetentionPolicy" not in sts["spec"]
    pod = _pod(sts)
    args = pod["containers"][0]["args"]
    assert "--storage-option=dsn_file=/etc/kvault/postgresql/url" in args
    assert "--storage-option=pool_size=4" in args
    assert "--storage-option=timeout=2.5" in args
    assert "--storage-option=cache_mb=0" in args
    (dsn,) = [v for v in pod["volumes"] if v["name"] == "postgresql"]
    assert dsn["secret"]["items"] == [{"key": "url", "path": "url"}]
    assert {"name": "data", "emptyDir": {}} in pod["volumes"]
    pdb = one(docs, "PodDisruptionBudget", "kvault")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]


def test_postgresql_with_one_replica_or_its_own_affinity_or_no_budget() -> None:
    single = render(*POSTGRESQL, "replicaCount=1")
    assert one(single, "StatefulSet")["spec"]["replicas"] == 1
    assert "affinity" not in _pod(one(single, "StatefulSet"))
    assert not [d for d in single if d["kind"] == "PodDisruptionBudget"]
    own = render(*POSTGRESQL, "affinity.nodeAffinity.x=1", "podDisruptionBudget.enabled=false")
    assert _pod(one(own, "StatefulSet"))["affinity"] == {"nodeAffinity": {"x": 1}}
    assert not [d for d in own if d["kind"] == "PodDisruptionBudget"]
    kept = one(render(*POSTGRESQL, "persistence.keep=false", "persistence.storageClass=fast"),
               "StatefulSet")  # fmt: skip
    assert kept["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    assert kept["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"


def test_postgresql_takes_a_shared_root_key_file_or_pkcs11() -> None:
    """key_file outside the data directory, on a volume every replica mounts
    (operator.extraVolumes/extraVolumeMounts), is accepted; pkcs11 needs nothing more."""
    csi = {"driver": "secrets-store.csi.k8s.io", "readOnly": True}
    sts = one(
        render(
            *POSTGRESQL[:2],
            "operator.hsm.options.key_file=/etc/kvault/root/key",
            "operator.extraVolumes[0].name=root",
            f"operator.extraVolumes[0].csi.driver={csi['driver']}",
            "operator.extraVolumes[0].csi.readOnly=true",
            "operator.extraVolumeMounts[0].name=root",
            "operator.extraVolumeMounts[0].mountPath=/etc/kvault/root",
            "operator.extraVolumeMounts[0].readOnly=true",
        ),
        "StatefulSet",
    )
    pod = _pod(sts)
    assert pod["volumes"][-1] == {"name": "root", "csi": csi}
    mounts = pod["containers"][0]["volumeMounts"]
    assert mounts[-1] == {"name": "root", "mountPath": "/etc/kvault/root", "readOnly": True}
    assert "--hsm-option=key_file=/etc/kvault/root/key" in pod["containers"][0]["args"]
    pkcs11 = render(*POSTGRESQL[:2], "operator.hsm.plugin=pkcs11", "operator.hsm.options.slot=0")
    assert one(pkcs11, "StatefulSet")["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    ("sets", "messages"),
    [
        (
            ("replicaCount=2",),
            ("replicaCount: 2 is refused on storage.backend sqlite", "single writer",
             "ReadWriteOnce"),
        ),
        (
            ("storage.backend=postgresql",),
            ("storage.postgresql.existingSecret", "postgresql:// DSN"),
        ),
        (
            POSTGRESQL[:2],
            ("operator.hsm.options", "same root key", "key_env", "key_file", "pkcs11"),
        ),
        (
            (*POSTGRESQL[:2], "operator.hsm.options.key_file=/var/lib/kvault/hsm.key"),
            ("operator.hsm.options.key_file", "data directory"),
        ),
        (
            (*POSTGRESQL, "persistence.existingClaim=old-data"),
            ("persistence.existingClaim", "volumeClaimTemplates"),
        ),
    ],
)  # fmt: skip
def test_storage_values_that_cannot_work_are_refused_with_the_field_named(
    sets: tuple[str, ...], messages: tuple[str, ...]
) -> None:
    args = ["template", "kvault", str(CHART)]
    for s in sets:
        args += ["--set", s]
    res = _helm(*args, check=False)
    assert res.returncode != 0
    for message in messages:
        assert message in res.stderr, res.stderr


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("storage.backend=mysql", "/storage/backend"),
        ("storage.postgresql.poolSize=0", "/storage/postgresql/poolSize"),
        ("dataPlane.maxConnections=0", "/dataPlane/maxConnections"),
        ("dataPlane.vaultRateLimit=fast", "/dataPlane/vaultRateLimit"),
        ("podDisruptionBudget.enabled=maybe", "/podDisruptionBudget/enabled"),
    ],
)
def test_bad_storage_and_data_plane_values_are_refused_by_the_schema(
    setting: str, field: str
) -> None:
    flag = "--set" if setting.endswith(("=0", "=mysql")) else "--set-string"
    res = _helm("template", "kvault", str(CHART), flag, setting, check=False)
    assert res.returncode != 0
    assert "values don't meet the specifications of the schema" in res.stderr
    assert field in res.stderr, res.stderr


def test_data_plane_limits_are_flags_only_when_set() -> None:
    default = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    flags = ("--vault-rate-limit", "--principal-rate-limit", "--max-connections",
             "--header-timeout", "--body-timeout", "--idle-timeout")  # fmt: skip
    assert not [a for a in default if a.startswith(flags)]
    args = one(
        render(
            "dataPlane.vaultRateLimit=8000/10",
            "dataPlane.principalRateLimit=0",
            "dataPlane.maxConnections=20000",
            "dataPlane.maxConnectionsPerClient=64",
            "dataPlane.headerTimeout=5",
            "dataPlane.bodyTimeout=12.5",
            "dataPlane.idleTimeout=60",
        ),
        "Deployment",
    )["spec"]["template"]["spec"]["containers"][0]["args"]
    for flag in (
        "--vault-rate-limit=8000/10",
        "--principal-rate-limit=0",
        "--max-connections=20000",
        "--max-connections-per-client=64",
        "--header-timeout=5",
        "--body-timeout=12.5",
        "--idle-timeout=60",
    ):
        assert flag in args, args


def test_the_rendered_flags_are_the_operators_own() -> None:
    """Every flag the chart passes (both backends, every optional value set) is one that
    ``kvault operator`` parses, with the value the chart renders."""
    from kvault.cli.main import build_parser

    docs = render(
        *POSTGRESQL,
        "storage.postgresql.poolSize=4",
        "storage.postgresql.timeout=2.5",
        "storage.postgresql.cacheMB=16",
        "dataPlane.vaultRateLimit=8000/10",
        "dataPlane.principalRateLimit=0",
        "dataPlane.maxConnections=20000",
        "dataPlane.maxConnectionsPerClient=64",
        "dataPlane.headerTimeout=5",
        "dataPlane.bodyTimeout=12.5",
        "dataPlane.idleTimeout=60",
        "operator.dev.certificateValidityFloorSeconds=60",
    )
    for workload in (one(docs, "StatefulSet"), one(render(), "Deployment")):
        (container,) = _pod(workload)["containers"]
        assert container["command"] == ["kvault", "operator"]
        args = build_parser().parse_args(["operator", *container["args"]])
        assert args.data_dir.as_posix() == "/var/lib/kvault"
    assert args.storage == "sqlite"  # the Deployment, last
    (container,) = _pod(one(docs, "StatefulSet"))["containers"]
    args = build_parser().parse_args(["operator", *container["args"]])
    assert args.storage == "postgresql"
    assert args.storage_option == [
        "dsn_file=/etc/kvault/postgresql/dsn",
        "pool_size=4",
        "timeout=2.5",
        "cache_mb=16",
    ]
    assert (args.max_connections, args.max_connections_per_client) == (20000, 64)
    assert (args.header_timeout, args.body_timeout, args.idle_timeout) == (5.0, 12.5, 60.0)
    assert (args.vault_rate_limit, args.principal_rate_limit) == ("8000/10", "0")


@pytest.mark.parametrize("sets", [(), POSTGRESQL], ids=["sqlite", "postgresql"])
def test_lint_is_clean_on_both_backends(sets: tuple[str, ...]) -> None:
    args = [a for s in sets for a in ("--set", s)]
    res = _helm("lint", "--strict", str(CHART), *args)
    assert "0 chart(s) failed" in res.stdout, res.stdout


DOCS = CHART.parents[1] / "docs" / "helm.md"


def test_the_documented_postgresql_values_render(tmp_path: Path) -> None:
    """docs/helm.md's pg-values.yaml, as the page spells it."""
    text = DOCS.read_text()
    block = text.split("```yaml\n# pg-values.yaml\n", 1)[1].split("```", 1)[0]
    values = tmp_path / "pg-values.yaml"
    values.write_text(block)
    out = _helm("template", "kvault", str(CHART), "-n", NS, "-f", str(values)).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    (container,) = _pod(one(docs, "StatefulSet", "kvault"))["containers"]
    assert {"name": "KVAULT_ROOT_KEY", "valueFrom": {"secretKeyRef": {"name": "kvault-root",
            "key": "key"}}} in container["env"]  # fmt: skip
    assert "--hsm-option=key_env=KVAULT_ROOT_KEY" in container["args"]


def _comment_above(text: str, key: str) -> str:
    """The comment lines right above ``key:`` in values.yaml, as one line of text."""
    lines = text.splitlines()
    (at,) = [n for n, line in enumerate(lines) if line.strip().startswith(f"{key}:")]
    above = []
    for line in reversed(lines[:at]):
        if not line.strip().startswith("#"):
            break
        above.append(line.strip().removeprefix("#").strip())
    return " ".join(reversed(above))


def test_the_documented_data_plane_defaults_are_the_operators() -> None:
    """The defaults that docs/helm.md and values.yaml give for the dataPlane values are the
    ones ``kvault operator`` has, and each names its flag."""
    from kvault.cli.main import build_parser

    defaults = build_parser().parse_args(["operator", "--data-dir", "/d"])
    rows = [line for line in DOCS.read_text().splitlines() if line.startswith("| `")]
    values = (CHART / "values.yaml").read_text()
    for key, flag in (
        ("headerTimeout", "--header-timeout"),
        ("bodyTimeout", "--body-timeout"),
        ("idleTimeout", "--idle-timeout"),
        ("maxConnections", "--max-connections"),
        ("maxConnectionsPerClient", "--max-connections-per-client"),
        ("vaultRateLimit", "--vault-rate-limit"),
        ("principalRateLimit", "--principal-rate-limit"),
    ):
        value = getattr(defaults, flag[2:].replace("-", "_"))
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        (row,) = [r for r in rows if r.startswith(f"| `{key}` | `{flag}` |")]
        assert row.split("|")[3].strip().startswith((f"{shown} ", f"`{shown}`")), row
        comment = _comment_above(values, key)
        assert flag in comment, comment
        tail = comment.split(flag, 1)[1]
        assert f"; {shown}." in tail or f'; "{shown}"' in tail, comment
