"""``kvault storage migrate``: move a whole installation's rows to another backend.

::

    kvault storage migrate --from sqlite:/var/lib/kvault --to-dsn-env KVAULT_PG_DSN

Copies every row (ciphertext, byte for byte) into an empty store in batches, then counts and
hashes both sides. Progress goes to stderr, the report to stdout. Exit codes: 0 copied and
verified; 1 refused (destination not empty, source empty) or the copy does not match its
source; 2 bad flags or configuration; 3 the source file does not exist; 5 a database cannot
be reached. See docs/storage.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from kvault.cli.errors import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_UNREACHABLE, EXIT_USAGE, CliError
from kvault.errors import ConfigError, KvaultError, NotFound, Unavailable

if TYPE_CHECKING:
    from kvault.app.migration import Migration

_DEFAULT_BATCH = 500


def register(groups: Any) -> None:
    storage = groups.add_parser("storage", help="work with kvault's storage backends")
    verbs = storage.add_subparsers(dest="verb", required=True, metavar="VERB")
    m = verbs.add_parser(
        "migrate",
        help="copy every row of a store into an empty one (SQLite, PostgreSQL) and verify",
        description="Copy every row of a stopped kvault's store into an empty store, in "
        "batches, then verify row counts and SHA-256 digests of both. Rows stay ciphertext: "
        "run kvault on the destination with the same --hsm/--hsm-option as before.",
    )
    for side, what in (("from", "source"), ("to", "destination")):
        m.add_argument(
            f"--{side}",
            dest=f"{side}_url",
            metavar="STORE",
            help=f"the {what}: sqlite:PATH (kvault.db, or the data directory holding it) or "
            "a postgresql:// URL without a password",
        )
        m.add_argument(
            f"--{side}-dsn-env",
            metavar="VARIABLE",
            help=f"the {what} is PostgreSQL, its DSN in this environment variable",
        )
        m.add_argument(
            f"--{side}-dsn-file",
            metavar="PATH",
            help=f"the {what} is PostgreSQL, its DSN in this file",
        )
    m.add_argument(
        "--batch-size",
        type=int,
        default=_DEFAULT_BATCH,
        metavar="ROWS",
        help=f"rows per atomic commit on the destination (default {_DEFAULT_BATCH})",
    )
    m.set_defaults(handler=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    from kvault.app.migration import run_migration, store_spec

    if args.batch_size < 1:
        raise CliError(f"--batch-size must be at least 1, got {args.batch_size}", EXIT_USAGE)
    try:
        source = store_spec("from", args.from_url, args.from_dsn_env, args.from_dsn_file)
        destination = store_spec("to", args.to_url, args.to_dsn_env, args.to_dsn_file)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None

    def progress(rows: int, batch: int) -> None:
        print(f"kvault storage migrate: copied {rows} rows (+{batch})", file=sys.stderr, flush=True)

    print(f"kvault storage migrate: {source.label} -> {destination.label}", file=sys.stderr)
    try:
        done = asyncio.run(
            run_migration(source, destination, batch=args.batch_size, progress=progress)
        )
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except NotFound as exc:
        raise CliError(str(exc), EXIT_NOT_FOUND) from None
    except Unavailable as exc:
        raise CliError(str(exc), EXIT_UNREACHABLE) from None
    except KvaultError as exc:
        raise CliError(str(exc), EXIT_FAILED) from None
    _print_report(done)
    return 0 if done.ok else EXIT_FAILED


def _print_report(done: Migration) -> None:
    from kvault.app.migration import DATA_DIR_FILES

    report, check = done.report, done.report.verification
    print(f"from:         {done.source.label}")
    print(f"to:           {done.destination.label}")
    print(f"copied:       {report.copied} rows in {report.batches} batches (revisions start at 1)")
    print(f"source:       {check.source.rows} rows, sha256 {check.source.digest}")
    print(f"destination:  {check.destination.rows} rows, sha256 {check.destination.digest}")
    if not done.ok:
        print(
            "MISMATCH: the destination does not hold the source's rows (was the source "
            "written during the copy?); do not use it: empty it and migrate again",
        )
        print(
            "kvault storage migrate: verification FAILED (counts or digests differ)",
            file=sys.stderr,
        )
        return
    print(f"verified:     the destination holds the source's {report.copied} rows byte for byte")
    print(
        "HSM:          the rows are sealed under the HSM root key, which is not in storage:\n"
        "              run kvault on the destination with the same --hsm and --hsm-option\n"
        "              (the default software HSM keeps its key in hsm.key of the data directory)"
    )
    source_file = done.source.sqlite_path
    if source_file is None:
        print(
            "not moved:    the data directories' files are not storage ("
            + ", ".join(DATA_DIR_FILES)
            + "): keep each replica's own (docs/storage.md)"
        )
    elif done.left_behind:
        print(f"not moved:    files of {source_file.parent} that are not storage; carry them over:")
        for name, why in done.left_behind.items():
            print(f"  {name}: {why}")
