"""External Secrets Operator for ``python -m bench peers operator``: its CRDs, a
ClusterSecretStore with the ``fake`` provider, ExternalSecrets, and ESO as a host process.

ESO v0.16.2 is built from its Go module (e2e/peers.py); its CRDs are the module's own
``deploy/crds/bundle.yaml`` (20 CRDs), server-side applied with e2e/crds.py. Outside a cluster
ESO reads ``KUBECONFIG`` (it has no ``--kubeconfig`` flag); it runs without its webhook and
cert controller (neither is needed to sync), with leader election off (its default).

v0.16.2's fake provider is not safe for concurrent reconciles: ``fake.(*Provider).NewClient``
writes a map shared by every worker, and with ``--concurrent`` above 1 the process dies within
seconds (``fatal error: concurrent map writes``; upstream external-secrets#6233, fixed after
the versions the module proxy serves here). The best setting therefore runs ESO with
``GOMAXPROCS=1`` (one core, as kvault's Python operator effectively uses): goroutines then
interleave only at preemption points and the race did not fire in our runs. Should ESO still
die, :func:`cold` restarts it at once (as a kubelet would, minus its back-off) and counts it.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from bench.peers_apiserver import Identity, RequestKey, scrape
from bench.peers_cluster import (
    SecretFollower,
    cold_figures,
    custom_api,
    free_port,
    proc_stats,
)
from bench.peers_store import stop_process
from e2e import kube, peers
from e2e.crds import apply_crds
from e2e.fixtures import Cluster
from e2e.wait import Abort, wait_for

GROUP, VERSION = "external-secrets.io", "v1"
#: The label ESO puts on every Secret it manages.
LABEL = "reconcile.external-secrets.io/managed=true"
#: Restarts after a crash before a cold run gives up.
MAX_CRASHES = 200


@dataclass(frozen=True)
class Setting:
    """A way to run ESO: flags (from ``external-secrets --help``) and environment."""

    name: str
    flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        return " ".join(x for x in (env, "external-secrets", *self.flags) if x)


#: ``--concurrent 1``, ``--client-qps 50``, ``--client-burst 100``, GOMAXPROCS = cores.
DEFAULT = Setting("default")
#: Concurrency 4/16/32/64 tried at N=1,000 (GOMAXPROCS=1): 4 is latency-bound (each sync waits
#: ~80 ms on an uncached LIST of Secrets), 16-64 are CPU-bound and equal within noise.
BEST = Setting(
    "best",
    ("--concurrent", "32", "--client-qps", "1000", "--client-burst", "2000"),
    {"GOMAXPROCS": "1"},
)


def binary(build: bool) -> Path:
    """The ESO binary (built once, cached: ``python -m e2e.tools build external-secrets``)."""
    path = peers.ensure("external-secrets") if build else peers.PEERS["external-secrets"].path
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: python -m e2e.tools build external-secrets")
    return path


def crd_dir() -> Path:
    """``deploy/crds`` of the ESO module (in the module cache; ``go mod download``)."""
    peer = peers.PEERS["external-secrets"]
    info = peers.download(f"{peer.module}@{peer.version}", peer.root / "download")
    return Path(info["Dir"]) / "deploy" / "crds"


def apply(cluster: Cluster) -> list[str]:
    """Server-side apply ESO's CRDs; the names of those that did not exist before (the ones
    :func:`remove` deletes at the end)."""
    ext = client.ApiextensionsV1Api(cluster.api)
    before = {c.metadata.name for c in ext.list_custom_resource_definition().items}
    names = apply_crds(cluster.api, directory=crd_dir())
    return [n for n in names if n not in before]


def remove(cluster: Cluster, names: list[str]) -> None:
    ext = client.ApiextensionsV1Api(cluster.api)
    for name in names:
        kube.get_or_none(ext.delete_custom_resource_definition, name)
    wait_for(
        lambda: all(
            kube.get_or_none(ext.read_custom_resource_definition, n) is None for n in names
        ),
        300,
        "ESO CRDs deleted",
        interval=1.0,
    )


# --- objects ------------------------------------------------------------------------------------


def create_store(cluster: Cluster, name: str, n: int) -> None:
    """A ClusterSecretStore whose fake provider holds ``item-0 .. item-(n-1)``."""
    data = [{"key": f"item-{i}", "value": f"v0-{i}"} for i in range(n)]
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClusterSecretStore",
        "metadata": {"name": name},
        "spec": {"provider": {"fake": {"data": data}}},
    }
    custom_api(cluster).create_cluster_custom_object(GROUP, VERSION, "clustersecretstores", body)


def delete_store(cluster: Cluster, name: str) -> None:
    kube.get_or_none(
        custom_api(cluster).delete_cluster_custom_object,
        GROUP,
        VERSION,
        "clustersecretstores",
        name,
    )


def set_value(cluster: Cluster, store: str, i: int, value: str) -> None:
    """Change one key at the source: a JSON patch of the store's fake data."""
    patch = [{"op": "replace", "path": f"/spec/provider/fake/data/{i}/value", "value": value}]
    custom_api(cluster).patch_cluster_custom_object(
        GROUP,
        VERSION,
        "clustersecretstores",
        store,
        patch,
        _content_type="application/json-patch+json",
    )


def create_external_secret(cluster: Cluster, ns: str, i: int, store: str, refresh: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ExternalSecret",
        "metadata": {"name": f"es-{i}", "namespace": ns},
        "spec": {
            "refreshInterval": refresh,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": store},
            "target": {"name": f"es-{i}"},
            "data": [{"secretKey": "value", "remoteRef": {"key": f"item-{i}"}}],
        },
    }
    custom_api(cluster).create_namespaced_custom_object(GROUP, VERSION, ns, "externalsecrets", body)


