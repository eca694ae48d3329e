"""``kvault``: entry point and verb dispatch (exit codes: :mod:`kvault.cli.errors`)."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import NoReturn

from kvault.cli import (
    audit_cmd,
    azcloud_cmd,
    certificate_cmd,
    key_cmd,
    operator_cmd,
    secret_cmd,
    server_cmd,
    storage_cmd,
    vault_cmd,
)
from kvault.cli.errors import EXIT_USAGE, CliError

#: Where an ``az keyvault`` user looks for what kvault does elsewhere.
_ELSEWHERE = {
    "vault": "vaults are Kubernetes resources here: `kubectl apply -f` a Vault "
    "(docs/resources.md); `kvault secret|key|certificate --vault-name` use them, "
    "`kvault vault backup|restore` copy a whole one",
    "keyvault": "kvault's commands are the groups of `az keyvault`: `kvault secret set ...`",
}


class _Parser(argparse.ArgumentParser):
    """argparse, with az's words for an unknown command (and a suggestion)."""

    def error(self, message: str) -> NoReturn:
        found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if found:
            word = found.group(1)
            choices = [c.strip(" '") for c in found.group(2).split(",")]
            lines = [f"'{word}' is misspelled or not recognized by the system."]
            hint = _ELSEWHERE.get(word)
            close = difflib.get_close_matches(word, choices, n=1)
            group = _ELSEWHERE.get(self.prog.split()[-1])  # an unknown verb of `kvault vault`
            if hint:
                lines.append(hint)
            elif close:
                lines.append(f"Did you mean '{close[0]}'?")
            if group and not hint:
                lines.append(group)
            lines.append(f"Commands here: {', '.join(choices)} (`{self.prog} -h`).")
            self.exit(EXIT_USAGE, "".join(f"{self.prog}: error: {ln}\n" for ln in lines[:1])
                      + "".join(f"{ln}\n" for ln in lines[1:]))  # fmt: skip
        super().error(message)


#: Options whose value may start with "-" (``--value -abc``, as a secret may).
_DASH_VALUES = ("--value",)


def _dash_values(argv: Sequence[str]) -> list[str]:
    """``--value -abc`` as ``--value=-abc``: argparse would read ``-abc`` as an option."""
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in _DASH_VALUES:
            following = next(args, None)
            if following is not None and following.startswith("-") and following != "--":
                out.append(f"{arg}={following}")
                continue
            out.append(arg)
            if following is not None:
                out.append(following)
            continue
        out.append(arg)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kvault", description="kvault: a key vault for Kubernetes")
    parser.add_argument("--version", action="version", version=f"kvault {_version()}")
    groups = parser.add_subparsers(
        dest="group", required=True, metavar="COMMAND", parser_class=_Parser
    )
    audit_cmd.register(groups)
    azcloud_cmd.register(groups)
    certificate_cmd.register(groups)
    key_cmd.register(groups)
    operator_cmd.register(groups)
    secret_cmd.register(groups)
    server_cmd.register(groups)
    storage_cmd.register(groups)
    vault_cmd.register(groups)
    return parser


def _version() -> str:
    try:
        return metadata.version("kvault")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_dash_values(sys.argv[1:] if argv is None else argv))
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
