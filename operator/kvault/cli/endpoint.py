"""Where the data plane is and who we are: flags first, then the environment."""

from __future__ import annotations

import argparse
import os
from urllib.parse import urlsplit

from kvault.cli.client import Endpoint
from kvault.cli.errors import EXIT_AUTH, EXIT_USAGE, CliError


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vault-name", required=True, help="the vault (Vault resource name)")
    parser.add_argument(
        "--namespace", help="the vault's Kubernetes namespace (omit for the dev server)"
    )
    parser.add_argument("--endpoint", help="data-plane URL (default: $KVAULT_ENDPOINT)")
    parser.add_argument("--token", help="bearer token (default: $KVAULT_TOKEN)")
    parser.add_argument("--ca-file", help="CA certificate to trust (default: $KVAULT_CA_FILE)")


def resolve(args: argparse.Namespace) -> Endpoint:
    url = args.endpoint or os.environ.get("KVAULT_ENDPOINT")
    if not url:
        raise CliError(
            "no endpoint: pass --endpoint or set KVAULT_ENDPOINT (`kvault server --dev` prints it)",
            EXIT_USAGE,
        )
    token = args.token or os.environ.get("KVAULT_TOKEN")
    if not token:
        raise CliError("no token: pass --token or set KVAULT_TOKEN", EXIT_AUTH)
    vault = args.vault_name if not args.namespace else f"{args.vault_name}.{args.namespace}"
    port = urlsplit(url).port
    host = f"{vault}.localhost" + (f":{port}" if port else "")
    ca_file = args.ca_file or os.environ.get("KVAULT_CA_FILE") or None
    return Endpoint(url.rstrip("/"), token, ca_file, host)