def set_refresh(cluster: Cluster, ns: str, i: int, refresh: str) -> None:
    custom_api(cluster).patch_namespaced_custom_object(
        GROUP, VERSION, ns, "externalsecrets", f"es-{i}", {"spec": {"refreshInterval": refresh}}
    )


def touches(key: RequestKey) -> bool:
    """The apiserver requests ESO's sync makes (its groups, Secrets, Events); watches (long
    running, one per informer) are left out."""
    verb, group, resource, _sub = key
    if verb == "WATCH":
        return False
    return group.endswith("external-secrets.io") or resource in ("secrets", "events")


# --- the process --------------------------------------------------------------------------------


@dataclass
class Eso:
    process: subprocess.Popen[bytes]
    setting: Setting
    metrics: str
    log: Path
    started: float  # perf_counter just before the exec

    def stats(self) -> dict[str, float]:
        return proc_stats(self.process.pid)

    def client_requests(self) -> int:
        """``rest_client_requests_total`` (client-go's own count of its requests), summed."""
        try:
            with urllib.request.urlopen(self.metrics, timeout=10) as resp:
                text = resp.read().decode()
        except OSError:
            return -1
        found = re.findall(r"^rest_client_requests_total\{[^}]*\} (\S+)$", text, re.MULTILINE)
        return int(sum(float(v) for v in found))

    def crashed(self) -> bool:
        return self.process.poll() is not None

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        fatal = [i for i, line in enumerate(text) if line.startswith("fatal error")]
        start = fatal[0] if fatal else max(0, len(text) - lines)
        return "\n".join(text[start : start + lines])

    def check(self) -> None:
        if self.crashed():
            raise Abort(f"ESO exited with {self.process.returncode}")

    def stop(self) -> None:
        stop_process(self.process, "external-secrets")


def start(cluster: Cluster, exe: Path, setting: Setting, log_dir: Path) -> Eso:
    """``external-secrets --metrics-addr 127.0.0.1:PORT FLAGS`` with ``KUBECONFIG`` set; no
    wait: the cold reconcile counts from here."""
    port = free_port()
    log = log_dir / f"eso-{setting.name}-{int(time.time() * 1000)}.log"
    args = [str(exe), "--metrics-addr", f"127.0.0.1:{port}", *setting.flags]
    env = {**os.environ, "KUBECONFIG": cluster.kubeconfig, **setting.env}
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    return Eso(proc, setting, f"http://127.0.0.1:{port}/metrics", log, started)


class Supervisor:
    """Keeps one ESO running as ``who``: :meth:`recover` restarts it at once after a crash (as
    a kubelet would, minus its back-off) and records the crash."""

    def __init__(self, who: Identity, exe: Path, setting: Setting, log_dir: Path) -> None:
        self.who, self.exe, self.setting, self.log_dir = who, exe, setting, log_dir
        self.crashes: list[str] = []
        self.eso = start(who.cluster, exe, setting, log_dir)

    def check(self) -> None:
        self.eso.check()

    def recover(self) -> bool:
        """If ESO died: note why, start it again and return True; else False."""
        if not self.eso.crashed():
            return False
        lines = self.eso.tail(8).splitlines() if self.eso.log.exists() else ["exited"]
        first = next((x for x in lines if "fake.go" in x or "secretstore" in x), "")
        self.crashes.append(" / ".join(x.strip() for x in (lines[0], first) if x))
        if len(self.crashes) > MAX_CRASHES:
            raise RuntimeError(f"ESO crashed {len(self.crashes)} times: {self.crashes[-1]}")
        self.eso = start(self.who.cluster, self.exe, self.setting, self.log_dir)
        return True

    def stop(self) -> None:
        self.eso.stop()


def cold(
    admin: Cluster,
    sup: Supervisor,
    follower: SecretFollower,
    keys: set[tuple[str, str]],
    timeout: float,
    settle: float,
) -> dict[str, Any]:
    """Time from ESO's exec (``sup`` has just started it) until every Secret of ``keys``
    exists, restarting it after a crash; its requests until ``settle`` s later."""
    before = scrape(admin)
    t0 = sup.eso.started
    deadline = t0 + timeout
    while True:
        try:
            last = follower.wait_all(keys, max(1.0, deadline - time.perf_counter()), sup.check)
            break
        except Abort:
            if not sup.recover():
                raise
    eso = sup.eso
    stats = eso.stats()
    elapsed = last - t0
    time.sleep(settle)  # the tail of the reconcile (status writes) belongs to its cost
    requests = scrape(admin).by_flow[sup.who.name] - before.by_flow[sup.who.name]
    n = len(keys)
    return {
        "setting": sup.setting.describe(),
        **cold_figures(n, elapsed, stats, requests),
        "client_requests_per_object": round(eso.client_requests() / n, 2),
        "crashes": len(sup.crashes),
        "crash_reasons": sorted(set(sup.crashes)),
    }


def describe() -> dict[str, Any]:
    peer = peers.PEERS["external-secrets"]
    return {
        "module": f"{peer.module}@{peer.version}",
        "license": peer.license,
        "build": peers.build_info("external-secrets"),
        "crds": "deploy/crds/bundle.yaml of the module (server-side apply)",
        "provider": "fake (one ClusterSecretStore holding N keys)",
        "settings": {s.name: s.describe() for s in (DEFAULT, BEST)},
    }
