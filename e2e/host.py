"""Host preparation and the teardown that leaves nothing behind.

The cluster touches the host in a few known places: processes, mounts (under the cluster
directory only: kubelet volumes, container rootfs, netns), cgroups (``/kvault`` in each
hierarchy), the ``kvault0`` bridge, CNI's result cache, containerd shim sockets, and for
Service routing two sysctls and iptables chains (e2e/netfilter.py). ``cleanup`` removes
all of them and works after a crash too; ``residue`` lists leftovers.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

from e2e import netfilter, procs
from e2e.layout import BRIDGE, BRIDGE_IP, CGROUP_ROOT, CNI_NETWORK, POD_CIDR, Layout

CNI_RESULTS = Path("/var/lib/cni/results")
SHIM_SOCKETS = Path("/run/containerd/s")
NODE_COMPONENTS = ("kubelet", "containerd")
#: Node-tier host daemons that stand in for cluster add-ons (stopped before the kubelet).
ADDON_COMPONENTS = ("local-path-provisioner", "coredns", "kube-proxy")
CONTROL_COMPONENTS = ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")
#: Programs of ours that may outlive their pid file (shims, a daemon of a crashed run).
PROGRAMS = (
    *ADDON_COMPONENTS,
    *NODE_COMPONENTS,
    *CONTROL_COMPONENTS,
    "containerd-shim-runc-v2",
    "runc",
)
#: Kept across ``down`` so a failed run can be diagnosed; rotated by the next ``up``.
KEEP = ("logs", "logs.previous", ".lock", "sessions")
#: Host tools per tier (Debian paths; packages listed in e2e/apt-packages.txt).
NODE_TOOLS = (
    "/usr/bin/containerd",
    "/usr/bin/ctr",
    "/usr/bin/containerd-shim-runc-v2",
    "/usr/sbin/runc",
    "/usr/lib/cni/bridge",
    "/usr/lib/cni/host-local",
    "/usr/lib/cni/loopback",
    "/bin/busybox",
    "/usr/sbin/iptables",
    "/usr/sbin/ip6tables",
)


def preflight(tier: str) -> None:
    """Fail early, naming what to install, instead of deep inside a daemon's log."""
    tools = ["umount", "ip"] + (list(NODE_TOOLS) if tier == "node" else [])
    missing = [t for t in tools if not (Path(t).exists() if "/" in t else shutil.which(t))]
    if missing:
        raise RuntimeError(
            f"missing host tools {missing}: run `make install` (apt packages in "
            "e2e/apt-packages.txt)"
        )


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape")


def mounts() -> list[tuple[str, str]]:
    """(mount point, fstype) of every mount in our mount namespace."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        out.append((_unescape(left.split()[4]), right.split()[0]))
    return out


def cgroup_mounts() -> list[Path]:
    """Mount points of every cgroup hierarchy (v1 controllers and/or the v2 tree)."""
    return [Path(mp) for mp, fs in mounts() if fs in ("cgroup", "cgroup2")]


def _under(path: str, root: Path) -> bool:
    return path == str(root) or path.startswith(str(root) + "/")


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first."""
    found = {mp for mp, _ in mounts() if _under(mp, root)}
    return sorted(found, key=lambda p: (p.count("/"), p), reverse=True)


def prepare_cgroups() -> None:
    """Create the kubelet's cgroup root in every hierarchy (kubelet requires it to exist)."""
    for mp in cgroup_mounts():
        d = mp / CGROUP_ROOT
        d.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):  # v1 cpuset children start empty
            f, parent = d / knob, mp / knob
            if f.exists() and parent.exists() and not f.read_text().strip():
                f.write_text(parent.read_text())


def cgroup_dirs() -> list[Path]:
    """Our cgroup directories, deepest first."""
    dirs: list[Path] = []
    for mp in cgroup_mounts():
        top = mp / CGROUP_ROOT
        if top.is_dir():
            dirs += [Path(p) for p, _, _ in os.walk(top)]
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def cgroup_pids() -> set[int]:
    """Pids of every process inside our cgroup trees (pod containers, pause, ...)."""
    pids: set[int] = set()
    for d in cgroup_dirs():
        with contextlib.suppress(OSError):
            pids |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
    return pids


def kill_cgroup_processes(timeout: float = 10.0) -> None:
    """SIGKILL every process in our cgroups until none are left (they may fork meanwhile)."""
    deadline = time.monotonic() + timeout
    while (pids := cgroup_pids()) and time.monotonic() < deadline:
        for pid in pids:
            procs.kill(pid, signal.SIGKILL)
        procs.wait_gone(pids, 1.0)


def kill_strays(lay: Layout) -> None:
    """SIGKILL any process whose command line names the cluster dir (shims, old daemons)."""
    pids = procs.pids_matching(str(lay.root), PROGRAMS)
    for pid in pids:
        procs.kill(pid, signal.SIGKILL)
    procs.wait_gone(pids, 5.0)


def unmount_all(root: Path) -> None:
    """Unmount everything below ``root``; lazily detach what is still busy."""
    for _ in range(3):
        targets = mounts_under(root)
        if not targets:
            return
        for mp in targets:
            res = subprocess.run(["umount", mp], capture_output=True)
            if res.returncode != 0:
                subprocess.run(["umount", "-l", mp], capture_output=True)


