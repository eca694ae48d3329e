"""Defaults the command line shows before anything heavy is imported (kept import-free)."""

from __future__ import annotations

#: The data plane's HTTPS port (``kvault server`` and ``kvault operator``).
DEFAULT_PORT = 8443
#: Prometheus ``/metrics`` of the operator process.
DEFAULT_METRICS_PORT = 9090
DEFAULT_HSM = "software"
DEFAULT_STORAGE = "sqlite"
#: Data-plane rate limits (``--vault-rate-limit``, ``--principal-rate-limit``): Azure Key
#: Vault's published limit for a vault (4,000 secret transactions per 10 s), and half of it
#: for one principal, so a runaway client leaves the rest of the vault to the others.
DEFAULT_VAULT_RATE = "4000/10"
DEFAULT_PRINCIPAL_RATE = "2000/10"
