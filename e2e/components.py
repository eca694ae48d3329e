"""Command lines of the cluster's daemons and the order they start in.

Control-plane tier: etcd, kube-apiserver (RBAC + ServiceAccount token issuing),
kube-controller-manager, kube-scheduler. Node tier adds containerd, the kubelet and, as
host daemons standing in for the usual add-on pods, kube-proxy (iptables), CoreDNS (on
the bridge address) and local-path-provisioner (the default StorageClass).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from e2e import addons, images, probe, procs, tools, versions
from e2e.layout import (
    APISERVER_PORT,
    COREDNS_READY_PORT,
    ETCD_PEER_PORT,
    ETCD_PORT,
    KUBE_PROXY_HEALTHZ_PORT,
    LOCAL_PATH_NAMESPACE,
    NODE_NAME,
    SERVICE_CIDR,
    Layout,
)
from e2e.wait import Abort, wait_for

SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
START_TIMEOUT = 90.0


def etcd_argv(bin_dir: Path, lay: Layout) -> list[str]:
    peer = f"http://127.0.0.1:{ETCD_PEER_PORT}"
    client = f"http://127.0.0.1:{ETCD_PORT}"
    return [
        str(bin_dir / "etcd"),
        "--name=default",
        f"--data-dir={lay.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--unsafe-no-fsync",  # throw-away data; what envtest does
        "--log-level=warn",
    ]


def apiserver_argv(bin_dir: Path, lay: Layout, node_ip: str) -> list[str]:
    p = lay.pki
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{ETCD_PORT}",
        "--bind-address=0.0.0.0",
        f"--secure-port={APISERVER_PORT}",
        f"--advertise-address={node_ip}",
        f"--tls-cert-file={p / 'apiserver.crt'}",
        f"--tls-private-key-file={p / 'apiserver.key'}",
        f"--client-ca-file={p / 'ca.crt'}",
        f"--service-account-issuer={SA_ISSUER}",
        f"--service-account-key-file={p / 'sa.pub'}",
        f"--service-account-signing-key-file={p / 'sa.key'}",
        f"--api-audiences={SA_ISSUER}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={p / 'ca.crt'}",
        "--kubelet-preferred-address-types=InternalIP",
        "--allow-privileged=true",
        "--profiling=false",
        f"--cert-dir={p / 'apiserver-generated'}",
        "--v=1",
    ]


def controller_manager_argv(bin_dir: Path, lay: Layout) -> list[str]:
    kc = lay.component_kubeconfig("controller-manager")
    p = lay.pki
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        f"--service-account-private-key-file={p / 'sa.key'}",
        f"--root-ca-file={p / 'ca.crt'}",
        "--use-service-account-credentials=true",
        f"--cluster-signing-cert-file={p / 'ca.crt'}",
        f"--cluster-signing-key-file={p / 'ca.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--cert-dir={p / 'controller-manager-generated'}",
        "--profiling=false",
        "--v=1",
    ]


def scheduler_argv(bin_dir: Path, lay: Layout) -> list[str]:
    kc = lay.component_kubeconfig("scheduler")
    return [
        str(bin_dir / "kube-scheduler"),
        f"--config={lay.etc / 'scheduler.yaml'}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1",
        f"--cert-dir={lay.pki / 'scheduler-generated'}",
        "--profiling=false",
        "--v=1",
    ]


def containerd_argv(lay: Layout) -> list[str]:
    return ["containerd", f"--config={lay.etc / 'containerd.toml'}", "--log-level=warn"]


def kubelet_argv(bin_dir: Path, lay: Layout, node_ip: str) -> list[str]:
    return [
        str(bin_dir / "kubelet"),
        f"--config={lay.etc / 'kubelet.yaml'}",
        f"--kubeconfig={lay.component_kubeconfig('kubelet')}",
        f"--root-dir={lay.kubelet}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={node_ip}",
        "--v=1",
    ]


def kube_proxy_argv(bin_dir: Path, lay: Layout) -> list[str]:
    return [str(bin_dir / "kube-proxy"), f"--config={lay.etc / 'kube-proxy.yaml'}", "--v=1"]


def coredns_argv(lay: Layout) -> list[str]:
    return [str(tools.ensure("coredns")), "-conf", str(lay.etc / "Corefile")]


def local_path_argv(lay: Layout) -> list[str]:
    return [
        str(tools.ensure("local-path-provisioner")),
        "start",
        f"--kubeconfig={lay.component_kubeconfig('local-path')}",
        f"--namespace={LOCAL_PATH_NAMESPACE}",
        f"--config={lay.etc / 'local-path.json'}",
        f"--configmap-name={addons.LOCAL_PATH_CONFIGMAP}",
        f"--provisioner-name={addons.PROVISIONER}",
        f"--helper-image={versions.BUSYBOX_IMAGE}",
        "--service-account-name=default",
    ]


def daemon_env(bin_dir: Path) -> dict[str, str]:
    """PATH with our binaries first and the sbin dirs containerd needs for runc/ip/mount."""
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return env


def _start(lay: Layout, name: str, argv: list[str], env: dict[str, str]) -> None:
    procs.spawn(argv, lay.log(name), lay.pidfile(name), env)


class DaemonDied(Abort):
    """A daemon exited while we waited for it; carries the tail of its log."""


def _alive_or_fail(lay: Layout, name: str) -> bool:
    """Stop waiting at once (with the log's tail) when the daemon has died."""
    if not procs.alive(lay.pidfile(name)):
        tail = lay.log(name).read_text(errors="replace").splitlines()[-15:]
        raise DaemonDied(f"{name} exited; see {lay.log(name)}:\n" + "\n".join(tail))
    return True


def _wait(lay: Layout, name: str, probe_fn: Callable[[], bool], what: str) -> None:
    def check() -> bool:
        _alive_or_fail(lay, name)
        return probe_fn()

    wait_for(check, START_TIMEOUT, f"{what} (log: {lay.log(name)})")


def start(bin_dir: Path, lay: Layout, node_ip: str, tier: str) -> None:
    """Start the tier's daemons in dependency order, waiting on each readiness gate.

    containerd starts first (it needs nothing) so its start overlaps etcd/apiserver's.
    """
    env = daemon_env(bin_dir)
    node = tier == "node"
    _start(lay, "etcd", etcd_argv(bin_dir, lay), env)
    if node:
        _start(lay, "containerd", containerd_argv(lay), env)
    _wait(lay, "etcd", probe.etcd_healthy, "etcd /health")
    _start(lay, "kube-apiserver", apiserver_argv(bin_dir, lay, node_ip), env)
    if node:
        _wait(lay, "containerd", lambda: probe.containerd_ready(lay), "containerd")
        archive = lay.root / "images" / "kvault-images.tar"
        images.write_archive(archive)
        images.import_archive(archive, str(lay.containerd_sock))
    _wait(lay, "kube-apiserver", lambda: probe.apiserver_ready(lay), "apiserver /readyz")
    _start(lay, "kube-controller-manager", controller_manager_argv(bin_dir, lay), env)
    _start(lay, "kube-scheduler", scheduler_argv(bin_dir, lay), env)
    if node:
        _start(lay, "kubelet", kubelet_argv(bin_dir, lay, node_ip), env)
        _start(lay, "kube-proxy", kube_proxy_argv(bin_dir, lay), env)
        addons.apply(bin_dir, lay)
        _start(lay, "coredns", coredns_argv(lay), env)
        _start(lay, "local-path-provisioner", local_path_argv(lay), env)
    _wait(
        lay,
        "kube-controller-manager",
        lambda: probe.default_sa_exists(lay),
        "ServiceAccount default/default",
    )
    if node:
        _wait(lay, "kubelet", lambda: probe.node_ready(lay), "node Ready")
        _wait(lay, "coredns", lambda: probe.http_ok(COREDNS_READY_PORT, "/ready"), "CoreDNS")
        _wait(
            lay,
            "kube-proxy",
            lambda: probe.http_ok(KUBE_PROXY_HEALTHZ_PORT, "/healthz"),
            "kube-proxy /healthz",
        )
        _alive_or_fail(lay, "local-path-provisioner")
    _alive_or_fail(lay, "kube-scheduler")


def components(tier: str) -> list[str]:
    """Daemons a tier runs (what ``status`` reports and ``up`` checks)."""
    cp = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]
    node = ["containerd", "kubelet", "kube-proxy", "coredns", "local-path-provisioner"]
    return [*cp, *node] if tier == "node" else cp
