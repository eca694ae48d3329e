"""Config files for each component, rendered from the layout (no templates on disk)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from e2e import versions
from e2e.layout import (
    APISERVER_PORT,
    BRIDGE,
    BRIDGE_IP,
    CGROUP_ROOT,
    CLUSTER_DOMAIN,
    CNI_NETWORK,
    COREDNS_HEALTH_PORT,
    COREDNS_READY_PORT,
    DNS_SERVICE_IP,
    KUBE_PROXY_HEALTHZ_PORT,
    KUBE_PROXY_METRICS_PORT,
    NODE_NAME,
    POD_CIDR,
    SERVICE_CIDR,
    Layout,
)

CNI_BIN = "/usr/lib/cni"  # Debian containernetworking-plugins


def kubeconfig(lay: Layout, user: str, cert_stem: str, server: str | None = None) -> str:
    """A kubeconfig that authenticates with a client certificate from our PKI."""
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kvault-e2e",
                "cluster": {
                    "server": server or f"https://127.0.0.1:{APISERVER_PORT}",
                    "certificate-authority": str(lay.pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(lay.pki / f"{cert_stem}.crt"),
                    "client-key": str(lay.pki / f"{cert_stem}.key"),
                },
            }
        ],
        "contexts": [{"name": "kvault-e2e", "context": {"cluster": "kvault-e2e", "user": user}}],
        "current-context": "kvault-e2e",
    }
    return yaml.safe_dump(doc, sort_keys=False)


def scheduler_config(lay: Layout) -> str:
    """KubeSchedulerConfiguration: no leader election on a one-node cluster."""
    return yaml.safe_dump(
        {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(lay.component_kubeconfig("scheduler"))},
            "leaderElection": {"leaderElect": False},
        },
        sort_keys=False,
    )


def containerd_config(lay: Layout) -> str:
    """containerd (1.6, config v2) with every path under the cluster directory.

    ``restrict_oom_score_adj``: this kernel refuses negative oom_score_adj even to root and
    CRI asks -998 per sandbox. ``netns_mounts_under_state_dir`` keeps pod network namespaces
    under our state dir so teardown finds them.
    """
    c = lay.containerd
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{lay.containerd_sock}"

[ttrpc]
  address = "{lay.containerd_sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"

[{cri}]
  sandbox_image = "{versions.PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = "/usr/sbin/runc"
  Root = "{c / "runc"}"

[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{lay.cni_conf}"
"""


def cni_conflist(lay: Layout) -> str:
    """Bridge without masquerade: pods reach the host, never leave it.

    The service CIDR is routed via the gateway so kube-proxy's DNAT on the host sees it;
    there is no default route (and forwarding out of the bridge is dropped, e2e/netfilter).
    """
    doc = {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(lay.cni_ipam),
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": POD_CIDR}, {"dst": SERVICE_CIDR}],
                },
            },
        ],
    }
    return json.dumps(doc, indent=2)


def kubelet_config(lay: Layout) -> str:
    """KubeletConfiguration tuned for a throw-away test node on cgroup v1.

    Short syncFrequency + Watch so Secret changes reach mounted files in seconds; image GC
    off because containerd 1.6.20 does not pin the (unpullable) pause image.
    """
    doc: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{lay.containerd_sock}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT}",
        "failCgroupV1": False,
        "failSwapOn": False,
        "oomScoreAdj": 0,
        "address": "0.0.0.0",
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(lay.pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(lay.pki / "kubelet-serving.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(lay.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "syncFrequency": "3s",
        "configMapAndSecretChangeDetectionStrategy": "Watch",
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "podLogsDir": str(lay.root / "pod-logs"),
        "podCIDR": POD_CIDR,
        "resolvConf": "/etc/resolv.conf",
        "clusterDNS": [DNS_SERVICE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        "serializeImagePulls": False,
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def kube_proxy_config(lay: Layout) -> str:
    """KubeProxyConfiguration (iptables mode) that writes no sysctl this host refuses.

    ``oomScoreAdj: 0`` (negative is refused here); conntrack sizes/timeouts 0 = leave the
    kernel's; ``localhostNodePorts: false`` avoids setting route_localnet; healthz and
    metrics on 127.0.0.1, NodePorts on the bridge address only. ``clusterCIDR`` makes
    traffic from outside the pod network (the host) masqueraded, so replies find their way
    back through the bridge.
    """
    doc: dict[str, Any] = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(lay.component_kubeconfig("kube-proxy"))},
        "mode": "iptables",
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": POD_CIDR,
        "detectLocalMode": "ClusterCIDR",
        "oomScoreAdj": 0,
        "healthzBindAddress": f"127.0.0.1:{KUBE_PROXY_HEALTHZ_PORT}",
        "metricsBindAddress": f"127.0.0.1:{KUBE_PROXY_METRICS_PORT}",
        "nodePortAddresses": [f"{BRIDGE_IP}/32"],  # NodePorts on the bridge address only
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False, "syncPeriod": "30s"},
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def corefile(lay: Layout) -> str:
    """CoreDNS answers cluster names only (no forwarding: there is no network), on the bridge."""
    kc = lay.component_kubeconfig("coredns")
    return f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {BRIDGE_IP}
    errors
    health 127.0.0.1:{COREDNS_HEALTH_PORT}
    ready 127.0.0.1:{COREDNS_READY_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kc} kvault-e2e
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
"""


def local_path_config(lay: Layout) -> str:
    """local-path-provisioner's config: every node's volumes under the cluster dir."""
    doc = {
        "nodePathMap": [
            {"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [str(lay.local_path)]}
        ]
    }
    return json.dumps(doc, indent=2)


def write_all(lay: Layout) -> None:
    """Write every config file and kubeconfig of the cluster."""
    lay.etc.mkdir(parents=True, exist_ok=True)
    lay.cni_conf.mkdir(parents=True, exist_ok=True)
    files: dict[Path, str] = {
        lay.kubeconfig: kubeconfig(lay, "admin", "admin"),
        lay.component_kubeconfig("controller-manager"): kubeconfig(
            lay, "system:kube-controller-manager", "controller-manager"
        ),
        lay.component_kubeconfig("scheduler"): kubeconfig(
            lay, "system:kube-scheduler", "scheduler"
        ),
        lay.component_kubeconfig("kubelet"): kubeconfig(lay, f"system:node:{NODE_NAME}", "kubelet"),
        lay.component_kubeconfig("kube-proxy"): kubeconfig(lay, "system:kube-proxy", "kube-proxy"),
        lay.component_kubeconfig("coredns"): kubeconfig(lay, "system:kvault:coredns", "coredns"),
        lay.component_kubeconfig("local-path"): kubeconfig(
            lay, "system:kvault:local-path-provisioner", "local-path"
        ),
        lay.etc / "kube-proxy.yaml": kube_proxy_config(lay),
        lay.etc / "Corefile": corefile(lay),
        lay.etc / "local-path.json": local_path_config(lay),
        lay.etc / "scheduler.yaml": scheduler_config(lay),
        lay.etc / "containerd.toml": containerd_config(lay),
        lay.etc / "kubelet.yaml": kubelet_config(lay),
        lay.cni_conf / "10-kvault.conflist": cni_conflist(lay),
    }
    for path, text in files.items():
        path.write_text(text)
