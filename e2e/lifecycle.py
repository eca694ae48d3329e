"""up / down / status of the local cluster, as functions (the CLI and fixtures share them)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from e2e import build, components, config, host, pki, probe, procs, tools, versions
from e2e.layout import NODE_NAME, SERVICE_IP, Layout, node_ip

TIERS = ("control-plane", "node")


@dataclass(frozen=True)
class Status:
    """What is running: the tier recorded at ``up`` and each daemon's liveness."""

    tier: str | None
    daemons: dict[str, bool]
    healthy: bool


def _require_root() -> None:
    if os.geteuid() != 0:
        raise PermissionError("the local cluster needs root (mounts, cgroups, bridge)")


def status(lay: Layout | None = None) -> Status:
    """Liveness of the recorded tier's daemons plus an apiserver (and node) health probe."""
    lay = lay or Layout.default()
    tier = lay.tier_file.read_text().strip() if lay.tier_file.is_file() else None
    names = components.components(tier or "node")
    daemons = {n: procs.alive(lay.pidfile(n)) for n in names}
    healthy = False
    if tier and all(daemons.values()):
        try:
            healthy = probe.apiserver_ready(lay) and (tier != "node" or probe.node_ready(lay))
        except OSError:
            healthy = False
    return Status(tier, daemons, healthy)


def satisfies(running: str | None, wanted: str) -> bool:
    """A node-tier cluster also serves control-plane-tier users."""
    return running == wanted or (running == "node" and wanted == "control-plane")


@contextlib.contextmanager
def _locked(lay: Layout) -> Iterator[None]:
    """One up/down at a time per cluster dir (two pytest sessions may race)."""
    lay.root.mkdir(parents=True, exist_ok=True)
    with (lay.root / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def up(tier: str = "node", lay: Layout | None = None) -> float:
    """Bring the cluster up (building binaries if needed); return seconds taken.

    Idempotent: a healthy cluster of a sufficient tier is left alone. Anything else
    (a crashed run, a smaller tier) is cleaned up completely and started fresh. A failed
    start is cleaned up too; the daemons' logs stay in the logs dir.
    """
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}")
    _require_root()
    lay = lay or Layout.default()
    started = time.monotonic()
    with _locked(lay):
        st = status(lay)
        if st.healthy and satisfies(st.tier, tier):
            return time.monotonic() - started
        host.preflight(tier)
        bin_dir = build.ensure_built()
        if tier == "node":
            for name in tools.NODE_TOOLS:
                tools.ensure(name)
        try:
            _fresh_start(lay, tier, bin_dir)
        except BaseException:
            host.cleanup(lay)
            raise
    return time.monotonic() - started


def _fresh_start(lay: Layout, tier: str, bin_dir: Path) -> None:
    """Clean whatever a previous run left, then write PKI/configs and start the daemons."""
    host.cleanup(lay)
    host.rotate_logs(lay)
    ip = node_ip()
    pki.generate(lay.pki, NODE_NAME, ip, SERVICE_IP)
    config.write_all(lay)
    lay.run.mkdir(parents=True, exist_ok=True)
    if tier == "node":
        host.prepare_cgroups()
        host.prepare_network(lay)
    lay.tier_file.write_text(tier + "\n")
    components.start(bin_dir, lay, ip, tier)


def down(lay: Layout | None = None) -> float:
    """Stop everything and remove all cluster state except logs; return seconds taken."""
    _require_root()
    lay = lay or Layout.default()
    started = time.monotonic()
    with _locked(lay):
        host.cleanup(lay)
    return time.monotonic() - started


def kubeconfig_path(lay: Layout | None = None) -> str:
    """Path of the admin kubeconfig (exists while the cluster is up)."""
    return str((lay or Layout.default()).kubeconfig)


def bin_dir() -> str:
    """Bin dir of the pinned version (built if missing), plus the node tier's Go tools."""
    path = str(build.ensure_built(versions.K8S_VERSION))
    for name in tools.NODE_TOOLS:
        tools.ensure(name)
    return path
