"""Dispatch ``python -m bench core`` (more benchmarks join as the layers arrive)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bench import api, certificates, core, identity, keys, operator

BENCHMARKS = {
    "api": api.run,
    "certificates": certificates.run,
    "core": core.run,
    "identity": identity.run,
    "keys": keys.run,
    "operator": operator.run,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (operator)")
    args = parser.parse_args()
    kwargs = {"quick": True} if args.quick and args.name == "operator" else {}
    result = asyncio.run(BENCHMARKS[args.name](args.seconds, **kwargs))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
