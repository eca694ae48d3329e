"""Output like the Azure CLI: ``-o json|jsonc|table|tsv|yaml|none`` and ``--query``
(JMESPath)."""

from __future__ import annotations

import json
import sys
from typing import Any

import jmespath
import yaml

from kvault.cli.errors import EXIT_USAGE, CliError

FORMATS = ("json", "jsonc", "table", "tsv", "yaml", "none")


def render(data: Any, fmt: str, query: str | None) -> str:
    if fmt == "none":  # az's -o none: the exit code says how it went
        return ""
    if query:
        try:
            data = jmespath.search(query, data)
        except jmespath.exceptions.JMESPathError as exc:
            raise CliError(f"invalid --query {query!r}: {exc}", EXIT_USAGE) from None
    if data is None:
        return ""
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=True)
    if fmt == "jsonc":
        return _colour(json.dumps(data, indent=2, sort_keys=True))
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=True, default_flow_style=False).rstrip("\n")
    if fmt == "tsv":
        return "\n".join("\t".join(_scalar(v) for v in _row_values(row)) for row in _rows(data))
    return _table(data)


def _rows(data: Any) -> list[Any]:
    return data if isinstance(data, list) else [data]


def _row_values(row: Any) -> list[Any]:
    """The scalar fields of a row in key order (nested objects are left out, as az does)."""
    if isinstance(row, dict):
        return [v for _, v in sorted(row.items()) if not isinstance(v, dict | list)]
    if isinstance(row, list):
        return [v for v in row if not isinstance(v, dict | list)]
    return [row]


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _table(data: Any) -> str:
    rows = [r if isinstance(r, dict) else {"Result": r} for r in _rows(data)]
    columns: list[str] = []
    for row in rows:
        for key, value in row.items():
            if not isinstance(value, dict | list) and key not in columns:
                columns.append(key)
    if not columns:
        return ""
    cells = [[_scalar(row.get(c)) for c in columns] for row in rows]
    headers = [c[:1].upper() + c[1:] for c in columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _colour(text: str) -> str:
    if not sys.stdout.isatty():
        return text
    out = []
    for line in text.splitlines():
        key, sep, rest = line.partition('": ')
        out.append(f'\x1b[94m{key}"\x1b[0m: \x1b[32m{rest}\x1b[0m' if sep else line)
    return "\n".join(out)
