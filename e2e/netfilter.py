"""The host's routing for Services: sysctls, an egress guard, and removal of KUBE-* chains.

kube-proxy DNATs ClusterIPs on the host, so pod -> Service -> pod on the same bridge is
*forwarded* (ip_forward=1) and its replies are bridged through iptables
(bridge-nf-call-iptables=1). Forwarding must not give pods a way off the host, so a
mangle-table rule drops anything forwarded from the bridge to another interface.
``up`` records the old sysctl values; ``cleanup`` restores them and deletes every KUBE-*
chain (kube-proxy's and the kubelet's canaries) and ours, for IPv4 and IPv6.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from e2e.layout import BRIDGE, Layout

SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/bridge/bridge-nf-call-iptables": "1",
}
EGRESS_CHAIN = "KVAULT-EGRESS"
PREFIXES = ("KUBE-", "KVAULT-")
TABLES = ("filter", "nat", "mangle", "raw")
FAMILIES = ("iptables", "ip6tables")


def _sysctl(name: str) -> Path:
    return Path("/proc/sys") / name


def set_sysctls(lay: Layout) -> None:
    """Record current values (once per run) and set what Service routing needs."""
    if not _sysctl("net/bridge").is_dir():
        subprocess.run(["modprobe", "br_netfilter"], check=False, capture_output=True)
    old = {n: _sysctl(n).read_text().strip() for n in SYSCTLS}
    if not lay.saved_sysctls.exists():
        lay.saved_sysctls.write_text(json.dumps(old))
    for name, value in SYSCTLS.items():
        if old[name] != value:
            _sysctl(name).write_text(value)


def restore_sysctls(lay: Layout) -> None:
    """Put back the values ``set_sysctls`` found (after a crash too: the file survives)."""
    if not lay.saved_sysctls.is_file():
        return
    for name, value in json.loads(lay.saved_sysctls.read_text()).items():
        if _sysctl(name).read_text().strip() != value:
            _sysctl(name).write_text(value)
    lay.saved_sysctls.unlink()


def sysctls_changed(lay: Layout) -> list[str]:
    """Recorded sysctls not yet restored (residue)."""
    if not lay.saved_sysctls.is_file():
        return []
    saved: dict[str, str] = json.loads(lay.saved_sysctls.read_text())
    return [f"{n}={_sysctl(n).read_text().strip()} (was {v})" for n, v in saved.items()]


def _run(family: str, args: list[str], stdin: str | None = None) -> str:
    res = subprocess.run(
        [family, "-w", *args], input=stdin, capture_output=True, text=True, check=False
    )
    if res.returncode != 0:
        raise RuntimeError(f"{family} {' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


def block_egress() -> None:
    """Drop packets forwarded from the bridge to any other interface (pods stay on the host)."""
    _run("iptables", ["-t", "mangle", "-N", EGRESS_CHAIN])
    _run("iptables", ["-t", "mangle", "-A", EGRESS_CHAIN, "-i", BRIDGE, "!", "-o", BRIDGE,
                      "-j", "DROP"])  # fmt: skip
    _run("iptables", ["-t", "mangle", "-I", "FORWARD", "1", "-j", EGRESS_CHAIN])


def _ours(chain: str) -> bool:
    return chain.startswith(PREFIXES)


def chains(family: str) -> list[str]:
    """``table/chain`` of every KUBE-*/KVAULT-* chain of one family."""
    if shutil.which(family) is None:
        return []
    found = []
    for table in TABLES:
        try:
            rules = _run(family, ["-t", table, "-S"])
        except RuntimeError:
            continue  # table not available in this kernel
        found += [f"{table}/{ln.split()[1]}" for ln in rules.splitlines()
                  if ln.startswith("-N ") and _ours(ln.split()[1])]  # fmt: skip
    return found


def remove_chains() -> None:
    """Delete jumps into our chains, then flush and delete them (one restore per table)."""
    for family in FAMILIES:
        if shutil.which(family) is None:
            continue
        for table in TABLES:
            try:
                rules = _run(family, ["-t", table, "-S"]).splitlines()
            except RuntimeError:
                continue
            mine = [ln.split()[1] for ln in rules if ln.startswith("-N ") and _ours(ln.split()[1])]
            jumps = [
                "-D" + ln[2:]
                for ln in rules
                if ln.startswith("-A ")
                and not _ours(ln.split()[1])
                and any(f"-j {c}" in ln or f"-g {c}" in ln for c in mine)
            ]
            if not mine and not jumps:
                continue
            script = [f"*{table}", *jumps, *(f"-F {c}" for c in mine)]
            script += [*(f"-X {c}" for c in mine), "COMMIT", ""]
            _run(f"{family}-restore", ["--noflush"], "\n".join(script))


def residue() -> list[str]:
    """Our chains still present, e.g. ``iptables nat/KUBE-SERVICES``."""
    return [f"{fam} {c}" for fam in FAMILIES for c in chains(fam)]
