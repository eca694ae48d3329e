"""The operator on a real cluster, installed by ``helm install`` and running as a Pod:
provisioning, projection into a mounted Secret, denials, deletion policies, refresh on
change, templates, and no value anywhere it must not be.

The session's release (``e2e/incluster.py``) watches the ``kvic-*`` namespaces these tests
create; the tests drive the data plane from the host through the Service's ClusterIP. The
crash and Lease tests, which need fault injection and two replicas, run the operator as a
host process (``test_operator_process.py``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from e2e import kube
from e2e.fixtures import Cluster
from e2e.incluster import Release
from e2e.operator_harness import (
    ADMIN,
    SU,
    admin_token,
    create,
    custom,
    data_plane,
    delete,
    events,
    get,
    make_namespace,
    release,
    restart_hash,
    sa_role,
    secret_data,
    set_secret,
    vault_spec,
    wait_condition,
    wait_gone,
    watch_secret_change,
)
from e2e.operator_harness import provision_vault as _vault
from e2e.wait import wait_for
from kvault.cli.client import DataPlane
from kvault.cli.errors import CliError

VALUE1 = "s3cr3t-value-" + uuid.uuid4().hex[:8]
VALUE2 = "r0tated-value-" + uuid.uuid4().hex[:8]


@pytest.fixture
def namespace(kube_cluster: Cluster, incluster: Release) -> Iterator[str]:
    """A fresh namespace the in-cluster operator watches; finalizers dropped, deleted after."""
    name = make_namespace(kube_cluster, prefix="kvic-")
    yield name
    release(kube_cluster, [name])
    kube.get_or_none(kube_cluster.core.delete_namespace, name)


@pytest.fixture
def operator(incluster: Release) -> Release:
    return incluster


def test_projection_reaches_pod_and_follows_rotation(
    kube_cluster: Cluster, namespace: str, operator: Release
) -> None:
    cluster, ns = kube_cluster, namespace
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "app"}})
    _vault(cluster, ns, "main", [sa_role("app", SU), sa_role("admin", ADMIN)])
    vault = get(cluster, ns, "vaults", "main")
    assert vault is not None and vault["status"]["vaultUri"] == f"https://main.{ns}.svc"
    svc = cluster.core.read_namespaced_service("main", ns)
    assert svc.spec.ports[0].port == 443
    ca = cluster.core.read_namespaced_config_map("kvault-ca", ns)
    assert "BEGIN CERTIFICATE" in ca.data["ca.crt"]

    plane = data_plane(operator, admin_token(cluster, ns), "main", ns)
    v1 = set_secret(plane, "db-password", VALUE1)
    create(
        cluster,
        ns,
        "vaultsecrets",
        "VaultSecret",
        "db",
        {
            "vaultRef": {"name": "main"},
            "serviceAccountName": "app",
            "data": [{"secretKey": "password", "remoteRef": {"name": "db-password"}}],
        },
    )
    vs = wait_condition(cluster, ns, "vaultsecrets", "db", "True", "Synced")
    assert vs["status"]["syncedVersions"] == {"password": v1}
    assert vs["status"]["secretName"] == "db"
    assert secret_data(cluster, ns, "db") == {"password": VALUE1}
    secret = cluster.core.read_namespaced_secret("db", ns)
    assert secret.metadata.labels["app.kubernetes.io/managed-by"] == "kvault"
    assert secret.metadata.annotations["kvault.io/content-hash"] == vs["status"]["contentHash"]
    assert secret.metadata.owner_references[0].kind == "VaultSecret"
    # kopf state: our prefix and finalizer on Vaults; nothing of kopf's on VaultSecrets.
    vault = get(cluster, ns, "vaults", "main")
    assert vault is not None and "kvault.io/finalizer" in vault["metadata"]["finalizers"]
    assert not any("zalando" in k for k in vault["metadata"].get("annotations", {}))
    assert vs["metadata"]["finalizers"] == ["kvault.io/projection"]
    assert not any(k.startswith("kopf") for k in vs["metadata"].get("annotations") or {})

    script = 'while true; do echo "value=$(cat /etc/db/password)"; sleep 1; done'
    pod = kube.busybox_pod(
        "reader",
        script,
        volumes=[{"name": "db", "secret": {"secretName": "db"}}],
        mounts=[{"name": "db", "mountPath": "/etc/db", "readOnly": True}],
    )
    cluster.core.create_namespaced_pod(ns, pod)
    kube.wait_pod_running(cluster.core, ns, "reader")
    kube.wait_log_line(cluster.core, ns, "reader", f"value={VALUE1}")

    took = watch_secret_change(
        cluster, ns, "db", "password", VALUE2, lambda: set_secret(plane, "db-password", VALUE2)
    )
    print(f"write -> Secret updated: {took * 1000:.1f} ms")  # a figure: `python -m bench operator`
    kube.wait_log_line(cluster.core, ns, "reader", f"value={VALUE2}", timeout=90)
    # The projection is audited as the ServiceAccount it acts as.
    audit = [json.loads(x) for x in (operator.data_dir / "audit.log").read_text().splitlines()]
    reads = [
        a
        for a in audit
        if a["operation"] == "SecretGet" and a["request_id"] == f"vaultsecret/{ns}/db"
    ]
    assert reads and all(a["principal"] == f"system:serviceaccount:{ns}:app" for a in reads)


@pytest.fixture
def other_namespace(kube_cluster: Cluster) -> Iterator[str]:
    name = make_namespace(kube_cluster, prefix="kvic-")
    yield name
    release(kube_cluster, [name])
    kube.get_or_none(kube_cluster.core.delete_namespace, name)


def _projection(
    cluster: Cluster,
    ns: str,
    vs: str,
    sa: str,
    item: str,
    vault: str = "main",
    vault_ns: str | None = None,
    **target: object,
) -> None:
    ref: dict[str, str] = {"name": vault}
    if vault_ns:
        ref["namespace"] = vault_ns
    spec: dict[str, object] = {
        "vaultRef": ref,
        "serviceAccountName": sa,
        "data": [{"secretKey": "value", "remoteRef": {"name": item}}],
    }
    if target:
        spec["target"] = target
    create(cluster, ns, "vaultsecrets", "VaultSecret", vs, spec)


def _assert_forbidden(cluster: Cluster, ns: str, name: str, *words: str) -> None:
    vs = wait_condition(cluster, ns, "vaultsecrets", name, "False", "Forbidden")
    message = next(c for c in vs["status"]["conditions"] if c["type"] == "Ready")["message"]
    for word in words:
        assert word in message, message
    assert kube.get_or_none(cluster.core.read_namespaced_secret, name, ns) is None
    wait_for(
        lambda: any(
            e.reason == "Forbidden" and e.type == "Warning" for e in events(cluster, ns, name)
        ),
        10,
        f"Forbidden Event on {name}",
    )


def test_denials_are_forbidden_with_clear_messages_and_no_secret(
    kube_cluster: Cluster, namespace: str, other_namespace: str, operator: Release
) -> None:
    cluster, ns, ns2, op = kube_cluster, namespace, other_namespace, operator
    for sa in ("app", "nobody", "scoped"):
        cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": sa}})
    cluster.core.create_namespaced_service_account(ns2, {"metadata": {"name": "app"}})
    _vault(
        cluster,
        ns,
        "main",
        [
            sa_role("app", SU),
            sa_role("scoped", SU, "/secrets/other-item"),
            sa_role("admin", ADMIN),
        ],
    )
    # The other namespace's vault trusts ITS OWN ServiceAccount "app", not ours.
    _vault(cluster, ns2, "shared", [sa_role("app", SU), sa_role("admin", ADMIN)])
    plane = data_plane(op, admin_token(cluster, ns), "main", ns)
    set_secret(plane, "db-password", VALUE1)
    set_secret(plane, "other-item", VALUE2)
    plane2 = data_plane(op, admin_token(cluster, ns2), "shared", ns2)
    set_secret(plane2, "db-password", VALUE1)

    # 1. a ServiceAccount without any role
    _projection(cluster, ns, "no-role", "nobody", "db-password")
    _assert_forbidden(cluster, ns, "no-role", f"{ns}/nobody", "db-password", f"main.{ns}")
    # 2. a role scoped to another item
    _projection(cluster, ns, "wrong-item", "scoped", "db-password")
    _assert_forbidden(cluster, ns, "wrong-item", f"{ns}/scoped", "'db-password'")
    # 3+4. another namespace's vault whose assignment names that namespace's SA "app"
    _projection(cluster, ns, "cross-ns", "app", "db-password", "shared", ns2)
    _assert_forbidden(cluster, ns, "cross-ns", f"{ns}/app", f"{ns2}/shared")
    # control: the other namespace's own "app" may read it
    _projection(cluster, ns2, "own", "app", "db-password", "shared")
    wait_condition(cluster, ns2, "vaultsecrets", "own", "True", "Synced")
    # 5. a missing ServiceAccount
    _projection(cluster, ns, "ghost", "ghost", "db-password")
    vs = wait_condition(cluster, ns, "vaultsecrets", "ghost", "False", "ServiceAccountNotFound")
    assert f"{ns}/ghost" in json.dumps(vs["status"])
    # 6. revocation: a projected Secret is removed when the role goes
    _projection(cluster, ns, "revoked", "app", "db-password")
    wait_condition(cluster, ns, "vaultsecrets", "revoked", "True", "Synced")
    assert secret_data(cluster, ns, "revoked") == {"value": VALUE1}
    patch = {"spec": {"roleAssignments": [sa_role("admin", ADMIN)]}}
    custom(cluster).patch_namespaced_custom_object(
        "kvault.io", "v1alpha1", ns, "vaults", "main", patch
    )
    _assert_forbidden(cluster, ns, "revoked", f"{ns}/app")
    assert VALUE1 not in op.text() and VALUE2 not in op.text()
    audit = [json.loads(x) for x in (op.data_dir / "audit.log").read_text().splitlines()]
    denied = {(a["principal"], a["item"]) for a in audit if a["outcome"] == "ForbiddenByRbac"}
    assert (f"system:serviceaccount:{ns}:nobody", "db-password") in denied


def test_deletion_policies_and_vault_recovery(
    kube_cluster: Cluster, namespace: str, operator: Release
) -> None:
    cluster, ns = kube_cluster, namespace
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "app"}})
    _vault(cluster, ns, "main", [sa_role("app", SU), sa_role("admin", ADMIN)])
    plane = data_plane(operator, admin_token(cluster, ns), "main", ns)
    set_secret(plane, "db-password", VALUE1)
    _projection(cluster, ns, "gone", "app", "db-password", deletionPolicy="Delete")
    _projection(cluster, ns, "kept", "app", "db-password", deletionPolicy="Retain")
    for name in ("gone", "kept"):
        wait_condition(cluster, ns, "vaultsecrets", name, "True", "Synced")
        assert secret_data(cluster, ns, name) == {"value": VALUE1}

    delete(cluster, ns, "vaultsecrets", "gone")
    wait_gone(cluster, ns, "vaultsecrets", "gone")
    wait_for(
        lambda: kube.get_or_none(cluster.core.read_namespaced_secret, "gone", ns) is None,
        30,
        "Secret gone deleted",
    )
    delete(cluster, ns, "vaultsecrets", "kept")
    wait_gone(cluster, ns, "vaultsecrets", "kept")
    kept = cluster.core.read_namespaced_secret("kept", ns)
    assert not kept.metadata.owner_references  # garbage collection will not take it
    assert secret_data(cluster, ns, "kept") == {"value": VALUE1}

    # A Vault deleted and re-created within retention comes back with its items.
    delete(cluster, ns, "vaults", "main")
    wait_gone(cluster, ns, "vaults", "main")
    with pytest.raises(CliError):
        set_secret(plane, "db-password", VALUE2)  # the vault is soft-deleted
    _vault(cluster, ns, "main", [sa_role("app", SU), sa_role("admin", ADMIN)])
    assert plane.request("GET", "/secrets/db-password")["value"] == VALUE1
    wait_for(
        lambda: any(e.reason == "Recovered" for e in events(cluster, ns, "main")),
        10,
        "Recovered Event",
    )
    vault = get(cluster, ns, "vaults", "main")
    assert vault is not None and vault["status"]["itemCounts"]["secrets"] == 1


def test_templates_data_from_and_no_value_outside_the_secret(
    kube_cluster: Cluster, namespace: str, operator: Release
) -> None:
    cluster, ns = kube_cluster, namespace
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "app"}})
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "nobody"}})
    _vault(cluster, ns, "main", [sa_role("app", SU), sa_role("admin", ADMIN)])
    plane = data_plane(operator, admin_token(cluster, ns), "main", ns)
    values = {
        "db-password": VALUE1,
        "app-token": VALUE2,
        "app-key": "k3y-" + uuid.uuid4().hex,
        "tagged": "t4g-" + uuid.uuid4().hex,
    }
    for name, value in values.items():
        extra = {"tags": {"team": "blue"}} if name == "tagged" else {}
        set_secret(plane, name, value, **extra)
    spec = {
        "vaultRef": {"name": "main"},
        "serviceAccountName": "app",
        "data": [{"secretKey": "password", "remoteRef": {"name": "db-password"}}],
        "target": {
            "template": {"data": {"dsn": "postgres://app:{{ .password }}@db/app"}},
        },
    }
    create(cluster, ns, "vaultsecrets", "VaultSecret", "dsn", spec)
    # template.mergePolicy Merge: the items' keys stay beside the template's (ESO's Merge).
    template = {"mergePolicy": "Merge", "data": {"dsn": "postgres://app:{{ .password }}@db/app"}}
    merged = {**spec, "target": {"template": template}}
    create(cluster, ns, "vaultsecrets", "VaultSecret", "merged", merged)
    spec = {
        "vaultRef": {"name": "main"},
        "serviceAccountName": "app",
        "dataFrom": [{"prefix": "app-"}, {"tag": {"name": "team", "value": "blue"}}],
    }
    create(cluster, ns, "vaultsecrets", "VaultSecret", "bulk", spec)
    spec = {**spec, "serviceAccountName": "nobody"}
    create(cluster, ns, "vaultsecrets", "VaultSecret", "denied", spec)
    wait_condition(cluster, ns, "vaultsecrets", "dsn", "True", "Synced")
    wait_condition(cluster, ns, "vaultsecrets", "bulk", "True", "Synced")
    wait_condition(cluster, ns, "vaultsecrets", "denied", "False", "Forbidden")
    assert secret_data(cluster, ns, "dsn") == {"dsn": f"postgres://app:{VALUE1}@db/app"}
    wait_condition(cluster, ns, "vaultsecrets", "merged", "True", "Synced")
    assert secret_data(cluster, ns, "merged") == {
        "password": VALUE1,
        "dsn": f"postgres://app:{VALUE1}@db/app",
    }
    assert secret_data(cluster, ns, "bulk") == {
        k: v for k, v in values.items() if k.startswith("app-") or k == "tagged"
    }
    # A rotation, so the refresh path is covered by the scan too.
    rotated = "r0t-" + uuid.uuid4().hex
    set_secret(plane, "app-token", rotated)
    wait_for(
        lambda: (secret_data(cluster, ns, "bulk") or {}).get("app-token") == rotated, 10, "rot"
    )

    secrets = [*values.values(), rotated]
    places: dict[str, str] = {"operator output": operator.text()}
    for plural in ("vaults", "vaultsecrets"):
        objs = custom(cluster).list_namespaced_custom_object("kvault.io", "v1alpha1", ns, plural)
        places[plural] = json.dumps(objs)
    places["events"] = json.dumps([e.to_dict() for e in events(cluster, ns)], default=str)
    for name in ("dsn", "bulk"):
        meta = cluster.core.read_namespaced_secret(name, ns).metadata
        places[f"secret {name} metadata"] = json.dumps(meta.to_dict(), default=str)
    import urllib.request

    with urllib.request.urlopen(operator.env["KVAULT_METRICS"], timeout=10) as resp:
        metrics = resp.read().decode()
    places["metrics"] = metrics
    assert "kvault_vaultsecret_syncs_total" in metrics
    # The data plane's requests, by route pattern (never by item name).
    assert 'kvault_http_requests_total{method="PUT",route="/secrets/{name}",status="200"}' in (
        metrics
    )
    for path in operator.data_dir.rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes().decode("latin-1")
    for where, text in places.items():
        for value in secrets:
            assert value not in text, f"a secret value appears in {where}"


def test_merge_orphan_and_purge_on_delete(
    kube_cluster: Cluster, namespace: str, operator: Release
) -> None:
    cluster, ns = kube_cluster, namespace
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "app"}})
    _vault(cluster, ns, "main", [sa_role("app", SU), sa_role("admin", ADMIN)])
    plane = data_plane(operator, admin_token(cluster, ns), "main", ns)
    set_secret(plane, "db-password", VALUE1)

    # Merge: only our key goes into someone else's Secret, and only our key leaves with us.
    _projection(cluster, ns, "merge-missing", "app", "db-password", creationPolicy="Merge")
    vs = wait_condition(cluster, ns, "vaultsecrets", "merge-missing", "False", "Error")
    assert "does not exist" in json.dumps(vs["status"])
    cluster.core.create_namespaced_secret(
        ns, {"metadata": {"name": "shared"}, "stringData": {"theirs": "keep-me"}}
    )
    _projection(cluster, ns, "merger", "app", "db-password", name="shared", creationPolicy="Merge")
    wait_condition(cluster, ns, "vaultsecrets", "merger", "True", "Synced")
    assert secret_data(cluster, ns, "shared") == {"theirs": "keep-me", "value": VALUE1}
    delete(cluster, ns, "vaultsecrets", "merger")
    wait_gone(cluster, ns, "vaultsecrets", "merger")
    assert secret_data(cluster, ns, "shared") == {"theirs": "keep-me"}

    # A Secret that is not ours is never taken over without Merge.
    _projection(cluster, ns, "taker", "app", "db-password", name="shared")
    vs = wait_condition(cluster, ns, "vaultsecrets", "taker", "False", "Error")
    assert "not managed by this VaultSecret" in json.dumps(vs["status"])

    # Orphan: no owner reference.
    _projection(cluster, ns, "orphan", "app", "db-password", creationPolicy="Orphan")
    wait_condition(cluster, ns, "vaultsecrets", "orphan", "True", "Synced")
    assert not cluster.core.read_namespaced_secret("orphan", ns).metadata.owner_references

    # allowPurgeOnDelete: the vault and its items are gone for good.
    create(
        cluster,
        ns,
        "vaults",
        "Vault",
        "temp",
        vault_spec([sa_role("admin", ADMIN)], allowPurgeOnDelete=True),
    )
    wait_condition(cluster, ns, "vaults", "temp", "True", "Provisioned")
    temp = data_plane(operator, admin_token(cluster, ns), "temp", ns)
    set_secret(temp, "x", VALUE2)
    delete(cluster, ns, "vaults", "temp")
    wait_gone(cluster, ns, "vaults", "temp")
    wait_for(
        lambda: any(
            e.reason == "Deleted" and "purged" in e.message for e in events(cluster, ns, "temp")
        ),
        10,
        "purged Event",
    )
    create(cluster, ns, "vaults", "Vault", "temp", vault_spec([sa_role("admin", ADMIN)]))
    wait_condition(cluster, ns, "vaults", "temp", "True", "Provisioned")
    with pytest.raises(CliError):
        temp.request("GET", "/secrets/x")


def test_key_public_part_reaches_pod_and_follows_rotation(
    kube_cluster: Cluster, namespace: str, operator: Release
) -> None:
    """A VaultSecret projects a key's public part (PEM) into a mounted Secret; rotating the
    key (a real rotation in the vault) replaces it with the new version's, and no private
    member ever reaches the Secret."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from kvault.crypto.keys import public_from_jwk, public_jwk

    cluster, ns = kube_cluster, namespace
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "signer"}})
    crypto_user = "Key Vault Crypto User"
    _vault(cluster, ns, "main", [sa_role("signer", crypto_user), sa_role("admin", ADMIN)])
    plane = data_plane(operator, admin_token(cluster, ns), "main", ns)
    first = plane.request("POST", "/keys/signing/create", {"kty": "EC", "crv": "P-256"})
    v1 = str(first["key"]["kid"]).rsplit("/", 1)[-1]
    create(
        cluster,
        ns,
        "vaultsecrets",
        "VaultSecret",
        "signing",
        {
            "vaultRef": {"name": "main"},
            "serviceAccountName": "signer",
            "data": [{"secretKey": "public.pem", "remoteRef": {"kind": "Key", "name": "signing"}}],
        },
    )
    vs = wait_condition(cluster, ns, "vaultsecrets", "signing", "True", "Synced")
    assert vs["status"]["syncedVersions"] == {"public.pem": v1}
    pem = secret_data(cluster, ns, "signing")["public.pem"]
    assert public_jwk(load_pem_public_key(pem.encode())) == public_jwk(  # type: ignore[arg-type]
        public_from_jwk(first["key"])
    )
    assert "PRIVATE" not in pem

    script = 'while true; do echo "key=$(sed -n 2p /etc/key/public.pem)"; sleep 1; done'
    pod = kube.busybox_pod(
        "verifier",
        script,
        volumes=[{"name": "key", "secret": {"secretName": "signing"}}],
        mounts=[{"name": "key", "mountPath": "/etc/key", "readOnly": True}],
    )
    cluster.core.create_namespaced_pod(ns, pod)
    kube.wait_pod_running(cluster.core, ns, "verifier")
    kube.wait_log_line(cluster.core, ns, "verifier", f"key={pem.splitlines()[1]}")

    rotated: dict[str, object] = {}

    def rotate() -> None:
        rotated.update(plane.request("POST", "/keys/signing/rotate", {}))

    new_pem = None

    def changed() -> bool:
        nonlocal new_pem
        new_pem = secret_data(cluster, ns, "signing").get("public.pem")
        return new_pem is not None and new_pem != pem

    rotate()
    wait_for(changed, timeout=30, what="the projected public key to follow the rotation")
    key = rotated["key"]
    assert isinstance(key, dict)
    v2 = str(key["kid"]).rsplit("/", 1)[-1]
    assert v2 != v1
    assert new_pem is not None
    assert public_jwk(load_pem_public_key(new_pem.encode())) == public_jwk(  # type: ignore[arg-type]
        public_from_jwk(key)
    )
    vs = wait_condition(cluster, ns, "vaultsecrets", "signing", "True", "Synced")
    assert vs["status"]["syncedVersions"] == {"public.pem": v2}
    kube.wait_log_line(cluster.core, ns, "verifier", f"key={new_pem.splitlines()[1]}", timeout=90)


