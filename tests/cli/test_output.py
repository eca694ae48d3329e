"""Output formats and --query behave like the Azure CLI's."""

from __future__ import annotations

import json

import pytest
import yaml

from kvault.cli.errors import CliError
from kvault.cli.output import render

SECRET = {
    "attributes": {"enabled": True, "created": "2026-01-01T00:00:00+00:00"},
    "id": "https://dev.localhost/secrets/SecretPassword/abc",
    "name": "SecretPassword",
    "value": "reindeer_flotilla",
    "tags": {},
}


def test_query_value_tsv_prints_the_bare_value() -> None:
    assert render(SECRET, "tsv", "value") == "reindeer_flotilla"


def test_json_and_yaml_round_trip() -> None:
    assert json.loads(render(SECRET, "json", None)) == SECRET
    assert yaml.safe_load(render(SECRET, "yaml", None)) == SECRET


def test_tsv_rows_hold_scalar_fields_in_key_order() -> None:
    rows = [{"name": "a", "enabled": True, "tags": {}}, {"name": "b", "enabled": False}]
    assert render(rows, "tsv", None) == "True\ta\nFalse\tb"


def test_table_has_headers_and_aligned_columns() -> None:
    out = render([{"name": "a", "id": "x1"}, {"name": "bbb", "id": "x2"}], "table", None)
    lines = out.splitlines()
    assert lines[0].split() == ["Name", "Id"]
    assert lines[2].split() == ["a", "x1"] and lines[3].split() == ["bbb", "x2"]


def test_query_projection_over_a_list() -> None:
    rows = [
        {"name": "a", "attributes": {"enabled": True}},
        {"name": "b", "attributes": {"enabled": False}},
    ]
    assert render(rows, "tsv", "[?attributes.enabled].name") == "a"


def test_a_bad_query_is_a_usage_error() -> None:
    with pytest.raises(CliError) as err:
        render(SECRET, "json", "[[[")
    assert err.value.exit_code == 2
