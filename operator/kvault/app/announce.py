"""The ``KVAULT_*=`` lines a server prints once it listens (e2e and scripts parse them)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def endpoint(host: str, port: int) -> str:
    """The URL a local client dials for a listener on ``host:port`` (a wildcard address
    is shown as 127.0.0.1, an IPv6 one in brackets)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"https://{shown}:{port}"


def announce(lines: Sequence[tuple[str, str]], comment: str = "") -> None:
    """Print ``KEY=VALUE`` per line (empty values are left out), then flush: readers wait
    for these lines before they connect."""
    for key, value in lines:
        if value:
            print(f"{key}={value}")
    if comment:
        print(f"# {comment}")
    sys.stdout.flush()
