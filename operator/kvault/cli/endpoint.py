"""Where the data plane is and who we are: flags first, then the environment."""

from __future__ import annotations

import argparse
import os
from urllib.parse import urlsplit

from kvault.cli.client import Endpoint
from kvault.cli.errors import EXIT_AUTH, EXIT_USAGE, CliError
from kvault.cli.kubetoken import service_account_token


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vault-name", required=True, help="the vault (Vault resource name)")
    parser.add_argument(
        "--namespace", help="the vault's Kubernetes namespace (omit for the dev server)"
    )
    parser.add_argument("--endpoint", help="data-plane URL (default: $KVAULT_ENDPOINT)")
    parser.add_argument(
        "--token",
        help="bearer token (default: $KVAULT_TOKEN, else a TokenRequest for --service-account "
        "through the kubeconfig)",
    )
    parser.add_argument(
        "--service-account",
        default="default",
        help="ServiceAccount (in --namespace) to act as when no token is given",
    )
    parser.add_argument("--kubeconfig", help="for the TokenRequest (default: $KUBECONFIG)")
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
        if not (args.kubeconfig or os.environ.get("KUBECONFIG")):
            raise CliError(
                "no token: pass --token, set KVAULT_TOKEN, or point KUBECONFIG at a cluster "
                "to act as --service-account",
                EXIT_AUTH,
            )
        token = service_account_token(args.namespace, args.service_account, args.kubeconfig)
    vault = args.vault_name if not args.namespace else f"{args.vault_name}.{args.namespace}"
    port = urlsplit(url).port
    host = f"{vault}.localhost" + (f":{port}" if port else "")
    ca_file = args.ca_file or os.environ.get("KVAULT_CA_FILE") or None
    return Endpoint(url.rstrip("/"), token, ca_file, host)