def _certificate_policy(**x509: object) -> dict[str, object]:
    return {
        "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
        "secret_props": {"contentType": "application/x-pem-file"},
        "x509_props": {"subject": "CN=web.example", "validity_months": 12, **x509},
    }


def _private_pki(plane: DataPlane) -> tuple[bytes, dict[str, object]]:
    """A CA certificate ``root`` in the vault, its ``kvault-ca`` issuer ``team-ca``, and the
    leaf ``web`` it signs: (the CA's DER, the policy ``web`` is created with)."""
    import base64

    ca_policy = _certificate_policy(
        subject="CN=kvic root",
        basic_constraints={"ca": True},
        key_usage=["keyCertSign", "cRLSign", "digitalSignature"],
        validity_months=24,
    )
    plane.request("POST", "/certificates/root/create", {"policy": ca_policy})
    issuer = {"provider": "kvault-ca", "credentials": {"account_id": "root"}}
    plane.request("PUT", "/certificates/issuers/team-ca", issuer)
    web_policy = {
        **_certificate_policy(sans={"dns_names": ["web.example"]}),
        "issuer": {"name": "team-ca"},
    }
    plane.request("POST", "/certificates/web/create", {"policy": web_policy})
    root = plane.request("GET", "/certificates/root")
    return base64.b64decode(root["cer"]), web_policy


