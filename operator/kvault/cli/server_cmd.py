"""``kvault server --dev``: the data plane on this machine, no cluster needed.

Like ``vault server -dev``: a data directory (temporary unless ``--data-dir``), a software
HSM, one vault ``dev``, TLS from kvault's own CA, and a root token. It prints
``KVAULT_ENDPOINT=``, ``KVAULT_TOKEN=`` and ``KVAULT_CA_FILE=`` once it listens, then
serves until SIGINT/SIGTERM. The cluster server (without ``--dev``) arrives with the operator.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from kvault.cli.errors import EXIT_USAGE, CliError

DEFAULT_PORT = 8443


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
    server.add_argument("--host", default="127.0.0.1", help="address to listen on")
    server.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    server.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.dev:
        raise CliError(
            "only `kvault server --dev` exists so far; the in-cluster server arrives with the "
            "operator",
            EXIT_USAGE,
        )
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be 0-65535, got {args.port}", EXIT_USAGE)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="kvault-dev-")) if temporary else args.data_dir
    try:
        asyncio.run(_serve_dev(data_dir, args.host, args.port))
    finally:
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


async def _serve_dev(data_dir: Path, host: str, port: int) -> None:
    from kvault.api.app import build_app
    from kvault.api.dev import open_dev
    from kvault.api.server import serve

    setup = await open_dev(data_dir)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown

    def ready(bound: int) -> None:
        print(f"KVAULT_ENDPOINT=https://{shown}:{bound}")
        print(f"KVAULT_TOKEN={setup.token}")
        print(f"KVAULT_CA_FILE={setup.tls.ca.cert_file}")
        print(f"# kvault dev server: vault 'dev', data in {data_dir}; Ctrl-C to stop")
        sys.stdout.flush()

    try:
        await serve(
            build_app(setup.config),
            host=host,
            port=port,
            ssl_context=setup.tls.context,
            on_ready=ready,
        )
    finally:
        await setup.config.kv.close()
