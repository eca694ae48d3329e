"""``python -m bench peers report``: the peers' figures into docs/performance.md, with a plot.

Reads what ``bench peers store`` and ``bench peers operator`` wrote (bench/results/*.json)
and rewrites only the part of docs/performance.md between its markers, so the other
sections of that page stay as they are; draws the latency distributions as an SVG (no
plotting library needed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
PLOT = ROOT / "docs" / "performance-latency.svg"
BEGIN = "<!-- peers:begin (python -m bench peers report) -->"
END = "<!-- peers:end -->"
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def save(report: dict[str, Any], text: str, path: Path) -> None:
    """What a peers bench ends with: its figures to ``path`` (read by :func:`write`) and to
    stdout as JSON, its table (``text``) to stderr."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(text, file=sys.stderr)
    print(f"figures: {path}", file=sys.stderr)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def store_section(doc: dict[str, Any]) -> list[str]:
    peer = doc["peer"]
    lines = [
        "### The store: kvault beside HashiCorp Vault",
        "",
        f"`{doc['command']}`; {doc['machine']['cores']} cores ({doc['machine']['cpu']}); one "
        f"load generator for every server ({doc['generator']['tool'].split(' [')[0]}, "
        f"{doc['generator']['connections']} connections over keep-alive TLS, a token); "
        f"{doc['rounds']} interleaved rounds of {doc['window_s']} s, medians. The peer: "
        f"`{peer['module']}` ({peer['license']}), built from its Go module. OpenBao was tried "
        f"first: {peer.get('openbao', 'built').rstrip('.')}.",
        "",
        "| operation | server | storage | req/s | p50 ms | p99 ms | kvault ÷ server, req/s |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for op, servers in doc["results"].items():
        for name, r in servers.items():
            ratio = doc["ratios"][op].get(f"kvault/{name}", {}).get("req_per_s")
            lines.append(
                f"| {op.upper()} | {name} | {doc['servers'][name]['storage']} | "
                f"{_num(r['req_per_s'])} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{'' if ratio is None else f'{ratio:.2f}'} |"
            )
    goal = doc["goals"]["get_req_per_s_ratio_min"]
    met = all(doc["goal_met"].values())
    lines += [
        "",
        f"Goal: kvault's GET at least {goal} times the peer's: {'met' if met else 'NOT met'} "
        f"({', '.join(f'{k} {v}' for k, v in doc['goal_met'].items())}). kvault writes an "
        "audit line for every read before it answers; Vault here runs without an audit device.",
        "",
        "![latency distributions](performance-latency.svg)",
    ]
    return lines


def operator_section(doc: dict[str, Any]) -> list[str]:
    """The operator bench's own table (it names its columns), and its goals."""
    lines = ["### The operator: kvault beside External Secrets Operator", ""]
    lines += [str(doc.get("summary", "")), ""] if doc.get("summary") else []
    table = doc.get("table")
    if isinstance(table, dict) and table.get("columns"):
        cols = table["columns"]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for row in table["rows"]:
            lines.append("| " + " | ".join(str(c) for c in row) + " |")
        lines.append("")
    for name, goal in (doc.get("goals") or {}).items():
        lines.append(f"- {name}: {goal}")
    return lines


def plot(doc: dict[str, Any]) -> str:
    """Latency at each percentile, one panel per operation, one line per server (SVG)."""
    ops = list(doc["results"])
    width, height, pad = 360, 260, 46
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * len(ops)}" '
        f'height="{height + 60}" font-family="sans-serif" font-size="11">'
    ]
    for i, op in enumerate(ops):
        servers = doc["results"][op]
        keys = list(next(iter(servers.values()))["percentiles_ms"])
        top = max(max(r["percentiles_ms"].values()) for r in servers.values()) * 1.05
        x0 = i * width + pad

        def x(k: int, x0: int = x0, n: int = len(keys)) -> float:
            return x0 + k * (width - pad - 16) / max(1, n - 1)

        def y(ms: float, top: float = top) -> float:
            return 20 + (height - 40) * (1 - ms / top)

        parts.append(f'<text x="{x0}" y="14" font-weight="bold">{op.upper()} latency (ms)</text>')
        parts.append(
            f'<line x1="{x0}" y1="{y(0)}" x2="{x(len(keys) - 1)}" y2="{y(0)}" stroke="#999"/>'
        )
        for t in range(5):
            ms = top * t / 4
            parts.append(f'<text x="{x0 - 6}" y="{y(ms) + 4}" text-anchor="end">{ms:.0f}</text>')
        for k, label in enumerate(keys):
            parts.append(
                f'<text x="{x(k)}" y="{y(0) + 14}" text-anchor="middle">p{float(label):g}</text>'
            )
        for c, (name, r) in enumerate(servers.items()):
            colour = COLOURS[c % len(COLOURS)]
            points = " ".join(
                f"{x(k):.1f},{y(r['percentiles_ms'][key]):.1f}" for k, key in enumerate(keys)
            )
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
            )
            parts.append(
                f'<text x="{x0 + 8}" y="{height + 10 + 13 * c}" fill="{colour}">{name}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write(doc_path: Path = DOC, plot_path: Path = PLOT) -> list[str]:
    """Rewrite the peers part of ``doc_path`` (created if missing); returns what it wrote."""
    store, operator = _load("peers-store.json"), _load("peers-operator.json")
    lines = ["## Side by side with the peers", ""]
    if operator is not None:
        lines += [*operator_section(operator), ""]
    if store is not None:
        lines += [*store_section(store), ""]
        plot_path.write_text(plot(store))
    lines += [
        "Nothing of the peers is committed: `make bench-peers` builds them from their Go "
        "modules into `~/.cache/kvault/<tool>/<version>` (a second run builds nothing; "
        "e2e/peers.py) and runs both benches. Licences of what is built: External Secrets "
        "Operator Apache-2.0; HashiCorp Vault BUSL-1.1 (its sdk MPL-2.0).",
    ]
    block = "\n".join([BEGIN, *lines, END]) + "\n"
    text = doc_path.read_text() if doc_path.exists() else "# Performance\n\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block
    doc_path.write_text(text)
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench peers report")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    write(args.doc, args.doc.with_name(PLOT.name))
    print(f"wrote {args.doc} and {args.doc.with_name(PLOT.name)}")
    return 0
