"""``template.mergePolicy``: Replace keeps only the template's keys, Merge keeps the items'
keys beside them (a template key wins). The e2e test shows it in a real Secret."""

from __future__ import annotations

from typing import Any

from kvault.controller.vaultsecret.plan import plan_of
from kvault.controller.vaultsecret.render import render


def _body(template: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "vs", "uid": "u"},
        "spec": {
            "vaultRef": {"name": "main"},
            "data": [{"secretKey": "user", "remoteRef": {"name": "db-user"}}],
            "target": {"template": template},
        },
    }


def test_merge_policy_is_read_from_the_spec() -> None:
    assert not plan_of(_body({"data": {"a": "{{ .user }}"}}), 0).merge_templates
    assert not plan_of(_body({"mergePolicy": "Replace", "data": {"a": "x"}}), 0).merge_templates
    assert plan_of(_body({"mergePolicy": "Merge", "data": {"a": "x"}}), 0).merge_templates


def test_replace_keeps_only_template_keys_and_merge_keeps_items_too() -> None:
    values = {"user": "app", "pw": "p"}
    templates = {"dsn": "{{ .user }}:{{ .pw }}", "pw": "{{ .pw | upper }}"}
    assert render(values, templates) == {"dsn": "app:p", "pw": "P"}
    assert render(values, templates, merge=True) == {"user": "app", "pw": "P", "dsn": "app:p"}
    assert render(values, None, merge=True) == values
