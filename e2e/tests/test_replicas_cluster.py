"""Two replicas on PostgreSQL in the local cluster: failover without loss (issue 13).

PostgreSQL runs on the node, as a managed database outside the cluster would, listening on
the bridge address the pods reach; the chart installs kvault with ``storage.backend:
postgresql`` (a StatefulSet of 2, one root key from a Secret). An unmodified Azure SDK client
writes and reads through the Service while the Lease holder's Pod is deleted; writes served
by the replica that does not lead reach the projected Secret through the change notices.
"""

from __future__ import annotations

import base64
import itertools
import os
import socket
import ssl
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError
from azure.core.pipeline.transport import RequestsTransport
from azure.keyvault.secrets import SecretClient
from kubernetes import client, watch
from requests.adapters import HTTPAdapter

from e2e import kube
from e2e.crds import apply_crds
from e2e.fixtures import Cluster
from e2e.incluster import CHART, _helm_with_values, base_values, ensure_image, helm
from e2e.layout import BRIDGE_IP, POD_CIDR
from e2e.operator_harness import (
    ADMIN,
    SU,
    admin_token,
    create,
    make_namespace,
    provision_vault,
    release,
    sa_role,
    set_secret,
    wait_condition,
    watch_secret_change,
)
from e2e.wait import wait_for
from kvault.cli.client import DataPlane, Endpoint
from tests.fixtures.postgres import PostgresServer

NAME, NAMESPACE, PREFIX = "kvha", "kvault-ha", "kvha-"
LEASE = "kvault-operator"
#: Seconds of the Lease (the chart's --lease-duration): the failover must take less.
LEASE_DURATION = 15.0
#: Writes (each followed by a read) the client makes across the failover.
WRITES = int(os.environ.get("KVAULT_HA_WRITES", "150"))


@dataclass
class HA:
    cluster: Cluster
    ca_file: str
    endpoint: str  # https://<Service ClusterIP>:443
    logs: list[str] = field(default_factory=list)

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/name=kvault,app.kubernetes.io/instance={NAME}"

    def pods(self) -> list[client.V1Pod]:
        items = self.cluster.core.list_namespaced_pod(NAMESPACE, label_selector=self.selector)
        return [p for p in items.items if p.metadata.deletion_timestamp is None]

    def ready(self) -> list[client.V1Pod]:
        return [
            p
            for p in self.pods()
            if {c.type: c.status for c in (p.status.conditions or [])}.get("Ready") == "True"
        ]

    def holder(self) -> str | None:
        """The Lease holder's identity (``<hostname>-<pid>-<random>``: one per process)."""
        lease = kube.get_or_none(
            client.CoordinationV1Api(self.cluster.api).read_namespaced_lease, LEASE, NAMESPACE
        )
        return lease.spec.holder_identity if lease is not None else None

    def leader(self) -> str | None:
        """The Pod holding the Lease."""
        holder = self.holder()
        return next((p.metadata.name for p in self.pods() if holder and
                     holder.startswith(p.metadata.name + "-")), None)  # fmt: skip

    def remember_logs(self) -> None:
        for pod in self.pods():
            log = kube.get_or_none(
                self.cluster.core.read_namespaced_pod_log, pod.metadata.name, NAMESPACE
            )
            if log:
                self.logs.append(f"--- {pod.metadata.name}\n{log}")