def _tls_handshake(crt: str, key: str, ca: str, host: str) -> str:
    """A TLS handshake in memory with the projected files: a server with ``crt``/``key``, a
    client that trusts only ``ca`` and checks ``host``; the protocol agreed."""
    import ssl
    import tempfile
    from pathlib import Path

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "tls.crt").write_text(crt)
        (Path(tmp) / "tls.key").write_text(key)
        server_ctx.load_cert_chain(Path(tmp) / "tls.crt", Path(tmp) / "tls.key")
    client_ctx = ssl.create_default_context(cadata=ca)
    pipes = [ssl.MemoryBIO() for _ in range(4)]
    server = server_ctx.wrap_bio(pipes[0], pipes[1], server_side=True)
    client_end = client_ctx.wrap_bio(pipes[2], pipes[3], server_hostname=host)
    done = {"server": False, "client": False}
    for _ in range(20):
        for name, end in (("client", client_end), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        pipes[0].write(pipes[3].read())
        pipes[2].write(pipes[1].read())
        if all(done.values()):
            return str(client_end.version())
    raise AssertionError("the TLS handshake did not finish")


def test_certificate_reaches_pod_as_tls_secret_and_follows_a_new_version(
    kube_cluster: Cluster, namespace: str, operator: Release
) -> None:
    """A VaultSecret projects a certificate signed by the vault's own CA into a
    ``kubernetes.io/tls`` Secret (``tls.crt`` leaf then chain, ``tls.key``, ``ca.crt``) mounted
    by a pod; a new version of the certificate replaces the mounted files.

    The new version is made through the data plane (``POST /certificates/web/create`` again,
    with the same policy); the renewal scheduler's own new versions, and pods serving and
    verifying HTTPS, are the next test's. The pair is also checked here by a TLS handshake in
    the test process (a server with ``tls.crt`` and ``tls.key``, a client trusting only
    ``ca.crt`` and checking the name)."""
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cluster, ns = kube_cluster, namespace
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "web"}})
    cert_user = "Key Vault Certificate User"
    _vault(cluster, ns, "main", [sa_role("web", cert_user), sa_role("admin", ADMIN)])
    plane = data_plane(operator, admin_token(cluster, ns), "main", ns)
    root_der, web_policy = _private_pki(plane)
    first = plane.request("GET", "/certificates/web")
    v1 = str(first["id"]).rsplit("/", 1)[-1]
    create(
        cluster,
        ns,
        "vaultsecrets",
        "VaultSecret",
        "web-tls",
        {
            "vaultRef": {"name": "main"},
            "serviceAccountName": "web",
            "data": [{"secretKey": "tls", "remoteRef": {"kind": "Certificate", "name": "web"}}],
            "target": {"type": "kubernetes.io/tls"},
        },
    )
    vs = wait_condition(cluster, ns, "vaultsecrets", "web-tls", "True", "Synced")
    assert vs["status"]["syncedVersions"] == {"tls": v1}
    (projected,) = vs["status"]["certificates"]
    assert (projected["secretKey"], projected["name"], projected["version"]) == ("tls", "web", v1)
    assert projected["serialNumber"] and projected["notAfter"] and projected["renewsAt"]
    assert cluster.core.read_namespaced_secret("web-tls", ns).type == "kubernetes.io/tls"
    data = secret_data(cluster, ns, "web-tls")
    assert data is not None and sorted(data) == ["ca.crt", "tls.crt", "tls.key"]
    chain = x509.load_pem_x509_certificates(data["tls.crt"].encode())
    assert [c.public_bytes(Encoding.DER) for c in chain] == [
        base64.b64decode(first["cer"]),
        root_der,
    ]
    (ca,) = x509.load_pem_x509_certificates(data["ca.crt"].encode())
    assert ca.public_bytes(Encoding.DER) == root_der
    assert data["tls.key"].startswith("-----BEGIN PRIVATE KEY-----\n")
    assert _tls_handshake(data["tls.crt"], data["tls.key"], data["ca.crt"], "web.example")

    script = 'while true; do echo "crt=$(sed -n 2p /etc/tls/tls.crt)"; sleep 1; done'
    pod = kube.busybox_pod(
        "server",
        script,
        volumes=[{"name": "tls", "secret": {"secretName": "web-tls"}}],
        mounts=[{"name": "tls", "mountPath": "/etc/tls", "readOnly": True}],
    )
    cluster.core.create_namespaced_pod(ns, pod)
    kube.wait_pod_running(cluster.core, ns, "server")
    kube.wait_log_line(cluster.core, ns, "server", f"crt={data['tls.crt'].splitlines()[1]}")

    plane.request("POST", "/certificates/web/create", {"policy": web_policy})
    second = plane.request("GET", "/certificates/web")
    v2 = str(second["id"]).rsplit("/", 1)[-1]
    assert v2 != v1
    new: dict[str, str] = {}

    def changed() -> bool:
        new.update(secret_data(cluster, ns, "web-tls") or {})
        return new.get("tls.crt") not in (None, data["tls.crt"])

    wait_for(changed, timeout=30, what="the projected certificate to follow the new version")
    leaf = x509.load_pem_x509_certificates(new["tls.crt"].encode())[0]
    assert leaf.public_bytes(Encoding.DER) == base64.b64decode(second["cer"])
    assert new["tls.key"] != data["tls.key"] and new["ca.crt"] == data["ca.crt"]
    assert _tls_handshake(new["tls.crt"], new["tls.key"], new["ca.crt"], "web.example")
    wait_for(
        lambda: (
            (get(cluster, ns, "vaultsecrets", "web-tls") or {})["status"]["syncedVersions"]
            == {"tls": v2}
        ),
        10,
        "status.syncedVersions to name the new version",
    )
    kube.wait_log_line(
        cluster.core, ns, "server", f"crt={new['tls.crt'].splitlines()[1]}", timeout=90
    )
    # The private key is in the Secret only: not in the status, the Events or the output.
    key_line = new["tls.key"].splitlines()[1]
    places = {
        "status": json.dumps(get(cluster, ns, "vaultsecrets", "web-tls")),
        "events": json.dumps([e.to_dict() for e in events(cluster, ns)], default=str),
        "operator output": operator.text(),
    }
    for where, text in places.items():
        assert key_line not in text, f"the private key appears in {where}"


