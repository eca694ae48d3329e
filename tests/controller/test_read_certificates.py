"""Projecting a certificate with its private key (``remoteRef.kind: Certificate``) through the
sources, as the VaultSecret's ServiceAccount, against a real kvault (SQLite, software HSM):
PEM and PFX secrets both give ``tls.crt``/``tls.key``/``ca.crt`` whose key matches the
certificate (a TLS handshake verifies against ``ca.crt``), a renewal changes the projection,
a non-exportable certificate is refused, and denials come before any read."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kvault.app.backends import AUDIT_FILE, open_kvault
from kvault.controller.settings import Options
from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import plan_of
from kvault.controller.vaultsecret.projector import Projector
from kvault.controller.vaultsecret.read import project, read
from kvault.controller.vaultsecret.status import certificates_status
from kvault.crypto.x509build import same_key
from kvault.hsm.registry import load
from kvault.identity.model import RoleAssignment
from kvault.kube.client import KubeApiError, KubeClient
from kvault.kube.events import EventPoster
from kvault.vault.model import Certificate
from kvault.vault.service import Kvault

VAULT = "main.team-a"
CERT_USER = "Key Vault Certificate User"
PEM, PFX = "application/x-pem-file", "application/x-pkcs12"


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[Kvault]:
    kv = await open_kvault(
        tmp_path / "data", load("software", {"key_file": str(tmp_path / "root.key")})
    )
    roles = [
        RoleAssignment("team-a/app", CERT_USER, "/"),
        RoleAssignment("team-a/secrets", "Key Vault Secrets User", "/"),
        RoleAssignment("team-a/cert-only", CERT_USER, "/certificates/web"),
        RoleAssignment("team-a/scoped", CERT_USER, "/certificates/web"),
        RoleAssignment("team-a/scoped", CERT_USER, "/secrets/web"),
    ]
    await kv.vaults.create(VAULT, retention_days=7, role_assignments=roles)
    yield kv
    await kv.close()


def _plan(sa: str, *refs: dict[str, Any], target_type: str = "kubernetes.io/tls") -> Any:
    data = []
    for r in refs:
        key = r.pop("secretKey")
        data.append({"secretKey": key, "remoteRef": {"kind": r.pop("kind", "Certificate"), **r}})
    body = {
        "metadata": {"namespace": "team-a", "name": "vs", "uid": "u"},
        "spec": {
            "vaultRef": {"name": "main"},
            "serviceAccountName": sa,
            "data": data,
            "target": {"type": target_type},
        },
    }
    return plan_of(body, 0)


def _policy(
    content_type: str = PEM,
    *,
    kty: str = "EC",
    issuer: str = "Self",
    exportable: bool = True,
    subject: str = "CN=web.example",
    ca: bool = False,
) -> dict[str, Any]:
    key: dict[str, Any] = {"kty": kty, "exportable": exportable}
    key.update({"crv": "P-256"} if kty == "EC" else {"key_size": 2048})
    x509_props: dict[str, Any] = {"subject": subject, "sans": {"dns_names": ["web.example"]}}
    if ca:
        x509_props = {
            "subject": subject,
            "basic_constraints": {"ca": True},
            "key_usage": ["keyCertSign", "cRLSign", "digitalSignature"],
            "validity_months": 60,
        }
    return {
        "key_props": key,
        "secret_props": {"contentType": content_type},
        "x509_props": x509_props,
        "issuer": {"name": issuer},
    }


async def _create(kv: Kvault, name: str, policy: dict[str, Any]) -> Certificate:
    await kv.certificates.create(VAULT, name, policy)
    return await kv.certificates.get(VAULT, name)


def _certs(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _matches(crt: str, key: str, cert: Certificate) -> bool:
    """``crt`` is the certificate (leaf first) and ``key`` its PKCS#8 private key."""
    leaf = _certs(crt)[0]
    private = serialization.load_pem_private_key(key.encode(), password=None)
    return (
        _der(leaf) == cert.cer
        and key.startswith("-----BEGIN PRIVATE KEY-----\n")
        and same_key(private.public_key(), leaf.public_key())  # type: ignore[arg-type]
    )


def _handshake(tmp_path: Path, crt: str, key: str, ca: str, host: str) -> str:
    """A TLS handshake in memory: a server with ``crt``/``key``, a client that trusts only
    ``ca`` and checks ``host``. Returns the protocol version agreed."""
    (tmp_path / "tls.crt").write_text(crt)
    (tmp_path / "tls.key").write_text(key)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    client_ctx = ssl.create_default_context(cadata=ca)
    pipes = [ssl.MemoryBIO() for _ in range(4)]
    server = server_ctx.wrap_bio(pipes[0], pipes[1], server_side=True)
    client = client_ctx.wrap_bio(pipes[2], pipes[3], server_hostname=host)
    done = {"server": False, "client": False}
    for _ in range(20):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        pipes[0].write(pipes[3].read())  # client -> server
        pipes[2].write(pipes[1].read())  # server -> client
        if all(done.values()):
            return str(client.version())
    raise AssertionError("the TLS handshake did not finish")