def _trusted(ha: HA) -> bool:
    """Whether every Ready replica's certificate verifies against the published CA (one CA
    for all, whichever replica the Service picks)."""
    ctx = ssl.create_default_context(cafile=ha.ca_file)
    ctx.check_hostname = False
    for pod in ha.ready():
        try:
            with (
                socket.create_connection((pod.status.pod_ip, 8443), timeout=5) as raw,
                ctx.wrap_socket(raw, server_hostname=f"main.{PREFIX}x.svc"),
            ):
                pass
        except ssl.SSLCertVerificationError as exc:
            print(f"{pod.metadata.name}: not trusted: {exc.verify_message}")
            return False
    return True


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(
        settings={"listen_addresses": f"'127.0.0.1,{BRIDGE_IP}'"},
        hba=[f"host all all {POD_CIDR} scram-sha-256"],
    )
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def ha(kube_cluster: Cluster, postgres: PostgresServer) -> Iterator[HA]:
    cluster = kube_cluster
    apply_crds(cluster.api)
    tag = ensure_image(cluster)
    database = postgres.create_database("kvault_ha")
    pod_dsn = database.replace(f"@{postgres.host}:", f"@{BRIDGE_IP}:")
    core = cluster.core
    if kube.get_or_none(core.read_namespace, NAMESPACE) is None:
        core.create_namespace({"metadata": {"name": NAMESPACE}})
    root = base64.b64encode(os.urandom(32)).decode()
    for secret, data in (("kvault-pg", {"dsn": pod_dsn}), ("kvault-root", {"key": root})):
        body = {"metadata": {"name": secret}, "stringData": data}
        kube.get_or_none(core.delete_namespaced_secret, secret, NAMESPACE)
        core.create_namespaced_secret(NAMESPACE, body)
    values: dict[str, Any] = base_values(tag, watch=(f"{PREFIX}*",))
    values["operator"].update(
        {
            "hsm": {"plugin": "software", "options": {"key_env": "KVAULT_ROOT_KEY"}},
            "extraEnv": [
                {
                    "name": "KVAULT_ROOT_KEY",
                    "valueFrom": {"secretKeyRef": {"name": "kvault-root", "key": "key"}},
                }
            ],
        }
    )
    values["storage"] = {"backend": "postgresql", "postgresql": {"existingSecret": "kvault-pg"}}
    values["webhook"] = {"enabled": False}
    started = time.monotonic()
    _helm_with_values(cluster, values, "upgrade", "--install", NAME, str(CHART), "-n",
                      NAMESPACE)  # fmt: skip
    svc = core.read_namespaced_service(f"{NAME}-kvault" if "kvault" not in NAME else NAME,
                                       NAMESPACE)  # fmt: skip
    port = next(p.port for p in svc.spec.ports if p.name == "https")
    handle = HA(cluster, "", f"https://{svc.spec.cluster_ip}:{port}")
    try:
        wait_for(lambda: len(handle.ready()) == 2, 300, "both kvault replicas Ready")
        wait_for(handle.leader, 120, "one replica to hold the Lease")
        ca = wait_for(
            lambda: kube.get_or_none(core.read_namespaced_config_map, "kvault-ca", NAMESPACE),
            120,
            "ConfigMap kvault-ca",
        )
        ca_file = postgres.root / "kvault-ha-ca.crt"
        ca_file.write_text(ca.data["ca.crt"])
        handle.ca_file = str(ca_file)
        wait_for(lambda: _trusted(handle), 60, "every replica to serve under kvault-ca")
        print(
            f"helm install (2 replicas on PostgreSQL) -> Ready: {time.monotonic() - started:.1f} s"
        )
        yield handle
    finally:
        handle.remember_logs()
        helm(cluster.kubeconfig, "uninstall", NAME, "-n", NAMESPACE, "--wait")
        for pvc in core.list_namespaced_persistent_volume_claim(NAMESPACE).items:
            core.delete_namespaced_persistent_volume_claim(pvc.metadata.name, NAMESPACE)
        kube.get_or_none(core.delete_namespace, NAMESPACE)


@pytest.fixture
def namespace(kube_cluster: Cluster, ha: HA) -> Iterator[str]:
    name = make_namespace(kube_cluster, prefix=PREFIX)
    yield name
    release(kube_cluster, [name])


class _Bearer:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken(self.token, 2**31 - 1)


