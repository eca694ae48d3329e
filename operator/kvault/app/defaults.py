"""Defaults the command line shows before anything heavy is imported (kept import-free)."""

from __future__ import annotations

#: The data plane's HTTPS port (``kvault server`` and ``kvault operator``).
DEFAULT_PORT = 8443
#: Prometheus ``/metrics`` of the operator process.
DEFAULT_METRICS_PORT = 9090
DEFAULT_HSM = "software"
DEFAULT_STORAGE = "sqlite"