#: Serves HTTPS with the projected pair, saying which certificate it loaded at start.
_HTTPS_SERVER = """
import http.server, ssl
from cryptography import x509
with open("/etc/tls/tls.crt", "rb") as f:
    print("serving serial=%d" % x509.load_pem_x509_certificate(f.read()).serial_number, flush=True)
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")
    def log_message(self, *args):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("/etc/tls/tls.crt", "/etc/tls/tls.key")
server = http.server.HTTPServer(("", 8443), Hello)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""

#: Connects every second, trusting only the mounted ca.crt and checking the host name.
_HTTPS_CLIENT = """
import socket, ssl, sys, time
host = sys.argv[1]
ctx = ssl.create_default_context(cafile="/etc/ca/ca.crt")
while True:
    try:
        with socket.create_connection((host, 443), timeout=3) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
                reply = tls.recv(4096)
                serial = int(tls.getpeercert()["serialNumber"], 16)
                print("ok serial=%d %s" % (serial, reply.split()[1].decode()), flush=True)
    except Exception as exc:
        print("fail", type(exc).__name__, exc, flush=True)
    time.sleep(1)
"""


def _python_pod(image: str, script: str, *args: str, volumes: list[dict[str, object]],
                mounts: list[dict[str, object]]) -> dict[str, object]:  # fmt: skip
    """A container of kvault's own image (Debian's python3 with ``cryptography``)."""
    return {
        "restartPolicy": "Always",
        "containers": [
            {
                "name": "main",
                "image": image,
                "command": ["/opt/kvault/bin/python", "-c", script, *args],
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }


def _serial(cer_b64: object) -> int:
    import base64

    from cryptography import x509

    return x509.load_der_x509_certificate(base64.b64decode(str(cer_b64))).serial_number


def test_certificate_auto_renews_on_schedule_and_the_serving_deployment_rolls_once(
    kube_cluster: Cluster, namespace: str, operator: Release
) -> None:
    """A Deployment serves HTTPS with a certificate the vault's CA issued, projected as a
    ``kubernetes.io/tls`` Secret; a client pod verifies it against the projected ``ca.crt``
    and the Service's DNS name. The certificate's ``AutoRenew`` (at 50 % of a 90-second
    validity: ``validity_seconds``, allowed by the session release's dev-only
    ``operator.dev.certificateValidityFloorSeconds``) is carried out by the operator's renewal
    scheduler on real time; the Secret follows, the Deployment rolls once, the new pod serves
    the new certificate and the client verifies it."""
    cluster, ns = kube_cluster, namespace
    apps = k8s.AppsV1Api(cluster.api)
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "web"}})
    cert_user = "Key Vault Certificate User"
    _vault(cluster, ns, "main", [sa_role("web", cert_user), sa_role("admin", ADMIN)])
    plane = data_plane(operator, admin_token(cluster, ns), "main", ns)
    host = f"web.{ns}.svc"
    _private_pki(plane)  # the CA "root" and its kvault-ca issuer "team-ca"
    policy = {
        **_certificate_policy(),
        "x509_props": {"subject": "CN=web", "sans": {"dns_names": [host]}, "validity_seconds": 90},
        "issuer": {"name": "team-ca"},
        "lifetime_actions": [
            {"trigger": {"lifetime_percentage": 50}, "action": {"action_type": "AutoRenew"}}
        ],
    }
    plane.request("POST", "/certificates/web-svc/create", {"policy": policy})
    first = plane.request("GET", "/certificates/web-svc")
    v1, serial1 = str(first["id"]).rsplit("/", 1)[-1], _serial(first["cer"])
    create(cluster, ns, "vaultsecrets", "VaultSecret", "web-tls", {
        "vaultRef": {"name": "main"},
        "serviceAccountName": "web",
        "data": [{"secretKey": "tls", "remoteRef": {"kind": "Certificate", "name": "web-svc"}}],
        "target": {"type": "kubernetes.io/tls"},
        "rolloutRestart": [{"kind": "Deployment", "name": "web"}],
    })  # fmt: skip
    vs = wait_condition(cluster, ns, "vaultsecrets", "web-tls", "True", "Synced")
    assert vs["status"]["syncedVersions"] == {"tls": v1}

    image = f"kvault.local/kvault:{operator.values['image']['tag']}"
    server = _python_pod(
        image,
        _HTTPS_SERVER,
        volumes=[{"name": "tls", "secret": {"secretName": "web-tls"}}],
        mounts=[{"name": "tls", "mountPath": "/etc/tls", "readOnly": True}],
    )
    apps.create_namespaced_deployment(ns, {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": server},
        },
    })  # fmt: skip
    cluster.core.create_namespaced_service(ns, {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 443, "targetPort": 8443}]},
    })  # fmt: skip
    ca_only = {"secretName": "web-tls", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    client_spec = _python_pod(
        image,
        _HTTPS_CLIENT,
        host,
        volumes=[{"name": "ca", "secret": ca_only}],
        mounts=[{"name": "ca", "mountPath": "/etc/ca", "readOnly": True}],
    )
    cluster.core.create_namespaced_pod(ns, {"metadata": {"name": "client"}, "spec": client_spec})
    kube.wait_pod_running(cluster.core, ns, "client")
    kube.wait_log_line(cluster.core, ns, "client", f"ok serial={serial1} 200", timeout=120)
    generation, _ = restart_hash(cluster, ns, "web", "web-tls")

    renewed: dict[str, object] = {}

    def new_version() -> bool:
        renewed.update(plane.request("GET", "/certificates/web-svc"))
        return str(renewed["id"]).rsplit("/", 1)[-1] != v1

    wait_for(new_version, timeout=150, what="the scheduler to renew the certificate")
    # One renewal is what this test watches: the next would be due 45 s later.
    plane.request("PATCH", "/certificates/web-svc/policy", {"lifetime_actions": []})
    v2, serial2 = str(renewed["id"]).rsplit("/", 1)[-1], _serial(renewed["cer"])
    assert serial2 != serial1

    def projected() -> bool:
        vs = get(cluster, ns, "vaultsecrets", "web-tls") or {}
        status = vs.get("status", {})
        return bool(
            status.get("syncedVersions") == {"tls": v2}
            and restart_hash(cluster, ns, "web", "web-tls")[1] == status.get("contentHash")
        )

    wait_for(projected, timeout=30, what="the Secret and the rollout restart for the new version")
    kube.wait_log_line(cluster.core, ns, "client", f"ok serial={serial2} 200", timeout=120)
    pods = cluster.core.list_namespaced_pod(ns, label_selector="app=web").items
    logs = [cluster.core.read_namespaced_pod_log(p.metadata.name, ns) for p in pods]
    assert any(f"serving serial={serial2}" in text for text in logs), logs
    assert restart_hash(cluster, ns, "web", "web-tls")[0] == generation + 1  # rolled once
    renewals = [e for e in events(cluster, ns, "main") if e.reason == "CertificateRenewed"]
    assert len(renewals) == 1 and "web-svc" in renewals[0].message, renewals