async def test_pem_and_pfx_certificates_project_as_a_matching_tls_pair(kv: Kvault) -> None:
    pem_cert = await _create(kv, "web", _policy(PEM))
    pfx_cert = await _create(kv, "legacy", _policy(PFX, kty="RSA"))
    assert not (await kv.secrets.get(VAULT, "legacy")).value.startswith("-----")  # base64 PFX
    plan = _plan(
        "app",
        {"secretKey": "tls", "name": "web"},
        {"secretKey": "legacy", "name": "legacy"},
        target_type="Opaque",
    )
    values, versions = await read(kv, plan)
    assert sorted(values) == [
        "ca.crt",
        "legacy.ca.crt",
        "legacy.crt",
        "legacy.key",
        "tls.crt",
        "tls.key",
    ]
    assert versions == {
        "tls": pem_cert.properties.version,
        "legacy": pfx_cert.properties.version,
    }
    assert _matches(values["tls.crt"], values["tls.key"], pem_cert)
    assert _matches(values["legacy.crt"], values["legacy.key"], pfx_cert)
    rsa_key = serialization.load_pem_private_key(values["legacy.key"].encode(), password=None)
    assert rsa_key.key_size == 2048  # type: ignore[union-attr]
    # Self-signed: one certificate, which is its own CA.
    assert [_der(c) for c in _certs(values["tls.crt"])] == [pem_cert.cer]
    assert values["ca.crt"] == values["tls.crt"]