class _VaultName(HTTPAdapter):
    """The host's stand-in for cluster DNS: requests for ``https://V.N.svc`` (the vault URL a
    pod uses, and the ids and next links kvault answers with) go to the Service's address,
    presenting and verifying the vault's name (SNI and certificate)."""

    def __init__(self, host: str, address: str) -> None:
        self._host, self._address = host, address
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._host
        kwargs["assert_hostname"] = self._host
        super().init_poolmanager(*args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        if parts.hostname == self._host:
            request.url = urlunsplit(parts._replace(netloc=self._address))
            request.headers["Host"] = self._host
        return super().send(request, **kwargs)


def _sdk(ha: HA, token: str, host: str) -> SecretClient:
    session = requests.Session()
    session.mount("https://", _VaultName(host, ha.endpoint.removeprefix("https://")))
    return SecretClient(
        f"https://{host}",
        _Bearer(token),
        verify_challenge_resource=False,
        # A transport of our own takes the CA itself (the client's connection_verify is for
        # the transport it would build).
        transport=RequestsTransport(
            session=session, session_owner=True, connection_verify=ha.ca_file
        ),
    )


@dataclass
class _Projection:
    """What a watch saw of the projected Secret: each write of it, as (value, data changed)."""

    writes: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def values(self) -> list[str]:
        return [v for v, changed in self.writes if changed]

    @property
    def rewrites(self) -> int:
        """Updates that wrote the value it already held (a duplicated projection)."""
        return sum(1 for _, changed in self.writes[1:] if not changed)


def _watch_secret(cluster: Cluster, ns: str, name: str, stop: threading.Event) -> _Projection:
    """Watch Secret ``name`` until ``stop``, resuming from the last resourceVersion seen (no
    event is missed between two watch requests)."""
    seen = _Projection()
    first = cluster.core.read_namespaced_secret(name, ns)
    seen.writes.append((base64.b64decode(first.data["value"]).decode(), True))
    version = first.metadata.resource_version

    def run() -> None:
        nonlocal version
        w = watch.Watch()
        only = f"metadata.name={name}"
        while not stop.is_set():
            for event in w.stream(cluster.core.list_namespaced_secret, ns, field_selector=only,
                                  resource_version=version, timeout_seconds=2):  # fmt: skip
                obj = event["object"]
                version = obj.metadata.resource_version
                if event["type"] == "MODIFIED" and (obj.data or {}).get("value"):
                    value = base64.b64decode(obj.data["value"]).decode()
                    seen.writes.append((value, value != seen.values[-1]))
                if stop.is_set():
                    w.stop()

    threading.Thread(target=run, daemon=True).start()
    return seen


def test_leader_deleted_mid_traffic_loses_nothing(
    kube_cluster: Cluster, ha: HA, namespace: str
) -> None:
    """``kubectl delete pod`` of the Lease holder while a client writes and reads through the
    Service: the other replica takes the Lease within the lease duration, every acknowledged
    write reads back, the projection follows every value in order, once each."""
    cluster, ns = kube_cluster, namespace
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "app"}})
    provision_vault(cluster, ns, "main", [sa_role("app", SU), sa_role("admin", ADMIN)])
    host = f"main.{ns}.svc"
    sdk = _sdk(ha, admin_token(cluster, ns), host)
    first = sdk.set_secret("counter", "0")
    spec = {
        "vaultRef": {"name": "main"},
        "serviceAccountName": "app",
        "data": [{"secretKey": "value", "remoteRef": {"name": "counter"}}],
    }
    create(cluster, ns, "vaultsecrets", "VaultSecret", "app", spec)
    wait_condition(cluster, ns, "vaultsecrets", "app", "True", "Synced")
    stop = threading.Event()
    projected = _watch_secret(cluster, ns, "app", stop)

    acknowledged: dict[str, str] = {first.properties.version or "": "0"}
    errors: list[str] = []
    stamps: list[float] = []
    progress = threading.Semaphore(0)

    def client_loop() -> None:
        for i in range(1, WRITES + 1):
            try:
                written = sdk.set_secret("counter", str(i))
                acknowledged[written.properties.version or ""] = str(i)
                read = sdk.get_secret("counter")
                if read.value != str(i):
                    errors.append(f"read {read.value!r} after writing {i}")
            except AzureError as exc:  # after the SDK's own retries
                errors.append(f"{i}: {type(exc).__name__}: {str(exc)[:200]}")
            stamps.append(time.monotonic())
            progress.release()

    leader, holder = ha.leader(), ha.holder()
    assert leader is not None and holder is not None
    writer = threading.Thread(target=client_loop)
    writer.start()
    for _ in range(WRITES // 3):  # a third of the writes, then the failover
        progress.acquire()
    ha.remember_logs()
    deleted_at = time.monotonic()
    cluster.core.delete_namespaced_pod(leader, NAMESPACE)
    wait_for(
        lambda: ha.holder() not in (None, holder) and ha.leader(),
        LEASE_DURATION * 4,
        "another replica to take the Lease",
    )
    took_over = time.monotonic() - deleted_at
    new_leader = f"{ha.leader()} ({ha.holder()})"
    writer.join(timeout=600)
    assert not writer.is_alive()
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    print(
        f"failover: {leader} deleted -> {new_leader} leads after {took_over:.1f} s; client "
        f"{WRITES} writes+reads, {len(errors)} failed after SDK retries, longest gap "
        f"{max(gaps):.2f} s, median {statistics.median(gaps) * 1000:.0f} ms"
    )
    assert took_over < LEASE_DURATION
    assert errors == []

    # Every acknowledged write reads back (by version), nothing else exists.
    versions = {p.version: p for p in sdk.list_properties_of_secret_versions("counter")}
    assert set(acknowledged) <= set(versions)
    for version, value in acknowledged.items():
        assert sdk.get_secret("counter", version).value == value
    # The projection reaches the last value; along the way, in order, never one twice.
    wait_for(lambda: projected.values[-1] == str(WRITES), 60, "the last value projected")
    stop.set()
    numbers = [int(v) for v in projected.values]
    print(
        f"projection: {len(numbers)} values written to the Secret in order "
        f"(writes coalesce while the workqueue is busy), {projected.rewrites} rewrites"
    )
    assert numbers == sorted(set(numbers)), numbers
    assert projected.rewrites == 0


def test_a_write_served_by_the_replica_that_does_not_lead_is_projected_at_once(
    kube_cluster: Cluster, ha: HA, namespace: str
) -> None:
    """Writes sent to the non-leader Pod itself reach the Secret the leader projects, through
    the PostgreSQL change notices: every one, with the latency reported (p50/p99)."""
    cluster, ns = kube_cluster, namespace
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "app"}})
    provision_vault(cluster, ns, "main", [sa_role("app", SU), sa_role("admin", ADMIN)])
    wait_for(lambda: len(ha.ready()) == 2, 300, "both replicas Ready")
    leader = wait_for(ha.leader, 120, "a Lease holder")
    follower = next(p for p in ha.ready() if p.metadata.name != leader)
    url = f"https://{follower.status.pod_ip}:8443"
    plane = DataPlane(Endpoint(url, admin_token(cluster, ns), ha.ca_file, f"main.{ns}.svc"))
    set_secret(plane, "db", "v-0")
    spec = {
        "vaultRef": {"name": "main"},
        "serviceAccountName": "app",
        "data": [{"secretKey": "value", "remoteRef": {"name": "db"}}],
    }
    create(cluster, ns, "vaultsecrets", "VaultSecret", "app", spec)
    wait_condition(cluster, ns, "vaultsecrets", "app", "True", "Synced")
    latencies = []
    for i in range(1, 101):
        value = f"v-{i}-{uuid.uuid4().hex[:6]}"

        def write(v: str = value) -> None:
            set_secret(plane, "db", v)

        latencies.append(watch_secret_change(cluster, ns, "app", "value", value, write, 10.0))
    latencies.sort()
    p50, p99 = latencies[49], latencies[98]
    print(
        f"write on the non-leader {follower.metadata.name} -> Secret projected by {leader}: "
        f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms "
        f"over {len(latencies)} writes"
    )
