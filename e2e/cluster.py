"""CLI: ``python -m e2e.cluster up|down|status|kubeconfig|build``.

Daemons outlive this command (own session, pid files under the cluster dir), so ``up``
returns once the cluster is ready and ``down`` can run from any later shell.
"""

from __future__ import annotations

import argparse
import signal
import sys

from e2e import host, lifecycle
from e2e.layout import Layout


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m e2e.cluster", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start the cluster (build binaries first if needed)")
    p_up.add_argument("--tier", choices=lifecycle.TIERS, default="node")
    sub.add_parser("down", help="stop the cluster and remove its state (logs are kept)")
    sub.add_parser("status", help="show daemons, health and leftovers")
    sub.add_parser("kubeconfig", help="print the admin kubeconfig path")
    sub.add_parser("build", help="only build/cache the binaries; print their directory")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; exit status 0 on success."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `status | head` ends quietly
    args = _parser().parse_args(argv)
    lay = Layout.default()
    if args.cmd == "up":
        secs = lifecycle.up(args.tier, lay)
        print(f"cluster up ({args.tier}) in {secs:.1f}s; KUBECONFIG={lay.kubeconfig}")
    elif args.cmd == "down":
        secs = lifecycle.down(lay)
        print(f"cluster down in {secs:.1f}s; logs kept in {lay.logs}")
    elif args.cmd == "status":
        st = lifecycle.status(lay)
        print(f"dir:     {lay.root}\ntier:    {st.tier or '-'}\nhealthy: {st.healthy}")
        for name, alive in st.daemons.items():
            print(f"  {name:<24} {'running' if alive else 'stopped'}")
        left = host.residue(lay)
        print("leftovers:" if left else "leftovers: none")
        for item in left:
            print(f"  {item}")
        return 0 if st.healthy else 3
    elif args.cmd == "kubeconfig":
        print(lifecycle.kubeconfig_path(lay))
    elif args.cmd == "build":
        print(lifecycle.bin_dir())
    return 0


if __name__ == "__main__":
    sys.exit(main())
