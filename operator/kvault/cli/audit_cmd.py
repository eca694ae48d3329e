"""``kvault audit verify FILE``: check the audit log's hash chain."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kvault.app.defaults import DEFAULT_HSM
from kvault.audit.verify import verify
from kvault.cli import flags
from kvault.errors import KvaultError

if TYPE_CHECKING:
    from kvault.app.audit_check import Unaudited
    from kvault.audit.checkpoint import Checkpoint


def register(groups: Any) -> None:
    audit = groups.add_parser("audit", help="work with audit logs")
    verbs = audit.add_subparsers(dest="verb", required=True, metavar="VERB")
    v = verbs.add_parser(
        "verify",
        help="check an audit log's hash chain (and, with --against, that every stored version "
        "has its line)",
    )
    v.add_argument("file", type=Path)
    v.add_argument(
        "--against",
        type=Path,
        metavar="DATA_DIR",
        help="kvault's data directory: cross-check every stored item version against the log "
        "(opened read only, with --hsm/--hsm-option as the server uses them)",
    )
    v.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a published audit checkpoint (audit.checkpoint, or a key of ConfigMap "
        "kvault-audit-checkpoint; - for stdin): report a cut tail; opened with the HSM",
    )
    v.add_argument("--hsm", default=DEFAULT_HSM, help="HSM plugin of that data directory")
    v.add_argument("--hsm-option", action="append", default=[], metavar="KEY=VALUE")
    v.add_argument("--dev-certificate-validity-floor", type=int, help=argparse.SUPPRESS)
    v.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        result = verify(path)
    except OSError as exc:
        print(f"kvault: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    if not result.ok:
        print(
            f"{path}: chain broken at line {result.broken_at}: {result.reason} "
            f"({result.lines} lines before it verified)"
        )
        return 1
    print(f"{path}: {result.lines} lines, chain intact")
    if args.checkpoint is not None:
        try:
            checkpoint, cut = asyncio.run(_checkpoint(args, path))
        except (OSError, ValueError, KvaultError) as exc:
            print(f"kvault: checkpoint {args.checkpoint}: {exc}", file=sys.stderr)
            return 2
        if cut is not None:
            print(f"{path}: {cut}")
            return 1
        print(f"{path}: holds the {checkpoint.lines} lines of the checkpoint of {checkpoint.time}")
    if args.against is None:
        return 0
    missing = asyncio.run(_cross_check(args, path))
    if not missing:
        print(f"{args.against}: every stored version has its audit line")
        return 0
    for m in missing:
        print(f"{args.against}: {m.kind} {m.vault}/{m.item} version {m.version}: no audit line")
    print(f"{args.against}: {len(missing)} stored versions have no audit line")
    return 1


async def _checkpoint(args: argparse.Namespace, path: Path) -> tuple[Checkpoint, str | None]:
    """The checkpoint, opened with the HSM of the data directory (``--against``, else the
    log's directory), and why the log does not continue it (``None``: it does)."""
    from kvault.app.audit_anchor import open_checkpoint
    from kvault.audit.checkpoint import against

    text = sys.stdin.read() if args.checkpoint == "-" else Path(args.checkpoint).read_text()
    hsm = flags.backends(args).build_hsm(args.against or path.parent)
    checkpoint = await open_checkpoint(json.loads(text), hsm)
    return checkpoint, against(path, checkpoint)


async def _cross_check(args: argparse.Namespace, path: Path) -> list[Unaudited]:
    from kvault.app.audit_check import audit_lines, unaudited_versions
    from kvault.app.backends import open_kvault

    backends = flags.backends(args)
    kv = await open_kvault(args.against, backends.build_hsm(args.against), backends=backends)
    try:
        return await unaudited_versions(kv, audit_lines(path))
    finally:
        await kv.close()
