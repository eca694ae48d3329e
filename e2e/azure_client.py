"""An unmodified Azure SDK program: the workload-identity test client's image runs it.

``azure_client.py VAULT_URL NAME...`` (or env ``VAULT_URL`` and ``SECRET_NAMES``, names
separated by commas or spaces) reads each secret with ``DefaultAzureCredential`` and prints
``NAME=VALUE`` or ``NAME ERROR status=<http status> code=<error code> inner=<inner code>``, then
``azure-client: ok=<n> failed=<n>``; exit status 0 only if every read worked.
Nothing in it knows kvault: whatever a webhook puts in the env is what it uses.
"""

import os
import re
import sys

from azure.core.exceptions import AzureError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient


def main(argv: list[str]) -> int:
    """Read the secrets named on argv/env; one output line each."""
    url = argv[0] if argv else os.environ.get("VAULT_URL", "")
    names = argv[1:] or re.split(r"[,\s]+", os.environ.get("SECRET_NAMES", "").strip())
    client = SecretClient(url, DefaultAzureCredential())
    failed = 0
    for name in filter(None, names):
        try:
            print(f"{name}={client.get_secret(name).value}", flush=True)
        except AzureError as exc:  # HTTP errors, failed sign-in, unreachable vault
            failed += 1
            error = getattr(exc, "error", None)
            code = getattr(error, "code", None) or type(exc).__name__
            inner = (getattr(error, "innererror", None) or {}).get("code", "-")
            status = getattr(exc, "status_code", None)
            print(f"{name} ERROR status={status} code={code} inner={inner}", flush=True)
    print(f"azure-client: ok={len([n for n in names if n]) - failed} failed={failed}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
