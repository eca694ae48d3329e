"""``kvault az-cloud``: print the lines that point an unmodified Azure CLI at kvault.

    eval "$(kvault az-cloud)"                          # the dev server (KVAULT_* set)
    eval "$(kvault az-cloud --namespace team-a)"       # a cluster's vaults in team-a

then ``az keyvault secret set --name N --value V --vault-name dev`` as on Azure. What each
line does: :mod:`kvault.app.azcloud` and docs/azure-cli.md.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from kvault.cli.errors import EXIT_USAGE, CliError
from kvault.errors import KvaultError


def register(groups: Any) -> None:
    p = groups.add_parser(
        "az-cloud",
        help="print the az cloud register / az login lines for this kvault "
        '(use: eval "$(kvault az-cloud)")',
        description="Print shell lines that register kvault as an Azure CLI cloud in this "
        "shell and sign in, so that `az keyvault secret ...` works unmodified. Run them with "
        'eval "$(kvault az-cloud)".',
    )
    p.add_argument(
        "--endpoint",
        help="data-plane URL https://host[:port] (default: $KVAULT_ENDPOINT); its port is "
        "part of the vaults' DNS suffix",
    )
    p.add_argument("--ca-file", help="kvault's CA certificate (default: $KVAULT_CA_FILE)")
    p.add_argument(
        "--namespace",
        help="a cluster: vaults are <vault>.<namespace>.svc and az signs in with a "
        "ServiceAccount token of that namespace (default: the dev server, <vault>.localhost)",
    )
    p.add_argument(
        "--service-account",
        default="default",
        help="with --namespace: the ServiceAccount to sign in as (kubectl create token)",
    )
    p.add_argument(
        "--federated-token",
        metavar="WORD",
        help='what az login gets as --federated-token, as a shell word (default: "$KVAULT_TOKEN" '
        'for the dev server; "$(kubectl create token SA --namespace NS --audience kvault)" '
        "with --namespace)",
    )
    p.add_argument("--cloud-name", default=None, help="the cloud's name in az (default: kvault)")
    p.add_argument("--tenant", default=None, help="the tenant az signs in to (default: kvault)")
    p.add_argument(
        "--client-id", default=None, help="az login --username (recorded in the audit trail)"
    )
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from kvault.app.azcloud import AzCloud, script

    endpoint = args.endpoint or os.environ.get("KVAULT_ENDPOINT")
    if not endpoint:
        raise CliError(
            "no endpoint: pass --endpoint or set KVAULT_ENDPOINT (`kvault server --dev` prints it)",
            EXIT_USAGE,
        )
    ca_file = args.ca_file or os.environ.get("KVAULT_CA_FILE") or None
    if ca_file is not None:
        ca_file = os.path.abspath(ca_file)
    given = {
        k: v
        for k, v in (
            ("cloud", args.cloud_name),
            ("tenant", args.tenant),
            ("client_id", args.client_id),
        )
        if v
    }
    cloud = AzCloud(
        endpoint,
        ca_file,
        namespace=args.namespace,
        service_account=args.service_account,
        token_word=args.federated_token,
        **given,
    )
    if (
        args.namespace is None
        and args.federated_token is None
        and not os.environ.get("KVAULT_TOKEN")
    ):
        raise CliError(
            "no token: set KVAULT_TOKEN (`kvault server --dev` prints it) or pass "
            "--federated-token",
            EXIT_USAGE,
        )
    try:
        lines = script(cloud)
    except KvaultError as exc:
        raise CliError(exc.message, EXIT_USAGE) from None
    for line in lines:
        print(line)
    return 0
