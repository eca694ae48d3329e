"""The Vault and VaultSecret CRDs on a real apiserver: install, defaults, validation, columns.

No controller runs here: everything checked is the apiserver's own work (structural schema,
defaults, CEL rules, printer columns, categories), plus the Helm chart's rendered objects.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from e2e import crds, kube, tools, versions
from e2e.fixtures import Cluster
from kvault.identity.rbac import ROLES

Obj = dict[str, Any]
Mutation = Callable[[Obj], None]

CHART = crds.ROOT / "charts" / "kvault"


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crd_names(kube_cluster: Cluster) -> list[str]:
    """Both CRDs applied (server-side) and Established."""
    return crds.apply_crds(kube_cluster.api)


@pytest.fixture(scope="module")
def ns(kube_cluster: Cluster, crd_names: list[str]) -> Iterator[str]:
    """One namespace for the whole module (no pods here, so no need to wait for its SA)."""
    name = f"e2e-crds-{uuid.uuid4().hex[:8]}"
    meta = client.V1ObjectMeta(name=name, labels={"kvault.io/e2e": "true"})
    kube_cluster.core.create_namespace(client.V1Namespace(metadata=meta))
    yield name
    kube.get_or_none(kube_cluster.core.delete_namespace, name)


@pytest.fixture(scope="module")
def objects(kube_cluster: Cluster) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_cluster.api)


def _plural(obj: Obj) -> str:
    return {"Vault": "vaults", "VaultSecret": "vaultsecrets"}[obj["kind"]]


def _create(api: client.CustomObjectsApi, ns: str, obj: Obj) -> Obj:
    created = api.create_namespaced_custom_object(crds.GROUP, crds.VERSION, ns, _plural(obj), obj)
    return cast(Obj, created)


def _unique(obj: Obj) -> Obj:
    """A copy with a fresh name so tests never collide in the shared namespace."""
    out = copy.deepcopy(obj)
    prefix = "v" if obj["kind"] == "Vault" else "vs"
    out["metadata"] = {"name": f"{prefix}-{uuid.uuid4().hex[:8]}"}
    return out


def _rejection(fn: Callable[[], object]) -> str:
    """Run a write the apiserver must refuse (422); return its message."""
    with pytest.raises(ApiException) as info:
        fn()
    assert info.value.status == 422, info.value.body
    message: str = json.loads(info.value.body or "{}")["message"]
    return message


def _kubectl(kubeconfig: str, *args: str) -> str:
    kubectl = versions.bin_dir() / "kubectl"
    binary = str(kubectl) if kubectl.exists() else shutil.which("kubectl")
    if binary is None:
        pytest.skip("no kubectl binary")
    done = subprocess.run(
        [binary, "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _resource_version(obj: client.V1CustomResourceDefinition) -> str:
    assert obj.metadata is not None
    return str(obj.metadata.resource_version)


# --- installation -----------------------------------------------------------------------


def test_crds_apply_cleanly_and_idempotently(kube_cluster: Cluster, crd_names: list[str]) -> None:
    assert sorted(crd_names) == ["vaults.kvault.io", "vaultsecrets.kvault.io"]
    ext = client.ApiextensionsV1Api(kube_cluster.api)

    def versions_now() -> dict[str, str]:
        return {n: _resource_version(ext.read_custom_resource_definition(n)) for n in crd_names}

    before = versions_now()
    assert crds.apply_crds(kube_cluster.api) == crd_names
    assert versions_now() == before  # an identical apply is a no-op
    for name in crd_names:
        crd = ext.read_custom_resource_definition(name)
        assert crd.spec.names.categories == ["kvault"]
        (version,) = crd.spec.versions
        assert (version.name, version.served, version.storage) == ("v1alpha1", True, True)
        assert version.subresources is not None and version.subresources.status is not None


def test_role_enum_matches_rbac_roles() -> None:
    (vault,) = (c for c in crds.load_crds() if c["spec"]["names"]["kind"] == "Vault")
    schema = vault["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    item = schema["properties"]["spec"]["properties"]["roleAssignments"]["items"]
    assert item["properties"]["role"]["enum"] == list(ROLES)


def test_examples_are_in_the_docs() -> None:
    text = (crds.ROOT / "docs" / "resources.md").read_text()
    for example in sorted(crds.EXAMPLES_DIR.glob("*.yaml")):
        assert f"examples/{example.name}" in text, f"{example.name} not referenced"


# --- valid manifests and defaults -------------------------------------------------------


@pytest.mark.parametrize("example", sorted(p.name for p in crds.EXAMPLES_DIR.glob("*.yaml")))
def test_every_docs_example_is_accepted(
    objects: client.CustomObjectsApi, ns: str, example: str
) -> None:
    docs = crds.load_examples(example)
    assert docs, example
    for obj in docs:
        objects.create_namespaced_custom_object(
            crds.GROUP, crds.VERSION, ns, _plural(obj), obj, dry_run="All"
        )


def test_minimal_vault_gets_defaults(objects: client.CustomObjectsApi, ns: str) -> None:
    (vault,) = crds.load_examples("vault-minimal.yaml")
    created = _create(objects, ns, vault)
    assert created["spec"] == {
        "sku": "standard",
        "softDeleteRetentionInDays": 90,
        "purgeProtection": False,
        "allowPurgeOnDelete": False,
    }


def test_full_vault_is_kept_as_written(objects: client.CustomObjectsApi, ns: str) -> None:
    (vault,) = crds.load_examples("vault-full.yaml")
    created = _create(objects, ns, vault)
    spec = created["spec"]
    assert spec["sku"] == "premium"
    assert spec["softDeleteRetentionInDays"] == 30
    assert spec["purgeProtection"] is True
    assignments = spec["roleAssignments"]
    assert len(assignments) == 4
    assert assignments[0]["scope"] == "/"  # defaulted
    assert assignments[1]["scope"] == "/secrets/db-password"
    assert "namespace" not in assignments[0]["principal"]["serviceAccount"]  # controller's job


def test_minimal_vaultsecret_gets_defaults(objects: client.CustomObjectsApi, ns: str) -> None:
    (vs,) = crds.load_examples("vaultsecret-minimal.yaml")
    spec = _create(objects, ns, vs)["spec"]
    assert spec["serviceAccountName"] == "default"
    assert spec["refreshInterval"] == "1h"
    assert spec["target"] == {
        "type": "Opaque",
        "creationPolicy": "Owner",
        "deletionPolicy": "Delete",
    }
    assert spec["data"] == [
        {"secretKey": "password", "remoteRef": {"name": "db-password", "kind": "Secret"}}
    ]
    assert "vaultRef" in spec and "namespace" not in spec["vaultRef"]


def test_full_vaultsecret_is_kept_as_written(objects: client.CustomObjectsApi, ns: str) -> None:
    (vs,) = crds.load_examples("vaultsecret-full.yaml")
    spec = _create(objects, ns, vs)["spec"]
    assert spec["serviceAccountName"] == "payments-api"
    assert spec["refreshInterval"] == "15m"
    assert spec["data"][1]["remoteRef"]["kind"] == "Secret"
    assert spec["dataFrom"] == [
        {"prefix": "feature-flag-"},
        {"tag": {"name": "app", "value": "payments-api"}},
    ]
    target = spec["target"]
    assert target["name"] == "payments-api-config"
    assert target["template"]["mergePolicy"] == "Merge"
    assert target["deletionPolicy"] == "Retain"
    assert [r["kind"] for r in spec["rolloutRestart"]] == ["Deployment", "StatefulSet"]


def test_keystores_get_their_defaults(objects: client.CustomObjectsApi, ns: str) -> None:
    (vs,) = crds.load_examples("vaultsecret-keystores.yaml")
    del vs["spec"]["data"][0]["keystores"]["pkcs12"]["profile"]
    (entry,) = _create(objects, ns, _unique(vs))["spec"]["data"]
    assert entry["keystores"] == {
        "pkcs12": {
            "create": True,
            "passwordRef": {"kind": "Secret", "name": "web-keystore-password"},
            "profile": "Modern2023",
        }
    }


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(
            {
                "vaultRef": {"name": "v"},
                "data": [
                    {"secretKey": "tls.crt", "remoteRef": {"name": "web", "kind": "Certificate"}}
                ],
                "target": {"type": "kubernetes.io/tls", "template": {"data": {"tls.key": "x"}}},
            },
            id="tls-from-data-and-template",
        ),
        pytest.param(
            {
                "vaultRef": {"name": "v"},
                "data": [{"secretKey": ".dockerconfigjson", "remoteRef": {"name": "registry"}}],
                "target": {"type": "kubernetes.io/dockerconfigjson"},
            },
            id="dockerconfigjson",
        ),
        pytest.param(
            {
                "vaultRef": {"name": "v"},
                "data": [
                    {
                        "secretKey": "web",
                        "remoteRef": {"name": "web", "kind": "Certificate"},
                        "keystores": {
                            "pkcs12": {
                                "create": True,
                                "passwordRef": {"name": "web-pw", "version": "0" * 32},
                                "profile": "LegacyDES",
                            }
                        },
                    }
                ],
            },
            id="certificate-keystores-legacy-des",
        ),
        pytest.param({"vaultRef": {"name": "v"}, "dataFrom": [{"prefix": ""}]}, id="prefix-all"),
        pytest.param(
            {"vaultRef": {"name": "v"}, "dataFrom": [{"prefix": "a"}], "refreshInterval": "0"},
            id="refresh-disabled",
        ),
        pytest.param(
            {"vaultRef": {"name": "v"}, "dataFrom": [{"prefix": "a"}], "refreshInterval": "1h30m"},
            id="refresh-compound",
        ),
    ],
)
def test_other_valid_vaultsecrets(objects: client.CustomObjectsApi, ns: str, spec: Obj) -> None:
    obj = _unique({"apiVersion": "kvault.io/v1alpha1", "kind": "VaultSecret", "spec": spec})
    _create(objects, ns, obj)


# --- malformed manifests ----------------------------------------------------------------


def _set(path: str, value: Any) -> Mutation:
    """Set a dotted path (list indexes as numbers), creating dicts on the way."""

    def mutate(obj: Obj) -> None:
        *parents, last = path.split(".")
        node: Any = obj
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(obj: Obj) -> None:
        *parents, last = path.split(".")
        node: Any = obj
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return mutate


VAULT: Obj = {
    "apiVersion": "kvault.io/v1alpha1",
    "kind": "Vault",
    "metadata": {"name": "placeholder"},
    "spec": {
        "roleAssignments": [
            {"principal": {"serviceAccount": {"name": "app"}}, "role": "Key Vault Secrets User"}
        ]
    },
}
VAULT_SECRET: Obj = {
    "apiVersion": "kvault.io/v1alpha1",
    "kind": "VaultSecret",
    "metadata": {"name": "placeholder"},
    "spec": {
        "vaultRef": {"name": "app-vault"},
        "data": [{"secretKey": "password", "remoteRef": {"name": "db-password"}}],
    },
}
RA = "spec.roleAssignments.0"


def _set_rows(base: Obj, rows: list[tuple[str, str, Any, list[str]]]) -> list[Any]:
    """One rejection case per row: ``base`` with ``value`` set at the dotted path."""
    return [
        pytest.param(base, _set(path, value), expected, id=id_)
        for id_, path, value, expected in rows
    ]


# (base, mutation, substrings the apiserver's message must contain: the field, and a hint)
REJECTED: list[Any] = [
    # --- Vault: (id, dotted path, value set there, substrings)
    *_set_rows(
        VAULT,
        [
            (
                "retention-6",
                "spec.softDeleteRetentionInDays",
                6,
                ["spec.softDeleteRetentionInDays", "greater than or equal to 7"],
            ),
            (
                "retention-91",
                "spec.softDeleteRetentionInDays",
                91,
                ["spec.softDeleteRetentionInDays", "less than or equal to 90"],
            ),
            ("sku-bogus", "spec.sku", "bogus", ["spec.sku", "standard"]),
            (
                "role-unknown",
                f"{RA}.role",
                "Key Vault Janitor",
                ["spec.roleAssignments[0].role", "Key Vault Secrets User"],
            ),
            ("role-short-form", f"{RA}.role", "Secrets User", ["spec.roleAssignments[0].role"]),
            (
                "principal-two-kinds",
                f"{RA}.principal.user",
                "alice",
                [
                    "spec.roleAssignments[0].principal",
                    "exactly one of serviceAccount, user or group",
                ],
            ),
            (
                "principal-none",
                f"{RA}.principal",
                {},
                ["spec.roleAssignments[0].principal", "exactly one of"],
            ),
            (
                "principal-sa-name",
                f"{RA}.principal.serviceAccount.name",
                "Not_A_Name",
                ["spec.roleAssignments[0].principal.serviceAccount.name"],
            ),
            ("scope-no-name", f"{RA}.scope", "/secrets/", ["spec.roleAssignments[0].scope"]),
            ("scope-bad-kind", f"{RA}.scope", "/vaults/x", ["spec.roleAssignments[0].scope"]),
            ("scope-bad-name", f"{RA}.scope", "/secrets/a_b", ["spec.roleAssignments[0].scope"]),
            (
                "too-many-assignments",
                "spec.roleAssignments",
                [VAULT["spec"]["roleAssignments"][0]] * 257,
                ["spec.roleAssignments", "must have at most 256 items"],
            ),
            ("name-not-dns1035", "metadata.name", "1vault", ["metadata.name"]),
            (
                "purge-protection-not-bool",
                "spec.purgeProtection",
                "yes",
                ["spec.purgeProtection", "boolean"],
            ),
        ],
    ),
    # --- VaultSecret: (id, dotted path, value set there, substrings)
    *_set_rows(
        VAULT_SECRET,
        [
            ("vaultref-bad-name", "spec.vaultRef.name", "App_Vault", ["spec.vaultRef.name"]),
            (
                "item-name-underscore",
                "spec.data.0.remoteRef.name",
                "db_password",
                ["spec.data[0].remoteRef.name"],
            ),
            (
                "item-name-too-long",
                "spec.data.0.remoteRef.name",
                "x" * 128,
                ["spec.data[0].remoteRef.name"],
            ),
            (
                "version-uppercase",
                "spec.data.0.remoteRef.version",
                "ABCDEF" + "0" * 26,
                ["spec.data[0].remoteRef.version"],
            ),
            (
                "version-word",
                "spec.data.0.remoteRef.version",
                "latest",
                ["spec.data[0].remoteRef.version"],
            ),
            (
                "remote-kind-bogus",
                "spec.data.0.remoteRef.kind",
                "Blob",
                ["spec.data[0].remoteRef.kind", "Certificate"],
            ),
            (
                "keystores-on-a-secret",
                "spec.data.0.keystores",
                {"pkcs12": {"create": True, "passwordRef": {"name": "pw"}}},
                ["spec.data[0].keystores", "keystores apply to remoteRef.kind Certificate only"],
            ),
            ("secretkey-slash", "spec.data.0.secretKey", "a/b", ["spec.data[0].secretKey"]),
            ("secretkey-dotdot", "spec.data.0.secretKey", "..", ["spec.data[0].secretKey", "'..'"]),
            (
                "secretkey-duplicate",
                "spec.data",
                [
                    {"secretKey": "k", "remoteRef": {"name": "a"}},
                    {"secretKey": "k", "remoteRef": {"name": "b"}},
                ],
                ["spec.data[1]", "Duplicate value"],
            ),
            (
                "datafrom-both",
                "spec.dataFrom",
                [{"prefix": "a", "tag": {"name": "t", "value": "v"}}],
                ["spec.dataFrom[0]", "exactly one of prefix or tag"],
            ),
            (
                "datafrom-neither",
                "spec.dataFrom",
                [{}],
                ["spec.dataFrom[0]", "exactly one of prefix or tag"],
            ),
            (
                "datafrom-tag-no-value",
                "spec.dataFrom",
                [{"tag": {"name": "t"}}],
                ["spec.dataFrom[0].tag.value", "Required value"],
            ),
            (
                "target-type-bogus",
                "spec.target.type",
                "kubernetes.io/basic-auth",
                ["spec.target.type", "Opaque"],
            ),
            (
                "target-tls-without-keys",
                "spec.target.type",
                "kubernetes.io/tls",
                ["spec.target.type", "tls.crt and tls.key"],
            ),
            (
                "target-dockerconfig-without-key",
                "spec.target.type",
                "kubernetes.io/dockerconfigjson",
                ["spec.target.type", ".dockerconfigjson"],
            ),
            ("target-name-invalid", "spec.target.name", "Bad_Name", ["spec.target.name"]),
            (
                "creation-policy-bogus",
                "spec.target.creationPolicy",
                "CreateOrMerge",
                ["spec.target.creationPolicy", "Owner"],
            ),
            (
                "deletion-policy-bogus",
                "spec.target.deletionPolicy",
                "Orphan",
                ["spec.target.deletionPolicy", "Retain"],
            ),
            (
                "label-value-invalid",
                "spec.target.labels",
                {"app": "not valid!"},
                ["spec.target.labels.app"],
            ),
            (
                "label-key-invalid",
                "spec.target.labels",
                {"-bad/key": "v"},
                ["spec.target.labels", "qualified names"],
            ),
            (
                "annotation-key-invalid",
                "spec.target.annotations",
                {"a b": "v"},
                ["spec.target.annotations", "qualified names"],
            ),
            (
                "template-key-invalid",
                "spec.target.template",
                {"data": {"a/b": "x"}},
                ["spec.target.template.data", "valid Secret keys"],
            ),
            ("refresh-days", "spec.refreshInterval", "1d", ["spec.refreshInterval"]),
            ("refresh-word", "spec.refreshInterval", "hourly", ["spec.refreshInterval"]),
            (
                "refresh-too-short",
                "spec.refreshInterval",
                "500ms",
                ["spec.refreshInterval", "at least 10s"],
            ),
            (
                "rollout-kind-bogus",
                "spec.rolloutRestart",
                [{"kind": "Job", "name": "x"}],
                ["spec.rolloutRestart[0].kind", "Deployment"],
            ),
            (
                "rollout-no-name",
                "spec.rolloutRestart",
                [{"kind": "Deployment"}],
                ["spec.rolloutRestart[0].name", "Required value"],
            ),
            (
                "rollout-too-many",
                "spec.rolloutRestart",
                [{"kind": "Deployment", "name": f"d{i}"} for i in range(33)],
                ["spec.rolloutRestart", "must have at most 32 items"],
            ),
            (
                "service-account-invalid",
                "spec.serviceAccountName",
                "Bad SA",
                ["spec.serviceAccountName"],
            ),
        ],
    ),
    # --- other mutations
    pytest.param(
        VAULT,
        _drop(f"{RA}.principal"),
        ["spec.roleAssignments[0].principal", "Required value"],
        id="principal-missing",
    ),
    pytest.param(
        VAULT,
        lambda o: o["spec"].update(purgeProtection=True, allowPurgeOnDelete=True),
        ["spec.allowPurgeOnDelete", "purgeProtection"],
        id="purge-on-delete-with-protection",
    ),
    *[
        pytest.param(
            VAULT_SECRET,
            _set(
                "spec.data.0",
                {
                    "secretKey": "tls",
                    "remoteRef": {"name": "web", "kind": "Certificate"},
                    "keystores": {"pkcs12": pkcs12},
                },
            ),
            expected,
            id=id_,
        )
        for id_, pkcs12, expected in (
            (
                "keystore-profile-rc2",
                {"create": True, "passwordRef": {"name": "pw"}, "profile": "LegacyRC2"},
                ["spec.data[0].keystores.pkcs12.profile", 'supported values: "Modern2023"'],
            ),
            (
                "keystore-no-password",
                {"create": True},
                ["spec.data[0].keystores.pkcs12.passwordRef", "Required value"],
            ),
            (
                "keystore-password-kind",
                {"create": True, "passwordRef": {"name": "pw", "kind": "Certificate"}},
                ["spec.data[0].keystores.pkcs12.passwordRef.kind", '"Secret"'],
            ),
            (
                "keystore-password-name",
                {"create": True, "passwordRef": {"name": "pw_1"}},
                ["spec.data[0].keystores.pkcs12.passwordRef.name"],
            ),
            (
                "keystore-create-not-bool",
                {"create": "yes", "passwordRef": {"name": "pw"}},
                ["spec.data[0].keystores.pkcs12.create", "boolean"],
            ),
        )
    ],
    pytest.param(
        VAULT_SECRET,
        _drop("spec.vaultRef"),
        ["spec.vaultRef", "Required value"],
        id="vaultref-missing",
    ),
    pytest.param(
        VAULT_SECRET,
        _drop("spec.data"),
        ["spec.data", "at least one of data or dataFrom"],
        id="no-data-nor-datafrom",
    ),
    pytest.param(
        VAULT_SECRET,
        lambda o: o["spec"].update(data=[], dataFrom=[]),
        ["spec.data", "at least one of data or dataFrom"],
        id="empty-data-and-datafrom",
    ),
]


@pytest.mark.parametrize(("base", "mutate", "expected"), REJECTED)
def test_malformed_manifest_is_rejected_naming_the_field(
    objects: client.CustomObjectsApi,
    ns: str,
    base: Obj,
    mutate: Mutation,
    expected: list[str],
) -> None:
    obj = _unique(base)
    mutate(obj)
    message = _rejection(lambda: _create(objects, ns, obj))
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_rejection_table_is_large_enough() -> None:
    assert len(REJECTED) >= 20


# --- updates (CEL transition rules) ----------------------------------------------------


def _patch(api: client.CustomObjectsApi, ns: str, obj: Obj, patch: Obj) -> Obj:
    result = api.patch_namespaced_custom_object(
        crds.GROUP, crds.VERSION, ns, _plural(obj), obj["metadata"]["name"], patch
    )
    return cast(Obj, result)


def test_purge_protection_cannot_be_turned_off(objects: client.CustomObjectsApi, ns: str) -> None:
    vault = _unique(VAULT)
    vault["spec"]["purgeProtection"] = True
    _create(objects, ns, vault)
    message = _rejection(lambda: _patch(objects, ns, vault, {"spec": {"purgeProtection": False}}))
    assert "spec.purgeProtection" in message
    assert "cannot be turned off" in message


def test_purge_protection_can_be_turned_on(objects: client.CustomObjectsApi, ns: str) -> None:
    vault = _unique(VAULT)
    _create(objects, ns, vault)
    patched = _patch(objects, ns, vault, {"spec": {"purgeProtection": True}})
    assert patched["spec"]["purgeProtection"] is True
    # ...and then purge-on-delete is refused on update too.
    message = _rejection(lambda: _patch(objects, ns, vault, {"spec": {"allowPurgeOnDelete": True}}))
    assert "spec.allowPurgeOnDelete" in message


def test_retention_is_immutable(objects: client.CustomObjectsApi, ns: str) -> None:
    vault = _unique(VAULT)
    _create(objects, ns, vault)
    message = _rejection(
        lambda: _patch(objects, ns, vault, {"spec": {"softDeleteRetentionInDays": 30}})
    )
    assert "spec.softDeleteRetentionInDays" in message
    assert "immutable" in message
    # Other fields still change.
    patched = _patch(objects, ns, vault, {"spec": {"sku": "premium"}})
    assert patched["spec"]["sku"] == "premium"


def test_target_name_is_immutable(objects: client.CustomObjectsApi, ns: str) -> None:
    vs = _unique(VAULT_SECRET)
    vs["spec"]["target"] = {"name": "first"}
    _create(objects, ns, vs)
    message = _rejection(lambda: _patch(objects, ns, vs, {"spec": {"target": {"name": "second"}}}))
    assert "spec.target.name" in message
    # Other target fields may change.
    patched = _patch(objects, ns, vs, {"spec": {"target": {"labels": {"team": "a"}}}})
    assert patched["spec"]["target"]["labels"] == {"team": "a"}


# --- status, printer columns, categories ------------------------------------------------


def _condition(type_: str, status: str, reason: str) -> Obj:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 1,
    }


def _write_status(api: client.CustomObjectsApi, ns: str, obj: Obj, status: Obj) -> Obj:
    result = api.patch_namespaced_custom_object_status(
        crds.GROUP, crds.VERSION, ns, _plural(obj), obj["metadata"]["name"], {"status": status}
    )
    return cast(Obj, result)


@pytest.fixture(scope="module")
def listed(
    objects: client.CustomObjectsApi, kube_cluster: Cluster
) -> Iterator[tuple[str, Obj, Obj]]:
    """A namespace holding one Vault and one VaultSecret with the status a controller writes."""
    name = f"e2e-crds-{uuid.uuid4().hex[:8]}"
    kube_cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    vault = _unique(VAULT)
    vs = _unique(VAULT_SECRET)
    vs["spec"]["vaultRef"]["name"] = vault["metadata"]["name"]
    _create(objects, name, vault)
    _create(objects, name, vs)
    vault_uri = f"https://{vault['metadata']['name']}.{name}.svc"
    written = _write_status(objects, name, vault, {
        "conditions": [_condition("Ready", "True", "Provisioned")],
        "observedGeneration": 1,
        "vaultUri": vault_uri,
        "itemCounts": {"secrets": 3, "deletedSecrets": 1},
        "caConfigMap": "kvault-ca",
        "kopf": {"progress": {"anything": {"retries": 1}}},
    })  # fmt: skip
    assert written["status"]["vaultUri"] == vault_uri
    assert written["status"]["kopf"]["progress"] == {"anything": {"retries": 1}}
    written = _write_status(objects, name, vs, {
        "conditions": [
            _condition("Ready", "True", "Synced"),
            _condition("Synced", "True", "Synced"),
        ],
        "observedGeneration": 1,
        "secretName": vs["metadata"]["name"],
        "syncedVersions": {"password": "0" * 32},
        "contentHash": "sha256:" + "ab" * 32,
        "lastSyncTime": "2026-01-01T00:00:00Z",
    })  # fmt: skip
    assert written["status"]["syncedVersions"] == {"password": "0" * 32}
    yield name, vault, vs
    kube.get_or_none(kube_cluster.core.delete_namespace, name)


def test_status_rejects_malformed_conditions(objects: client.CustomObjectsApi, ns: str) -> None:
    vault = _unique(VAULT)
    _create(objects, ns, vault)
    bad = _condition("Ready", "Maybe", "Provisioned")
    message = _rejection(lambda: _write_status(objects, ns, vault, {"conditions": [bad]}))
    assert "status.conditions[0].status" in message


def _table(api: client.ApiClient, ns: str, plural: str) -> Obj:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io"
    response = api.call_api(
        *api.param_serialize(
            "GET",
            f"/apis/{crds.GROUP}/{crds.VERSION}/namespaces/{ns}/{plural}",
            header_params={"Accept": accept},
        )
    )
    response.read()  # type: ignore[no-untyped-call]
    return cast(Obj, json.loads(response.data or b"{}"))


def _rows(table: Obj) -> list[dict[str, Any]]:
    names = [c["name"] for c in table["columnDefinitions"]]
    return [dict(zip(names, row["cells"], strict=True)) for row in table["rows"]]


def test_printer_columns_via_table_api(kube_cluster: Cluster, listed: tuple[str, Obj, Obj]) -> None:
    name, vault, vs = listed
    vault_table = _table(kube_cluster.api, name, "vaults")
    columns = [(c["name"], c["priority"]) for c in vault_table["columnDefinitions"]]
    assert columns == [
        ("Name", 0), ("Ready", 0), ("URI", 0), ("Secrets", 0), ("SKU", 1), ("Reason", 1), ("Age", 0)
    ]  # fmt: skip
    (row,) = _rows(vault_table)
    assert row["Name"] == vault["metadata"]["name"]
    assert row["Ready"] == "True"
    assert row["URI"] == f"https://{vault['metadata']['name']}.{name}.svc"
    assert row["Secrets"] == 3
    assert row["SKU"] == "standard"
    assert row["Reason"] == "Provisioned"

    vs_table = _table(kube_cluster.api, name, "vaultsecrets")
    columns = [(c["name"], c["priority"]) for c in vs_table["columnDefinitions"]]
    assert columns == [
        ("Name", 0), ("Ready", 0), ("Vault", 0), ("Secret", 0), ("Synced", 0),
        ("Reason", 1), ("Refresh", 1), ("Age", 0),
    ]  # fmt: skip
    (row,) = _rows(vs_table)
    assert row["Ready"] == "True"
    assert row["Vault"] == vault["metadata"]["name"]
    assert row["Secret"] == vs["metadata"]["name"]
    assert row["Reason"] == "Synced"
    assert row["Refresh"] == "1h"


def test_kubectl_wide_category_and_short_names(
    kube_cluster: Cluster, listed: tuple[str, Obj, Obj]
) -> None:
    name, vault, vs = listed
    wide = _kubectl(kube_cluster.kubeconfig, "get", "vaults,vaultsecrets", "-o", "wide", "-n", name)
    lines = wide.splitlines()
    assert lines[0].split() == ["NAME", "READY", "URI", "SECRETS", "SKU", "REASON", "AGE"]
    assert f"vault.kvault.io/{vault['metadata']['name']}" in wide
    assert f"https://{vault['metadata']['name']}.{name}.svc" in wide
    assert "READY   VAULT" in wide and "REFRESH" in wide

    category = _kubectl(kube_cluster.kubeconfig, "get", "kvault", "-n", name, "-o", "name")
    assert sorted(category.split()) == sorted(
        [
            f"vault.kvault.io/{vault['metadata']['name']}",
            f"vaultsecret.kvault.io/{vs['metadata']['name']}",
        ]
    )
    short = _kubectl(kube_cluster.kubeconfig, "get", "kv,kvs,vsecret", "-n", name, "-o", "name")
    assert sorted(short.split()) == sorted(category.split())  # kubectl lists each object once


# --- the Helm chart ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> str:
    """helm from $KVAULT_HELM, else the one built from its Go module (``make install`` and
    ``e2e.tools`` build it, cached by version): never a skip."""
    return os.environ.get("KVAULT_HELM") or str(tools.ensure("helm"))


def _render(helm: str, namespace: str, *sets: str) -> list[Obj]:
    args = [helm, "template", "kvault", str(CHART), "--namespace", namespace]
    for value in sets:
        args += ["--set", value]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_rendered_chart_passes_server_dry_run(
    helm: str, kube_cluster: Cluster, ns: str, tmp_path: Path
) -> None:
    rendered = tmp_path / "kvault.yaml"
    rendered.write_text(yaml.safe_dump_all(_render(helm, ns)))
    out = _kubectl(
        kube_cluster.kubeconfig, "apply", "--dry-run=server", "--server-side", "-f", str(rendered)
    )
    assert out.count("(server dry run)") == len(_render(helm, ns)), out
