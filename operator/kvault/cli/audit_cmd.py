"""``kvault audit verify FILE``: check the audit log's hash chain."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kvault.audit.verify import verify


def register(groups: Any) -> None:
    audit = groups.add_parser("audit", help="work with audit logs")
    verbs = audit.add_subparsers(dest="verb", required=True, metavar="VERB")
    v = verbs.add_parser("verify", help="check an audit log's hash chain")
    v.add_argument("file", type=Path)
    v.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        result = verify(path)
    except OSError as exc:
        print(f"kvault: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    if result.ok:
        print(f"{path}: {result.lines} lines, chain intact")
        return 0
    print(
        f"{path}: chain broken at line {result.broken_at}: {result.reason} "
        f"({result.lines} lines before it verified)"
    )
    return 1