def remove_cgroups() -> None:
    """rmdir our cgroup trees bottom-up (only possible once they hold no process)."""
    for d in cgroup_dirs():
        with contextlib.suppress(FileNotFoundError):
            try:
                d.rmdir()
            except OSError:
                kill_cgroup_processes(2.0)
                d.rmdir()


def shim_sockets(lay: Layout) -> list[Path]:
    """containerd 1.6 shim sockets of our tasks: /run/containerd/s/sha256(addr/ns/id)."""
    tasks = lay.containerd / "state" / "io.containerd.runtime.v2.task"
    if not tasks.is_dir():
        return []
    keys = [
        f"{lay.containerd_sock}/{ns.name}/{b.name}" for ns in tasks.iterdir() for b in ns.iterdir()
    ]
    return [SHIM_SOCKETS / hashlib.sha256(k.encode()).hexdigest() for k in keys]


def prepare_network(lay: Layout) -> None:
    """Bridge with the gateway address up front (CoreDNS binds to it before any pod), the
    sysctls Service routing needs, and the egress guard."""
    if not Path(f"/sys/class/net/{BRIDGE}").exists():
        prefix = POD_CIDR.split("/")[1]
        for args in (
            ["link", "add", BRIDGE, "type", "bridge"],
            ["addr", "add", f"{BRIDGE_IP}/{prefix}", "dev", BRIDGE],
            ["link", "set", BRIDGE, "up"],
        ):
            subprocess.run(["ip", *args], check=True, capture_output=True)
    netfilter.set_sysctls(lay)
    netfilter.block_egress()


def delete_bridge() -> None:
    """Remove our CNI bridge (host-side veths went with their network namespaces)."""
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        subprocess.run(["ip", "link", "delete", BRIDGE], check=False, capture_output=True)


def cni_cache_files(lay: Layout) -> list[Path]:
    """libcni's cached results of our pods (its cache dir is not configurable in 1.6).

    Ours: our network's name, or a result (e.g. "cni-loopback") naming a netns under our dir.
    """
    if not CNI_RESULTS.is_dir():
        return []
    ours = []
    for f in CNI_RESULTS.iterdir():
        with contextlib.suppress(OSError):
            if f.name.startswith(f"{CNI_NETWORK}-") or str(lay.root) in f.read_text():
                ours.append(f)
    return sorted(ours)


def safe_rmtree(path: Path) -> None:
    """rmtree that refuses to cross into another filesystem (a forgotten bind mount)."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    dev = path.stat().st_dev
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                os.unlink(p)
            elif st.st_dev != dev:
                raise RuntimeError(f"refusing to delete across a mount: {p}")
            else:
                os.rmdir(p)
    path.rmdir()


def cleanup(lay: Layout) -> None:
    """Stop everything and remove every trace of the cluster except its logs."""
    for name in (*ADDON_COMPONENTS, *NODE_COMPONENTS[:1]):
        procs.stop(lay.pidfile(name), timeout=10.0)
    kill_cgroup_processes()
    sockets = shim_sockets(lay)
    procs.stop(lay.pidfile("containerd"), timeout=10.0)
    kill_strays(lay)
    for name in CONTROL_COMPONENTS:
        procs.stop(lay.pidfile(name), timeout=10.0)
    kill_strays(lay)
    kill_cgroup_processes()
    unmount_all(lay.root)
    remove_cgroups()
    delete_bridge()
    netfilter.remove_chains()
    netfilter.restore_sysctls(lay)
    for f in [*sockets, *cni_cache_files(lay)]:
        f.unlink(missing_ok=True)
    if mounts_under(lay.root):
        raise RuntimeError(f"still mounted under {lay.root}: {mounts_under(lay.root)}")
    if lay.root.is_dir():
        for child in lay.root.iterdir():
            if child.name not in KEEP:
                safe_rmtree(child)


def residue(lay: Layout) -> list[str]:
    """Everything of the cluster still present on the host (empty after a clean ``down``)."""
    left = [f"process {p}" for p in procs.pids_matching(str(lay.root), PROGRAMS)]
    left += [f"process in cgroup {p}" for p in cgroup_pids()]
    left += [f"cgroup {d}" for d in cgroup_dirs()]
    left += [f"mount {m}" for m in mounts_under(lay.root)]
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        left.append(f"bridge {BRIDGE}")
    left += [f"cni cache {f}" for f in cni_cache_files(lay)]
    if lay.cni_ipam.exists():
        left.append(f"ip leases {lay.cni_ipam}")
    if lay.run.exists():
        left += [f"pid file {p}" for p in lay.run.glob("*.pid")]
    left += [f"sysctl {s}" for s in netfilter.sysctls_changed(lay)]
    left += [f"chain {c}" for c in netfilter.residue()]
    if lay.local_path.exists():
        left.append(f"volume dir {lay.local_path}")
    return left


def rotate_logs(lay: Layout) -> None:
    """Keep the previous run's logs as logs.previous; start with an empty logs dir."""
    prev = lay.root / "logs.previous"
    if lay.logs.is_dir():
        shutil.rmtree(prev, ignore_errors=True)
        lay.logs.rename(prev)
    lay.logs.mkdir(parents=True, exist_ok=True)