async def test_a_kvault_ca_leaf_brings_its_chain_and_ca_and_a_client_verifies_it(
    kv: Kvault, tmp_path: Path
) -> None:
    root = await _create(kv, "root", _policy(subject="CN=team-a root", ca=True))
    await kv.certificates.set_issuer(
        VAULT, "team-ca", {"provider": "kvault-ca", "credentials": {"account_id": "root"}}
    )
    leaf = await _create(kv, "web", _policy(issuer="team-ca"))
    found = await project(kv, _plan("app", {"secretKey": "tls", "name": "web"}))
    values = found.values
    assert sorted(values) == ["ca.crt", "tls.crt", "tls.key"]
    chain = _certs(values["tls.crt"])
    assert [_der(c) for c in chain] == [leaf.cer, root.cer]  # leaf, then its chain
    (ca,) = _certs(values["ca.crt"])
    assert _der(ca) == root.cer
    chain[0].verify_directly_issued_by(ca)
    assert _matches(values["tls.crt"], values["tls.key"], leaf)
    version = _handshake(
        tmp_path, values["tls.crt"], values["tls.key"], values["ca.crt"], "web.example"
    )
    assert version.startswith("TLSv1.")
    with pytest.raises(ssl.SSLCertVerificationError):  # the name is checked too
        _handshake(
            tmp_path, values["tls.crt"], values["tls.key"], values["ca.crt"], "other.example"
        )

    (facts,) = found.certificates
    nbf, exp = leaf.properties.not_before, leaf.properties.expires
    assert nbf is not None and exp is not None
    assert facts == {
        "secretKey": "tls",
        "name": "web",
        "version": leaf.properties.version,
        "serialNumber": format(chain[0].serial_number, "X"),
        "notAfter": chain[0].not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        # Azure's default: AutoRenew at 80 % of the lifetime.
        "renewsAt": _iso(nbf + (exp - nbf) * 80 // 100),
    }
    assert "PRIVATE" not in json.dumps(found.certificates)


async def test_a_renewal_changes_the_projection_and_a_pinned_version_stays(kv: Kvault) -> None:
    first = await _create(kv, "web", _policy())
    plan = _plan("app", {"secretKey": "tls", "name": "web"})
    before = await project(kv, plan)
    assert before.versions == {"tls": first.properties.version}

    renewed = await kv.certificates.renew(VAULT, "web")
    after = await project(kv, plan)
    assert after.versions == {"tls": renewed.properties.version} != before.versions
    for key in ("tls.crt", "tls.key", "ca.crt"):
        assert after.values[key] != before.values[key]
    assert _matches(after.values["tls.crt"], after.values["tls.key"], renewed)
    assert after.certificates[0]["serialNumber"] != before.certificates[0]["serialNumber"]

    pinned = _plan("app", {"secretKey": "tls", "name": "web", "version": first.properties.version})
    old = await project(kv, pinned)  # a fixed version stays where it is, and never renews
    assert old.values == before.values
    assert "renewsAt" not in old.certificates[0]


async def test_a_non_exportable_certificate_is_refused_with_the_reason(kv: Kvault) -> None:
    await _create(kv, "locked", _policy(exportable=False))
    assert "PRIVATE" not in (await kv.secrets.get(VAULT, "locked")).value
    with pytest.raises(Refused) as refused:
        await read(kv, _plan("app", {"secretKey": "tls", "name": "locked"}))
    assert refused.value.reason == "Error" and not refused.value.drop
    assert "'locked'" in refused.value.message
    assert "no exportable private key" in refused.value.message
    assert "key_props.exportable false" in refused.value.message


async def test_missing_disabled_and_clashing_entries_keep_the_secret(kv: Kvault) -> None:
    await _create(kv, "web", _policy())
    await _create(kv, "off", _policy())
    await kv.certificates.update(VAULT, "off", enabled=False)
    await kv.secrets.set(VAULT, "other", "x")
    cases = (
        (_plan("app", {"secretKey": "tls", "name": "gone"}), "certificate 'gone' was not found"),
        (_plan("app", {"secretKey": "tls", "name": "off"}), "certificate 'off' of vault main"),
        (
            _plan(
                "app",
                {"secretKey": "tls", "name": "web"},
                {"secretKey": "tls.key", "name": "other", "kind": "Secret"},
            ),
            "writes Secret key 'tls.key', which another data entry writes too",
        ),
    )
    for plan, words in cases:
        with pytest.raises(Refused) as refused:
            await read(kv, plan)
        assert not refused.value.drop and words in refused.value.message


async def test_reading_the_key_needs_the_secret_and_denials_come_before_any_read(
    kv: Kvault, tmp_path: Path
) -> None:
    await _create(kv, "web", _policy())
    lines_before = len((tmp_path / "data" / AUDIT_FILE).read_text().splitlines())
    for sa, words in (
        ("secrets", ("may not read certificate 'web'", "certificates/read")),
        (  # the certificate is granted, but not the secret holding its key
            "cert-only",
            ("may not read secret 'web'", "private key is read from its secret", "/secrets/web"),
        ),
    ):
        with pytest.raises(Refused) as refused:
            await read(kv, _plan(sa, {"secretKey": "tls", "name": "web"}))
        assert refused.value.reason == "Forbidden" and refused.value.drop
        for word in words:
            assert word in refused.value.message
    lines = [
        json.loads(line)
        for line in (tmp_path / "data" / AUDIT_FILE).read_text().splitlines()[lines_before:]
    ]
    assert [(ln["operation"], ln["item"], ln["outcome"]) for ln in lines] == [
        ("CertificateGet", "web", "ForbiddenByRbac"),  # nothing read after either denial
        ("SecretGet", "web", "ForbiddenByRbac"),
    ]
    # Both item scopes: allowed, and read as the ServiceAccount.
    values, _ = await read(kv, _plan("scoped", {"secretKey": "tls", "name": "web"}))
    assert sorted(values) == ["ca.crt", "tls.crt", "tls.key"]
    reads = [
        json.loads(line) for line in (tmp_path / "data" / AUDIT_FILE).read_text().splitlines()[-2:]
    ]
    assert [(ln["operation"], ln["principal"]) for ln in reads] == [
        ("CertificateGet", "system:serviceaccount:team-a:scoped"),
        ("SecretGet", "system:serviceaccount:team-a:scoped"),
    ]


def test_status_lists_certificates_and_clears_them_once() -> None:
    facts = [{"secretKey": "tls", "name": "web", "version": "v"}]
    assert certificates_status({}, facts) == {"certificates": facts}
    assert certificates_status({"certificates": facts}, []) == {"certificates": None}
    assert certificates_status({}, []) == {}  # nothing to say: the status stays as it is


def _iso(t: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class FakeKube:
    """The API calls one VaultSecret sync makes: its ServiceAccount, the Secret (absent, then
    applied), Events."""

    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []

    async def get(self, path: str, params: Any = None) -> dict[str, Any]:
        if path.endswith("/serviceaccounts/app"):
            return {"metadata": {"name": "app", "namespace": "team-a"}}
        raise KubeApiError(404, "Not Found", "not found")

    async def apply(self, path: str, body: Any, *, field_manager: str) -> dict[str, Any]:
        self.applied.append(dict(body))
        return dict(body)

    async def post(self, path: str, body: Any) -> dict[str, Any]:
        return dict(body)


async def test_a_sync_writes_a_tls_secret_and_reports_the_certificate_in_status(
    kv: Kvault,
) -> None:
    cert = await _create(kv, "web", _policy())
    kube = cast(KubeClient, FakeKube())
    events = EventPoster(kube, manager="kvault", api_version="kvault.io/v1alpha1")
    projector = Projector(kv, kube, events, Options())
    plan = _plan("app", {"secretKey": "tls", "name": "web"})
    body: dict[str, Any] = {"metadata": {"namespace": "team-a", "name": "vs"}}
    result = await projector.sync(body, plan)
    await events.drain()
    assert result.reason == "Synced" and result.wrote
    (secret,) = cast(FakeKube, kube).applied
    assert secret["type"] == "kubernetes.io/tls"
    assert sorted(secret["data"]) == ["ca.crt", "tls.crt", "tls.key"]
    status = result.status
    assert status["syncedVersions"] == {"tls": cert.properties.version}
    (facts,) = status["certificates"]
    assert (facts["name"], facts["version"]) == ("web", cert.properties.version)
    assert "PRIVATE" not in json.dumps(status)
