"""``kvault``: entry point and verb dispatch (exit codes: :mod:`kvault.cli.errors`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kvault.cli import audit_cmd, certificate_cmd, key_cmd, operator_cmd, secret_cmd, server_cmd
from kvault.cli.errors import CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kvault", description="kvault: a key vault for Kubernetes"
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    audit_cmd.register(groups)
    certificate_cmd.register(groups)
    key_cmd.register(groups)
    operator_cmd.register(groups)
    secret_cmd.register(groups)
    server_cmd.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except CliError as exc:
        print(f"ERROR: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
