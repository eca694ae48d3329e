"""Template rendering, content hashes and spec parsing: no cluster needed."""

from __future__ import annotations

import pytest

from kvault.controller.vaultsecret.controller import slim
from kvault.controller.vaultsecret.identity import principal_for
from kvault.controller.vaultsecret.plan import parse_duration, plan_of
from kvault.controller.vaultsecret.render import TemplateError, content_hash, render


def test_default_data_is_one_key_per_item() -> None:
    assert render({"a": "1", "b": "2"}, None) == {"a": "1", "b": "2"}


def test_template_substitutes_and_filters() -> None:
    out = render(
        {"user": "app", "pw": "p@ss"},
        {"dsn": "u={{ .user }} p={{ .pw }}", "b64": "{{ .pw | b64enc }}", "up": "{{.user|upper}}"},
    )
    assert out == {"dsn": "u=app p=p@ss", "b64": "cEBzcw==", "up": "APP"}


@pytest.mark.parametrize(
    "template",
    ["{{ .missing }}", "{{ .pw | evil }}", "{{ __import__('os') }}", "{{ .pw.__class__ }}"],
)
def test_bad_templates_name_keys_never_values(template: str) -> None:
    with pytest.raises(TemplateError) as err:
        render({"pw": "hunter2-secret"}, {"k": template})
    assert "hunter2-secret" not in str(err.value)


def test_content_hash_is_salted_and_order_free() -> None:
    a = content_hash("uid-1", {"x": "1", "y": "2"})
    assert a == content_hash("uid-1", {"y": "2", "x": "1"})
    assert a != content_hash("uid-2", {"x": "1", "y": "2"})
    assert a.startswith("sha256:") and len(a) == 7 + 64


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("1h30m", 5400), ("45s", 45), ("500ms", 0.5), ("0", 0), (None, 7), ("x", 7)],
)
def test_durations(text: str | None, seconds: float) -> None:
    assert parse_duration(text, 7) == seconds


def test_plan_defaults_and_cross_namespace_vault() -> None:
    body = {
        "metadata": {"namespace": "team-a", "name": "db", "uid": "u", "generation": 2},
        "spec": {
            "vaultRef": {"name": "shared", "namespace": "platform"},
            "data": [{"secretKey": "pw", "remoteRef": {"name": "db-password"}}],
        },
    }
    plan = plan_of(body, 3600)
    assert plan.vault == "shared.platform" and plan.vault_ref == "platform/shared"
    assert plan.sa == "default" and plan.target == "db" and plan.creation == "Owner"
    assert plan.items == [("pw", "db-password", "")] and plan.refresh == 3600


def test_principal_is_the_service_account_of_its_own_namespace() -> None:
    p = principal_for("team-a", "app")
    assert p.name == "system:serviceaccount:team-a:app"
    assert p.holds("team-a/app") and p.holds("system:serviceaccounts:team-a")
    assert not p.holds("team-b/app")


def test_store_keeps_what_a_reconcile_reads_and_plans_alike() -> None:
    body = {
        "apiVersion": "kvault.io/v1alpha1",
        "kind": "VaultSecret",
        "metadata": {
            "name": "db",
            "namespace": "app",
            "uid": "u-1",
            "generation": 3,
            "resourceVersion": "42",
            "finalizers": ["kvault.io/projection"],
            "annotations": {"big": "x" * 1000},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"vaultRef": {"name": "main"}, "data": [{"remoteRef": {"name": "pw"}}]},
        "status": {"contentHash": "h"},
    }
    kept = slim(body)
    assert "managedFields" not in kept["metadata"] and "annotations" not in kept["metadata"]
    assert kept["metadata"]["finalizers"] == ["kvault.io/projection"]
    assert kept["status"] == {"contentHash": "h"} and kept["kind"] == "VaultSecret"
    assert plan_of(kept, 60) == plan_of(body, 60)
