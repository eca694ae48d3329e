"""``kvault server --dev``: the data plane on this machine, no cluster needed.

Like ``vault server -dev``: a data directory (temporary unless ``--data-dir``), a software
HSM, one vault ``dev``, TLS from kvault's own CA, and a root token. It prints
``KVAULT_ENDPOINT=``, ``KVAULT_TOKEN=`` and ``KVAULT_CA_FILE=`` once it listens, then
serves until SIGINT/SIGTERM. Without ``--dev`` it authenticates Kubernetes identities
(TokenReview, token exchange) and serves the vaults found in ``--data-dir``.
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
    cluster = server.add_argument_group("without --dev (Kubernetes identity)")
    cluster.add_argument("--kubeconfig", help="default: $KUBECONFIG, in-cluster, ~/.kube/config")
    cluster.add_argument(
        "--audience", action="append", help="accepted ServiceAccount token audience (kvault)"
    )
    cluster.add_argument("--hsm", default="software", help="HSM plugin (software, pkcs11, ...)")
    cluster.add_argument(
        "--hsm-option", action="append", default=[], metavar="KEY=VALUE", help="plugin option"
    )
    cluster.add_argument("--default-vault", help="vault for requests whose Host names none")
    server.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.dev and args.data_dir is None:
        raise CliError("`kvault server` needs --data-dir (or use --dev)", EXIT_USAGE)
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be 0-65535, got {args.port}", EXIT_USAGE)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="kvault-dev-")) if temporary else args.data_dir
    try:
        asyncio.run(
            _serve_dev(data_dir, args.host, args.port)
            if args.dev
            else _serve_cluster(args, data_dir)
        )
    finally:
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def _endpoint(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"https://{shown}:{port}"


async def _serve_cluster(args: argparse.Namespace, data_dir: Path) -> None:
    from kvault.api.app import build_app
    from kvault.api.cluster import open_cluster
    from kvault.api.server import serve

    options = {}
    for pair in args.hsm_option:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"--hsm-option takes KEY=VALUE, got {pair!r}", EXIT_USAGE)
        options[key] = value
    setup = await open_cluster(
        data_dir,
        hsm=args.hsm,
        hsm_options=options,
        kubeconfig=args.kubeconfig,
        audiences=tuple(args.audience or ("kvault",)),
        default_vault=args.default_vault,
    )

    def ready(bound: int) -> None:
        print(f"KVAULT_ENDPOINT={_endpoint(args.host, bound)}")
        print(f"KVAULT_CA_FILE={setup.tls.ca.cert_file}")
        sys.stdout.flush()

    try:
        await serve(
            build_app(setup.config),
            host=args.host,
            port=args.port,
            ssl_context=setup.tls.context,
            on_ready=ready,
        )
    finally:
        await setup.close()


async def _serve_dev(data_dir: Path, host: str, port: int) -> None:
    from kvault.api.app import build_app
    from kvault.api.dev import open_dev
    from kvault.api.server import serve

    setup = await open_dev(data_dir)

    def ready(bound: int) -> None:
        print(f"KVAULT_ENDPOINT={_endpoint(host, bound)}")
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
