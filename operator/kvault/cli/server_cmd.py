"""``kvault server --dev``: the data plane on this machine, no cluster needed.

Like ``vault server -dev``: a data directory (temporary unless ``--data-dir``), a software
HSM, one vault ``dev``, TLS from kvault's own CA, and a root token. It prints
``KVAULT_ENDPOINT=``, ``KVAULT_TOKEN=`` and ``KVAULT_CA_FILE=`` once it listens, then
serves until SIGINT/SIGTERM. Without ``--dev`` it authenticates Kubernetes identities
(TokenReview, token exchange) and serves the vaults found in ``--data-dir``, each at its own
host name (``V.N.svc``, ``V.N.localhost``): there is no default vault.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kvault.cli import flags
from kvault.cli.errors import EXIT_USAGE, CliError


def register(groups: Any) -> None:
    server = groups.add_parser("server", help="run the kvault data-plane server")
    server.add_argument(
        "--dev",
        action="store_true",
        help="development server: local data directory, software HSM, vault 'dev', root token",
    )
    server.add_argument(
        "--data-dir",
        type=Path,
        help="keep data here (reopened on the next start); default: a temporary directory "
        "removed on exit",
    )
    flags.add_listener(server)
    flags.add_limits(server)
    cluster = server.add_argument_group(
        "without --dev (Kubernetes identity); --hsm and --hsm-option apply to --dev too"
    )
    flags.add_cluster(cluster, audience_help="accepted ServiceAccount token audience (kvault)")
    server.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.dev and args.data_dir is None:
        raise CliError("`kvault server` needs --data-dir (or use --dev)", EXIT_USAGE)
    flags.port(args.port, "--port")
    if args.dev:
        from kvault.app.dev import run_dev

        run_dev(
            args.data_dir,
            args.host,
            args.port,
            flags.backends(args),
            flags.limits(args),
            flags.connections(args),
        )
        return 0
    from kvault.app.cluster import run_cluster

    run_cluster(flags.data_plane(args))
    return 0
