"""Where every piece of cluster state lives and which addresses the cluster uses.

Everything (PKI, configs, etcd data, containerd root/state, kubelet root, CNI leases,
pid files, logs) sits under one directory so ``down`` can find and remove all of it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from e2e import versions

NODE_NAME = "kvault-node"
SERVICE_CIDR = "10.96.0.0/24"
SERVICE_IP = "10.96.0.1"  # first IP of SERVICE_CIDR: the `kubernetes` Service
POD_CIDR = "10.244.0.0/24"
#: The bridge's own address: the pods' gateway, and where CoreDNS listens (port 53).
BRIDGE_IP = "10.244.0.1"
#: Fixed ClusterIP of kube-system/kube-dns (kubelet clusterDNS); its endpoint is BRIDGE_IP.
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
COREDNS_HEALTH_PORT = 10054  # 127.0.0.1 only
COREDNS_READY_PORT = 10055  # 127.0.0.1 only; 200 once the kubernetes plugin synced
KUBE_PROXY_HEALTHZ_PORT = 10256  # 127.0.0.1 only
KUBE_PROXY_METRICS_PORT = 10249  # 127.0.0.1 only
LOCAL_PATH_NAMESPACE = "local-path-storage"
STORAGE_CLASS = "local-path"
BRIDGE = "kvault0"
CNI_NETWORK = "kvault"
CGROUP_ROOT = "kvault"  # kubelet --cgroup-root (one dir per v1 hierarchy), ours alone
ETCD_PORT = 12379
ETCD_PEER_PORT = 12380
APISERVER_PORT = 6443


def node_ip() -> str:
    """Source address of the default route: non-loopback, as apiserver and kubelet need.

    A UDP connect sends no packet; it only asks the kernel for the route's source address.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            ip = str(s.getsockname()[0])
        except OSError:
            ip = ""
    if not ip or ip.startswith("127."):
        raise RuntimeError("no non-loopback IPv4 address with a route; kubelet needs one")
    return ip


@dataclass(frozen=True)
class Layout:
    """Paths below the cluster directory."""

    root: Path

    @classmethod
    def default(cls) -> Layout:
        """Layout of the configured cluster directory (KVAULT_CLUSTER_DIR)."""
        return cls(versions.cluster_dir())

    @cached_property
    def pki(self) -> Path:
        return self.root / "pki"

    @cached_property
    def etc(self) -> Path:
        return self.root / "etc"

    @cached_property
    def logs(self) -> Path:
        return self.root / "logs"

    @cached_property
    def run(self) -> Path:
        return self.root / "run"

    @cached_property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @cached_property
    def containerd(self) -> Path:
        return self.root / "containerd"

    @cached_property
    def containerd_sock(self) -> Path:
        return self.containerd / "containerd.sock"

    @cached_property
    def kubelet(self) -> Path:
        return self.root / "kubelet"

    @cached_property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "net.d"

    @cached_property
    def cni_ipam(self) -> Path:
        return self.root / "cni" / "ipam"

    @cached_property
    def local_path(self) -> Path:
        """Where local-path-provisioner creates PersistentVolume directories."""
        return self.root / "local-path"

    @cached_property
    def saved_sysctls(self) -> Path:
        """Host sysctl values before ``up`` changed them (restored by ``down``)."""
        return self.run / "sysctls.json"

    @cached_property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (what ``python -m e2e.cluster kubeconfig`` prints)."""
        return self.root / "kubeconfig"

    @cached_property
    def tier_file(self) -> Path:
        return self.run / "tier"

    def component_kubeconfig(self, name: str) -> Path:
        return self.etc / f"{name}.kubeconfig"

    def pidfile(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"
