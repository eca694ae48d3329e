"""Dispatch ``python -m bench core`` (more benchmarks join as the layers arrive)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bench import (
    api,
    certificates,
    core,
    identity,
    keys,
    operator,
    peers_operator,
    peers_report,
    peers_store,
)

BENCHMARKS = {
    "api": api.run,
    "certificates": certificates.run,
    "core": core.run,
    "identity": identity.run,
    "keys": keys.run,
    "operator": operator.run,
}
#: ``python -m bench peers PART [options]``: kvault beside the tools users would pick instead
#: (issue 14); each part parses its own options (``--help``).
PEERS = {
    "store": peers_store.main,  # Vault/OpenBao vs kvault's data plane on loopback
    "report": peers_report.main,  # the figures of both into docs/performance.md (+ plot)
    "operator": peers_operator.main,  # ESO vs kvault's operator on the local cluster
}


def main() -> int:
    if sys.argv[1:2] == ["peers"]:
        if len(sys.argv) < 3 or sys.argv[2] not in PEERS:
            sys.exit(f"usage: python -m bench peers {{{','.join(PEERS)}}} [options]")
        return PEERS[sys.argv[2]](sys.argv[3:])
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (operator)")
    parser.add_argument(
        "--storage",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="api: postgresql compares secret GET/SET on SQLite, PostgreSQL and 2 replicas",
    )
    args = parser.parse_args()
    kwargs: dict[str, object] = {"quick": True} if args.quick and args.name == "operator" else {}
    if args.storage != "sqlite":
        if args.name != "api":
            parser.error("--storage applies to the api benchmark only")
        kwargs["storage"] = args.storage
    result = asyncio.run(BENCHMARKS[args.name](args.seconds, **kwargs))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
