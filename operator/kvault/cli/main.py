"""``kvault``: entry point and verb dispatch. Exit codes: 0 ok, 1 the check failed, 2 usage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kvault.cli import audit_cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kvault", description="kvault: a key vault for Kubernetes"
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    audit_cmd.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
