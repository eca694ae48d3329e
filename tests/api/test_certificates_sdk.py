"""The official azure-keyvault-certificates CertificateClient (sync) against ``kvault server
--dev`` on both HSM plugins (software, pkcs11 on SoftHSM2): create with policies (Self,
Unknown + merge of a CSR signed by a test CA, a ``kvault-ca`` issuer), the pending operation,
versions, listings, properties, policy, import (PFX with and without password, PEM), the
lifecycle (delete, recover, purge, backup, restore), contacts and issuers; and the managed key
and secret of every certificate, read and used through SecretClient, KeyClient and
CryptographyClient, every issued certificate checked with ``cryptography`` and ``openssl``.

Contract: ``/work/shared/notes/azure-keys-certs.md`` section 2."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.keyvault.certificates import (
    AdministratorContact,
    CertificateClient,
    CertificateContact,
    CertificateContentType,
    CertificateIssuer,
    CertificateOperation,
    CertificatePolicy,
    CertificateProperties,
    KeyCurveName,
    KeyType,
    KeyUsageType,
    KeyVaultCertificate,
)
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.api.certs_support import (
    CLIENT_AUTH,
    CODE_SIGNING,
    PEM,
    PKCS12,
    SERVER_AUTH,
    USAGE_OPS,
    TestCA,
    ca_policy,
    cert_client,
    check_issued,
    create_raw,
    csr_of,
    der_pem,
    ekus,
    load_cer,
    open_secret,
    openssl_pkcs12_nodes,
    openssl_verify,
    same_public,
    sans,
    secret_client,
    sign_alg,
    usages,
    verify_with_cert,
)
from tests.api.conftest import StaticCredential, unique
from tests.api.keys_support import KeyServer, client_kwargs, digest, key_client, key_server

__all__ = ["key_server"]  # the module-scoped fixture: one dev server per plugin


@pytest.fixture(scope="module")
def certs(key_server: KeyServer) -> Iterator[CertificateClient]:
    with cert_client(key_server) as c:
        yield c


@pytest.fixture(scope="module")
def secrets(key_server: KeyServer) -> Iterator[SecretClient]:
    with secret_client(key_server) as c:
        yield c


@pytest.fixture(scope="module")
def keys(key_server: KeyServer) -> Iterator[KeyClient]:
    with key_client(key_server) as c:
        yield c


@pytest.fixture(scope="module")
def test_ca() -> TestCA:
    return TestCA.make("kvault external test CA", ec_key=False)


def inner(err: pytest.ExceptionInfo[HttpResponseError]) -> tuple[int | None, str | None, Any]:
    """(status, error code, innererror code) of an SDK error."""
    e = err.value
    code = e.error.code if e.error is not None else None
    innererror = e.error.innererror if e.error is not None else {}
    return e.status_code, code, (innererror or {}).get("code")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# -- the checks every issued version gets ------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A Self-issued policy and what the certificate must then say."""

    id: str
    kty: str = "RSA"
    size: int | None = None
    crv: str | None = None
    content_type: str = PKCS12
    exportable: bool = True
    subject: str = "CN=kvault.example"
    dns: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    upns: tuple[str, ...] = ()
    eku: tuple[str, ...] | None = None  # None: the server's default
    key_usage: tuple[str, ...] | None = None
    months: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def policy(self, issuer: str = "Self") -> CertificatePolicy:
        kwargs: dict[str, Any] = {
            "subject": self.subject,
            "key_type": KeyType(self.kty),
            "exportable": self.exportable,
            "content_type": CertificateContentType(self.content_type),
        }
        if self.size:
            kwargs["key_size"] = self.size
        if self.crv:
            kwargs["key_curve_name"] = KeyCurveName(self.crv)
        if self.dns:
            kwargs["san_dns_names"] = list(self.dns)
        if self.emails:
            kwargs["san_emails"] = list(self.emails)
        if self.upns:
            kwargs["san_user_principal_names"] = list(self.upns)
        if self.eku is not None:
            kwargs["enhanced_key_usage"] = list(self.eku)
        if self.key_usage is not None:
            kwargs["key_usage"] = [KeyUsageType(u) for u in self.key_usage]
        if self.months is not None:
            kwargs["validity_in_months"] = self.months
        return CertificatePolicy(issuer, **kwargs)

    @property
    def expected_eku(self) -> tuple[str, ...]:
        return (SERVER_AUTH, CLIENT_AUTH) if self.eku is None else self.eku

    @property
    def expected_usage(self) -> tuple[str, ...]:
        return ("digitalSignature", "keyEncipherment") if self.key_usage is None else self.key_usage

    @property
    def hsm(self) -> bool:
        return self.kty.endswith("-HSM")


SELF_CASES = (
    Case(
        "rsa2048-pkcs12-sans-ekus",
        size=2048,
        subject="CN=web.example,O=kvault tests,C=DE",
        dns=("web.example", "*.web.example"),
        emails=("ops@example.com",),
        upns=("svc@corp.example",),
        eku=(SERVER_AUTH, CLIENT_AUTH, CODE_SIGNING),
        key_usage=("digitalSignature", "keyEncipherment", "dataEncipherment"),
        months=6,
        tags={"case": "rsa"},
    ),
    Case(
        "ec-p256-pem",
        kty="EC",
        crv="P-256",
        content_type=PEM,
        subject="CN=ec256.example",
        dns=("ec256.example",),
        eku=(SERVER_AUTH,),
        key_usage=("digitalSignature",),
        months=12,
    ),
    Case(
        "ec-p384-pkcs12",
        kty="EC",
        crv="P-384",
        subject="CN=ec384",
        emails=("pki@example.org",),
        key_usage=("digitalSignature", "nonRepudiation"),
        months=3,
    ),
    Case("rsa-not-exportable-pem", exportable=False, content_type=PEM, months=1),
    Case("rsa-not-exportable-pkcs12", exportable=False, eku=()),
    Case(
        "rsa-hsm-pkcs12",
        kty="RSA-HSM",
        size=2048,
        exportable=False,
        subject="CN=hsm-rsa.example",
        dns=("hsm-rsa.example",),
    ),
    Case(
        "ec-hsm-p256-pem",
        kty="EC-HSM",
        crv="P-256",
        exportable=False,
        content_type=PEM,
        subject="CN=hsm-ec.example",
        key_usage=("digitalSignature",),
        months=2,
    ),
)


def check_version(
    cert: KeyVaultCertificate,
    *,
    name: str,
    with_policy: bool,
) -> str:
    """Ids, thumbprint and attributes of a certificate version; its version."""
    p = cert.properties
    assert cert.name == name and p.version and len(p.version) == 32
    assert cert.id == f"{p.vault_url}/certificates/{name}/{p.version}"
    assert cert.key_id == f"{p.vault_url}/keys/{name}/{p.version}"
    assert cert.secret_id == f"{p.vault_url}/secrets/{name}/{p.version}"
    leaf = load_cer(cert.cer)
    der = leaf.public_bytes(serialization.Encoding.DER)
    assert p.x509_thumbprint == hashlib.sha1(der).digest()
    assert p.not_before == leaf.not_valid_before_utc
    assert p.expires_on == leaf.not_valid_after_utc
    assert p.created_on is not None and p.updated_on is not None
    assert p.recovery_level and p.recoverable_days
    assert (cert.policy is not None) is with_policy
    return p.version


def check_linked(
    server: KeyServer,
    secrets: SecretClient,
    keys: KeyClient,
    cert: KeyVaultCertificate,
    *,
    content_type: str,
    exportable: bool,
    kty: str,
    key_usage: tuple[str, ...],
    chain: tuple[x509.Certificate, ...] = (),
) -> None:
    """The certificate's secret (``sid``) and key (``kid``): same version, managed, the bundle
    (key first in PEM; PFX readable by ``cryptography`` with password None and by ``openssl
    pkcs12 -nodes -passin pass:``), and the key signs what the certificate's public key
    verifies."""
    leaf = load_cer(cert.cer)
    version = cert.properties.version
    assert version is not None
    secret = secrets.get_secret(cert.name, version)
    assert secret.id == cert.secret_id
    assert secret.properties.content_type == content_type
    assert secret.properties.managed is True
    assert secret.properties.key_id == cert.key_id
    assert secret.value is not None
    bundle = open_secret(secret.value, content_type)
    assert bundle.certs[0] == leaf
    assert bundle.certs[1:] == list(chain)
    if exportable:
        assert bundle.key is not None and same_public(bundle.key, leaf.public_key())
    else:
        assert bundle.key is None, "a non-exportable key left in the secret"
        assert b"PRIVATE KEY" not in bundle.raw
    if content_type == PEM:
        if exportable:
            assert bundle.raw.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    else:
        out = openssl_pkcs12_nodes(bundle.raw)
        assert out.count("-----BEGIN CERTIFICATE-----") == 1 + len(chain)
        assert ("-----BEGIN PRIVATE KEY-----" in out) is exportable

    key = keys.get_key(cert.name, version)
    assert key.id == cert.key_id
    assert key.properties.managed is True
    assert key.key_type == kty
    public = leaf.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        assert int.from_bytes(key.key.n, "big") == public.public_numbers().n
        possible = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert int.from_bytes(key.key.x, "big") == public.public_numbers().x
        possible = ["sign", "verify"]
    wanted = set().union(*(USAGE_OPS.get(u, set()) for u in key_usage)) if key_usage else set()
    expected_ops = [op for op in possible if op in wanted] if key_usage else possible
    assert sorted(key.key_operations or []) == sorted(expected_ops)

    if "sign" in expected_ops:
        alg = sign_alg(leaf)
        cred = StaticCredential(server.env["KVAULT_TOKEN"])
        with CryptographyClient(cert.key_id, cred, **client_kwargs(server)) as crypto:
            d = digest(alg)
            signed = crypto.sign(SignatureAlgorithm(alg), d)
            verify_with_cert(leaf, alg, d, signed.signature)
            assert crypto.verify(SignatureAlgorithm(alg), d, signed.signature).is_valid


# -- Self --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", SELF_CASES, ids=lambda c: c.id)
def test_create_self_signed(
    key_server: KeyServer,
    certs: CertificateClient,
    secrets: SecretClient,
    keys: KeyClient,
    case: Case,
) -> None:
    name = unique("self")
    poller = certs.begin_create_certificate(name, case.policy(), tags=case.tags or None)
    cert = poller.result()
    assert isinstance(cert, KeyVaultCertificate), cert
    check_version(cert, name=name, with_policy=True)
    assert cert.properties.enabled is True
    assert (cert.properties.tags or {}) == case.tags

    policy = cert.policy
    assert policy is not None
    assert policy.issuer_name == "Self"
    assert policy.subject == case.subject
    assert policy.key_type == case.kty
    assert policy.exportable is case.exportable
    assert policy.content_type == case.content_type
    if case.kty.startswith("RSA"):
        assert policy.key_size == (case.size or 2048)
    else:
        assert policy.key_curve_name == case.crv
    assert list(policy.san_dns_names or []) == list(case.dns)
    assert list(policy.san_emails or []) == list(case.emails)
    assert list(policy.san_user_principal_names or []) == list(case.upns)
    assert list(policy.enhanced_key_usage or []) == list(case.expected_eku)
    assert [u.value for u in policy.key_usage or []] == list(case.expected_usage)
    assert policy.validity_in_months == (case.months or 12)
    assert [(a.action, a.lifetime_percentage) for a in policy.lifetime_actions or []] == [
        ("AutoRenew", 80)
    ]

    leaf = load_cer(cert.cer)
    check_issued(
        leaf,
        subject=case.subject,
        created=cert.properties.created_on,
        months=case.months or 12,
        dns=case.dns,
        emails=case.emails,
        upns=case.upns,
        eku=case.expected_eku,
        key_usage=case.expected_usage,
    )
    assert leaf.issuer == leaf.subject
    openssl_verify([leaf], leaf)  # self-signed: its own anchor
    check_linked(
        key_server,
        secrets,
        keys,
        cert,
        content_type=case.content_type,
        exportable=case.exportable,
        kty=case.kty,
        key_usage=case.expected_usage,
    )

    # The operation that made it reads as completed, pointing at the certificate.
    op = certs.get_certificate_operation(name)
    assert op.status == "completed" and op.issuer_name == "Self"
    assert op.target == f"{cert.properties.vault_url}/certificates/{name}"


def test_subject_kept_as_sent_and_san_only_certificate(
    key_server: KeyServer, certs: CertificateClient, secrets: SecretClient, keys: KeyClient
) -> None:
    """``cn=...`` stays lower-case in the policy; a certificate with SANs and no subject."""
    name = unique("lower")
    cert = certs.begin_create_certificate(
        name, CertificatePolicy("Self", subject="cn=Lower Case", key_type=KeyType.ec)
    ).result()
    assert isinstance(cert, KeyVaultCertificate) and cert.policy is not None
    assert cert.policy.subject == "cn=Lower Case"
    assert load_cer(cert.cer).subject.rfc4514_string() == "CN=Lower Case"
    assert cert.policy.key_curve_name == "P-256"  # EC without a curve

    name = unique("sanonly")
    cert = certs.begin_create_certificate(
        name, CertificatePolicy("Self", san_dns_names=["only.example"], key_type=KeyType.ec)
    ).result()
    assert isinstance(cert, KeyVaultCertificate)
    leaf = load_cer(cert.cer)
    assert len(leaf.subject) == 0
    assert sans(leaf)["dns"] == ["only.example"]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical  # RFC 5280: critical when the subject is empty


def test_default_policy(certs: CertificateClient) -> None:
    """``CertificatePolicy.get_default()``: Azure's server-filled defaults (section 2.3)."""
    name = unique("default")
    cert = certs.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    assert isinstance(cert, KeyVaultCertificate)
    p = cert.policy
    assert p is not None
    assert (p.key_type, p.key_size, p.exportable, p.reuse_key) == ("RSA", 2048, True, False)
    assert p.content_type == PKCS12
    assert p.enhanced_key_usage == [SERVER_AUTH, CLIENT_AUTH]
    assert [u.value for u in p.key_usage or []] == ["digitalSignature", "keyEncipherment"]
    assert p.validity_in_months == 12
    assert p.subject == "CN=DefaultPolicy"
    leaf = load_cer(cert.cer)
    check_issued(leaf, subject="CN=DefaultPolicy", created=cert.properties.created_on, months=12)
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey)
    assert leaf.public_key().key_size == 2048  # type: ignore[union-attr]


# -- Unknown issuer: the CSR, merge, cancel, delete --------------------------------------------


@pytest.mark.parametrize(
    "kty, content_type",
    [("RSA", PEM), ("EC", PKCS12), ("EC-HSM", PEM)],
    ids=["rsa-pem", "ec-pkcs12", "ec-hsm-pem"],
)
def test_unknown_issuer_csr_signed_by_an_external_ca_and_merged(
    key_server: KeyServer,
    certs: CertificateClient,
    secrets: SecretClient,
    keys: KeyClient,
    test_ca: TestCA,
    kty: str,
    content_type: str,
) -> None:
    name = unique("merge")
    exportable = not kty.endswith("-HSM")
    policy = CertificatePolicy(
        "Unknown",
        subject="CN=merge.example,O=kvault",
        san_dns_names=["merge.example"],
        san_emails=["merge@example.com"],
        enhanced_key_usage=[SERVER_AUTH],
        key_usage=[KeyUsageType.digital_signature, KeyUsageType.key_encipherment]
        if kty.startswith("RSA")
        else [KeyUsageType.digital_signature],
        key_type=KeyType(kty),
        exportable=exportable,
        content_type=CertificateContentType(content_type),
        validity_in_months=6,
    )
    poller = certs.begin_create_certificate(name, policy)
    op = poller.result()  # Unknown: the poller stops at once with the operation
    assert isinstance(op, CertificateOperation)
    assert op.status == "inProgress" and op.issuer_name == "Unknown"
    assert op.cancellation_requested is False
    assert op.status_details and "merge" in op.status_details.lower()

    again = certs.get_certificate_operation(name)
    assert again.csr == op.csr and again.status == "inProgress"
    assert again.request_id == op.request_id
    csr = csr_of(again)
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=merge.example,O=kvault"
    assert sans(csr) == {"dns": ["merge.example"], "emails": ["merge@example.com"], "upns": []}
    assert ekus(csr) == [SERVER_AUTH]
    assert "digitalSignature" in usages(csr)
    expected_key = isinstance(csr.public_key(), rsa.RSAPublicKey) == kty.startswith("RSA")
    assert expected_key

    # The pending version's key and secret do not exist yet.
    with pytest.raises(ResourceNotFoundError):
        keys.get_key(name)
    with pytest.raises(ResourceNotFoundError):
        secrets.get_secret(name)

    leaf = test_ca.sign_csr(csr, days=180)
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    # Lenient x5c as real Key Vault takes it: base64 text of the DER (what the Python SDK's own
    # merge test sends) and a PEM for the CA.
    merged = certs.merge_certificate(name, [base64.b64encode(leaf_der), der_pem(test_ca.cert)])
    assert isinstance(merged, KeyVaultCertificate)
    check_version(merged, name=name, with_policy=True)
    assert bytes(merged.cer or b"") == leaf_der
    assert merged.policy is not None and merged.policy.issuer_name == "Unknown"
    openssl_verify([test_ca.cert], load_cer(merged.cer), purpose="sslserver")
    check_linked(
        key_server,
        secrets,
        keys,
        merged,
        content_type=content_type,
        exportable=exportable,
        kty=kty,
        key_usage=tuple(u.value for u in policy.key_usage or []),
        chain=(test_ca.cert,),
    )
    assert same_public(load_cer(merged.cer).public_key(), csr.public_key())

    done = certs.get_certificate_operation(name)
    assert done.status == "completed"
    assert done.target == f"{merged.properties.vault_url}/certificates/{name}"
    # A second merge has no pending operation left.
    with pytest.raises(ResourceNotFoundError):
        certs.merge_certificate(name, [leaf_der])


def test_pending_certificate_reads_as_disabled_without_cer(certs: CertificateClient) -> None:
    """Section 2.4 [rec]: while an Unknown-issuer version waits for merge, ``GET
    /certificates/{n}/`` answers 200 with ``enabled: false``, the policy and no ``cer``."""
    name = unique("pending")
    certs.begin_create_certificate(
        name, CertificatePolicy("Unknown", subject="CN=pending", key_type=KeyType.ec)
    ).result()
    got = certs.get_certificate(name)
    assert got.cer is None
    assert got.properties.enabled is False
    assert got.policy is not None and got.policy.issuer_name == "Unknown"


def test_list_includes_pending_certificates_only_when_asked(
    certs: CertificateClient, test_ca: TestCA
) -> None:
    """``includePending`` (``list_properties_of_certificates(include_pending=)``, ``az keyvault
    certificate list --include-pending``): a certificate whose only version waits for its
    merge is listed only when asked for, as GET shows it (disabled, no thumbprint); one with
    versions is listed either way, by its current version, also while a new one is pending.
    The flag rides along in ``nextLink``, so every page honours it."""
    pending, done, cancelled = unique("incpend"), unique("incdone"), unique("inccancel")
    unknown = CertificatePolicy("Unknown", subject="CN=pending", key_type=KeyType.ec)
    for name in (pending, cancelled):
        certs.begin_create_certificate(name, unknown).result()
    certs.cancel_certificate_operation(cancelled)  # no longer provisioning: never listed
    made = certs.begin_create_certificate(
        done, CertificatePolicy("Self", subject="CN=done", key_type=KeyType.ec)
    ).result()
    assert isinstance(made, KeyVaultCertificate)
    certs.begin_create_certificate(done, unknown).result()  # a new version waits too
    mine = (pending, done, cancelled)

    def listed(**kwargs: Any) -> dict[str, CertificateProperties]:
        found = certs.list_properties_of_certificates(**kwargs)
        return {p.name: p for p in found if p.name in mine}  # type: ignore[misc]

    assert set(listed()) == set(listed(include_pending=False)) == {done}
    both = listed(include_pending=True)
    assert set(both) == {pending, done}
    waiting = both[pending]
    assert waiting.id == f"{waiting.vault_url}/certificates/{pending}"  # versionless
    assert waiting.enabled is False and waiting.x509_thumbprint is None
    assert both[done].x509_thumbprint == made.properties.x509_thumbprint
    assert both[done].enabled is True

    first = certs.send_request(HttpRequest("GET", "/certificates?maxresults=1&includePending=true"))
    assert "includePending=true" in first.json()["nextLink"]
    paged_items = certs.list_properties_of_certificates(include_pending=True, max_page_size=2)
    everything = [p.name for p in paged_items]
    assert len(everything) == len(set(everything))  # no name twice across pages
    assert pending in everything and done in everything and cancelled not in everything
    pager = certs.list_properties_of_certificates(include_pending=True, max_page_size=2)
    paged = [list(page) for page in pager.by_page()]
    assert all(len(page) <= 2 for page in paged)
    assert sum(len(page) for page in paged) == len(everything)

    # Merged: listed without asking.
    csr = csr_of(certs.get_certificate_operation(pending))
    leaf = test_ca.sign_csr(csr).public_bytes(serialization.Encoding.DER)
    merged = certs.merge_certificate(pending, [leaf])
    now = listed()
    assert set(now) == {pending, done}
    assert now[pending].enabled is True
    assert now[pending].x509_thumbprint == merged.properties.x509_thumbprint


def test_merge_refuses_a_chain_for_another_key(certs: CertificateClient, test_ca: TestCA) -> None:
    name = unique("mismatch")
    certs.begin_create_certificate(
        name, CertificatePolicy("Unknown", subject="CN=mismatch", key_type=KeyType.ec)
    ).result()
    _, other = test_ca.leaf("CN=someone else")
    with pytest.raises(HttpResponseError) as err:
        certs.merge_certificate(name, [other.public_bytes(serialization.Encoding.DER)])
    assert inner(err)[:2] == (400, "BadParameter")
    assert "x5c" in err.value.message
    op = certs.get_certificate_operation(name)
    assert op.status == "inProgress"  # still waiting for the right certificate


def test_cancel_then_delete_a_pending_operation(
    certs: CertificateClient, keys: KeyClient, test_ca: TestCA
) -> None:
    name = unique("cancel")
    certs.begin_create_certificate(
        name, CertificatePolicy("Unknown", subject="CN=cancel", key_type=KeyType.ec)
    ).result()
    csr = csr_of(certs.get_certificate_operation(name))
    cancelled = certs.cancel_certificate_operation(name)
    assert cancelled.cancellation_requested is True
    assert cancelled.status != "inProgress"
    assert certs.get_certificate_operation(name).cancellation_requested is True
    # Nothing left to merge into.
    leaf = test_ca.sign_csr(csr)
    with pytest.raises(HttpResponseError) as err:
        certs.merge_certificate(name, [leaf.public_bytes(serialization.Encoding.DER)])
    assert err.value.status_code in (400, 404)

    deleted = certs.delete_certificate_operation(name)
    assert deleted.cancellation_requested is True
    with pytest.raises(ResourceNotFoundError):
        certs.get_certificate_operation(name)
    with pytest.raises(ResourceNotFoundError):
        certs.get_certificate(name)
    with pytest.raises(ResourceNotFoundError):
        keys.get_key(name)

    # The name is free: a Self version can be made now.
    made = certs.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    assert isinstance(made, KeyVaultCertificate)


def test_delete_a_pending_operation_without_cancelling(
    certs: CertificateClient, test_ca: TestCA
) -> None:
    name = unique("delop")
    certs.begin_create_certificate(
        name, CertificatePolicy("Unknown", subject="CN=delop", key_type=KeyType.ec)
    ).result()
    csr = csr_of(certs.get_certificate_operation(name))
    deleted = certs.delete_certificate_operation(name)
    assert deleted.status == "inProgress" and deleted.csr
    with pytest.raises(ResourceNotFoundError):
        certs.get_certificate_operation(name)
    with pytest.raises(ResourceNotFoundError):  # "the certificate is no longer created"
        certs.merge_certificate(
            name, [test_ca.sign_csr(csr).public_bytes(serialization.Encoding.DER)]
        )
    with pytest.raises(ResourceNotFoundError):
        certs.get_certificate(name)
    with pytest.raises(ResourceNotFoundError):
        certs.delete_certificate_operation(name)


# -- versions, listings, properties, policy ----------------------------------------------------


def test_versions_latest_and_listings(certs: CertificateClient) -> None:
    name = unique("versions")
    policy = CertificatePolicy("Self", subject="CN=versions", key_type=KeyType.ec)
    first = certs.begin_create_certificate(name, policy).result()
    second = certs.begin_create_certificate(name, policy).result()
    third = certs.begin_create_certificate(name, policy).result()
    made = [c.properties.version for c in (first, second, third)]  # type: ignore[union-attr]
    assert len(set(made)) == 3

    latest = certs.get_certificate(name)
    assert latest.properties.version == made[-1]
    check_version(latest, name=name, with_policy=True)
    old = certs.get_certificate_version(name, made[0])  # type: ignore[arg-type]
    check_version(old, name=name, with_policy=False)
    assert old.cer == first.cer and old.cer != latest.cer  # type: ignore[union-attr]

    pages = list(certs.list_properties_of_certificate_versions(name, max_page_size=2).by_page())
    listed = [p for page in pages for p in page]
    assert len(pages) >= 2
    assert sorted(p.version for p in listed) == sorted(made)
    for p in listed:
        assert p.id == f"{p.vault_url}/certificates/{name}/{p.version}"
        assert p.x509_thumbprint

    for extra in range(5):  # enough certificates for several pages
        certs.begin_create_certificate(f"{name}-{extra}", policy).result()
    pages = list(certs.list_properties_of_certificates(max_page_size=2).by_page())
    assert len(pages) >= 3
    assert all(len(page) <= 2 for page in (list(p) for p in pages))
    everything = list(certs.list_properties_of_certificates())
    mine = [p for p in everything if p.name == name]
    assert len(mine) == 1
    assert mine[0].id == f"{mine[0].vault_url}/certificates/{name}"  # versionless
    assert mine[0].version is None
    assert mine[0].x509_thumbprint == latest.properties.x509_thumbprint


def test_update_properties(certs: CertificateClient, secrets: SecretClient) -> None:
    name = unique("update")
    policy = CertificatePolicy("Self", subject="CN=update", key_type=KeyType.ec)
    first = certs.begin_create_certificate(name, policy).result()
    latest = certs.begin_create_certificate(name, policy, tags={"a": "1"}).result()
    assert isinstance(first, KeyVaultCertificate) and isinstance(latest, KeyVaultCertificate)

    updated = certs.update_certificate_properties(name, tags={"b": "2"}, enabled=False)
    assert updated.properties.version == latest.properties.version
    assert updated.properties.enabled is False
    assert updated.properties.tags == {"b": "2"}

    v1 = first.properties.version
    assert v1 is not None
    older = certs.update_certificate_properties(name, v1, tags={"old": "yes"})
    assert older.properties.version == v1 and older.properties.tags == {"old": "yes"}
    assert older.properties.enabled is True
    listed = {p.version: p for p in certs.list_properties_of_certificate_versions(name)}
    assert listed[latest.properties.version].enabled is False
    assert listed[latest.properties.version].tags == {"b": "2"}
    assert listed[v1].enabled is True and listed[v1].tags == {"old": "yes"}


def test_a_disabled_certificate_is_still_readable(certs: CertificateClient) -> None:
    """Real Key Vault answers ``GET /certificates/{n}/{v}`` of a disabled version with 200 and
    ``enabled: false`` (JS SDK recording ``can disable a certificate version``): the certificate
    is public material; only the secret and key refuse use."""
    name = unique("disabled")
    cert = certs.begin_create_certificate(
        name, CertificatePolicy("Self", subject="CN=disabled", key_type=KeyType.ec)
    ).result()
    assert isinstance(cert, KeyVaultCertificate) and cert.properties.version
    certs.update_certificate_properties(name, cert.properties.version, enabled=False)
    got = certs.get_certificate_version(name, cert.properties.version)
    assert got.properties.enabled is False and got.cer == cert.cer
    latest = certs.get_certificate(name)
    assert latest.properties.enabled is False and latest.policy is not None


def test_update_and_delete_answer_the_whole_bundle(certs: CertificateClient) -> None:
    """``PATCH /certificates/{n}/{v}`` answers a CertificateBundle (REST spec), and ``DELETE
    /certificates/{n}`` / ``GET /deletedcertificates/{n}`` a DeletedCertificateBundle: the
    versioned id, ``kid``, ``sid``, ``cer`` (section 2.6; real-service recordings)."""
    name = unique("shape")
    cert = certs.begin_create_certificate(
        name, CertificatePolicy("Self", subject="CN=shape", key_type=KeyType.ec)
    ).result()
    assert isinstance(cert, KeyVaultCertificate)
    updated = certs.update_certificate_properties(name, tags={"b": "2"})
    assert updated.cer == cert.cer
    assert (updated.key_id, updated.secret_id) == (cert.key_id, cert.secret_id)
    deleted = certs.begin_delete_certificate(name).result()
    got = certs.get_deleted_certificate(name)
    for gone in (deleted, got):
        assert gone.properties.version == cert.properties.version
        assert gone.cer == cert.cer
        assert (gone.key_id, gone.secret_id) == (cert.key_id, cert.secret_id)


def test_disabling_a_certificate_disables_its_secret_and_key(
    certs: CertificateClient, secrets: SecretClient, keys: KeyClient
) -> None:
    """Section 2.6/2.7: the backing key's and secret's attributes mirror the certificate's."""
    name = unique("mirror")
    cert = certs.begin_create_certificate(
        name, CertificatePolicy("Self", subject="CN=mirror", key_type=KeyType.ec)
    ).result()
    assert isinstance(cert, KeyVaultCertificate)
    certs.update_certificate_properties(name, enabled=False)
    (secret,) = list(secrets.list_properties_of_secret_versions(name))
    (key,) = list(keys.list_properties_of_key_versions(name))
    assert secret.enabled is False
    assert key.enabled is False


def test_get_and_update_policy(certs: CertificateClient) -> None:
    name = unique("policy")
    certs.begin_create_certificate(
        name,
        CertificatePolicy(
            "Self",
            subject="CN=policy",
            san_dns_names=["policy.example"],
            key_type=KeyType.ec,
            key_curve_name=KeyCurveName.p_256,
            content_type=CertificateContentType.pkcs12,
        ),
    ).result()
    policy = certs.get_certificate_policy(name)
    assert policy.subject == "CN=policy" and policy.key_curve_name == "P-256"
    assert policy.san_dns_names == ["policy.example"]

    changed = certs.update_certificate_policy(
        name,
        CertificatePolicy(
            "Self",
            subject="CN=policy v2",
            validity_in_months=24,
            content_type=CertificateContentType.pem,
        ),
    )
    # The members given change; the others stay (PATCH).
    assert changed.subject == "CN=policy v2"
    assert changed.validity_in_months == 24
    assert changed.content_type == PEM
    assert changed.san_dns_names == ["policy.example"]
    assert changed.key_type == "EC" and changed.key_curve_name == "P-256"
    again = certs.get_certificate_policy(name)
    assert again.subject == "CN=policy v2" and again.validity_in_months == 24
    assert certs.get_certificate(name).policy.subject == "CN=policy v2"  # type: ignore[union-attr]

    with pytest.raises(ResourceNotFoundError):
        certs.get_certificate_policy(unique("nopolicy"))


# -- import ------------------------------------------------------------------------------------


def _pfx(
    key: Any, cert: x509.Certificate, chain: list[x509.Certificate], pw: bytes | None
) -> bytes:
    encryption = serialization.BestAvailableEncryption(pw) if pw else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(b"imported", key, cert, chain, encryption)


def _pem(key: Any, cert: x509.Certificate, chain: list[x509.Certificate]) -> bytes:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private + b"".join(der_pem(c) for c in [cert, *chain])


@pytest.mark.parametrize("form", ["pfx-password", "pfx-no-password", "pem-with-key"])
def test_import(
    key_server: KeyServer,
    certs: CertificateClient,
    secrets: SecretClient,
    keys: KeyClient,
    test_ca: TestCA,
    form: str,
) -> None:
    name = unique("import")
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if form == "pfx-password"
        else ec.generate_private_key(ec.SECP256R1())
    )
    key, leaf = test_ca.leaf("import.example", key=key, dns=["import.example"], days=200)
    kwargs: dict[str, Any] = {"tags": {"form": form}}
    if form == "pfx-password":
        data = _pfx(key, leaf, [test_ca.cert], b"s3cret pw")
        kwargs["password"] = "s3cret pw"
        content_type = PKCS12
    elif form == "pfx-no-password":
        data = _pfx(key, leaf, [test_ca.cert], None)
        content_type = PKCS12
    else:
        data = _pem(key, leaf, [test_ca.cert])
        kwargs["policy"] = CertificatePolicy(
            "Unknown", content_type=CertificateContentType.pem, subject="CN=import.example"
        )
        content_type = PEM
    cert = certs.import_certificate(name, data, **kwargs)
    check_version(cert, name=name, with_policy=True)
    assert load_cer(cert.cer) == leaf
    assert cert.properties.tags == {"form": form}
    policy = cert.policy
    assert policy is not None
    assert policy.subject == "CN=import.example"
    assert policy.san_dns_names == ["import.example"]
    assert policy.enhanced_key_usage == [SERVER_AUTH]
    assert policy.issuer_name == "Unknown"
    assert policy.content_type == content_type
    assert policy.key_type == ("RSA" if isinstance(key, rsa.RSAPrivateKey) else "EC")
    assert policy.validity_in_months == 7  # 200 days and 5 minutes: 7 calendar months at most

    check_linked(
        key_server,
        secrets,
        keys,
        cert,
        content_type=content_type,
        exportable=True,
        kty=policy.key_type,  # type: ignore[arg-type]
        key_usage=(),
        chain=(test_ca.cert,),
    )
    secret = secrets.get_secret(name)
    assert secret.value is not None
    opened = open_secret(secret.value, content_type)
    assert opened.key.private_numbers() == key.private_numbers()
    openssl_verify([test_ca.cert], load_cer(cert.cer), purpose="sslserver")


# -- lifecycle ---------------------------------------------------------------------------------


def test_delete_recover_purge_move_all_three(
    certs: CertificateClient, secrets: SecretClient, keys: KeyClient
) -> None:
    name = unique("life")
    cert = certs.begin_create_certificate(
        name,
        CertificatePolicy("Self", subject="CN=life", content_type=CertificateContentType.pem),
    ).result()
    assert isinstance(cert, KeyVaultCertificate)
    version = cert.properties.version
    value = secrets.get_secret(name).value

    deleted = certs.begin_delete_certificate(name).result()
    assert deleted.name == name
    assert deleted.recovery_id == f"{cert.properties.vault_url}/deletedcertificates/{name}"
    assert deleted.deleted_on is not None and deleted.scheduled_purge_date is not None
    assert deleted.scheduled_purge_date > deleted.deleted_on
    for read in (
        lambda: certs.get_certificate(name),
        lambda: secrets.get_secret(name),
        lambda: keys.get_key(name),
    ):
        with pytest.raises(ResourceNotFoundError):
            read()
    got = certs.get_deleted_certificate(name)
    assert got.recovery_id == deleted.recovery_id and got.name == name
    assert name in {d.name for d in certs.list_deleted_certificates()}
    # The managed key and secret went with it.
    assert secrets.get_deleted_secret(name).name == name
    assert keys.get_deleted_key(name).name == name
    # A deleted name cannot be created again until it is recovered or purged.
    with pytest.raises(HttpResponseError) as err:
        certs.begin_create_certificate(name, CertificatePolicy.get_default())
    assert err.value.status_code == 409

    recovered = certs.begin_recover_deleted_certificate(name).result()
    assert recovered.properties.version == version
    assert certs.get_certificate(name).cer == cert.cer
    assert secrets.get_secret(name).value == value
    assert keys.get_key(name).id == cert.key_id

    certs.begin_delete_certificate(name).result()
    certs.purge_deleted_certificate(name)
    for read in (
        lambda: certs.get_deleted_certificate(name),
        lambda: secrets.get_deleted_secret(name),
        lambda: keys.get_deleted_key(name),
        lambda: certs.get_certificate(name),
        lambda: secrets.get_secret(name),
        lambda: keys.get_key(name),
    ):
        with pytest.raises(ResourceNotFoundError):
            read()
    assert name not in {d.name for d in certs.list_deleted_certificates()}
    again = certs.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    assert isinstance(again, KeyVaultCertificate)


def test_backup_restore_brings_all_three_back(
    key_server: KeyServer, certs: CertificateClient, secrets: SecretClient, keys: KeyClient
) -> None:
    name = unique("backup")
    policy = CertificatePolicy("Self", subject="CN=backup", key_type=KeyType.ec)
    first = certs.begin_create_certificate(name, policy).result()
    cert = certs.begin_create_certificate(name, policy, tags={"t": "1"}).result()
    assert isinstance(first, KeyVaultCertificate) and isinstance(cert, KeyVaultCertificate)
    value = secrets.get_secret(name).value
    blob = certs.backup_certificate(name)
    assert isinstance(blob, bytes) and len(blob) > 100
    with pytest.raises(ResourceExistsError):
        certs.restore_certificate_backup(blob)

    certs.begin_delete_certificate(name).result()
    certs.purge_deleted_certificate(name)
    restored = certs.restore_certificate_backup(blob)
    assert restored.properties.version == cert.properties.version
    assert restored.cer == cert.cer
    assert restored.properties.tags == {"t": "1"}
    assert restored.policy is not None and restored.policy.subject == "CN=backup"
    assert sorted(p.version for p in certs.list_properties_of_certificate_versions(name)) == sorted(
        [first.properties.version, cert.properties.version]
    )
    assert secrets.get_secret(name).value == value
    assert secrets.get_secret(name).properties.managed is True
    key = keys.get_key(name)
    assert key.id == cert.key_id and key.properties.managed is True
    check_linked(
        key_server,
        secrets,
        keys,
        restored,
        content_type=PKCS12,
        exportable=True,
        kty="EC",
        key_usage=("digitalSignature", "keyEncipherment"),
    )
    with pytest.raises(HttpResponseError) as err:
        certs.restore_certificate_backup(b"not a backup blob at all")
    assert err.value.status_code == 400


# -- linked items ------------------------------------------------------------------------------


def test_managed_key_and_secret_refuse_direct_writes(
    certs: CertificateClient, secrets: SecretClient, keys: KeyClient
) -> None:
    name = unique("managed")
    cert = certs.begin_create_certificate(
        name, CertificatePolicy("Self", subject="CN=managed")
    ).result()
    assert isinstance(cert, KeyVaultCertificate)
    secret_writes = [
        lambda: secrets.set_secret(name, "overwrite"),
        lambda: secrets.update_secret_properties(name, enabled=False),
        lambda: secrets.update_secret_properties(name, cert.properties.version, tags={"x": "y"}),
        lambda: secrets.begin_delete_secret(name),
    ]
    key_writes = [
        lambda: keys.begin_delete_key(name),
        lambda: keys.update_key_properties(name, enabled=False),
        lambda: keys.create_rsa_key(name),
        lambda: keys.rotate_key(name),
    ]
    for write in secret_writes:
        with pytest.raises(HttpResponseError) as err:
            write()
        assert inner(err) == (403, "Forbidden", "SecretManagedByKeyVault")
        assert "managed by Key Vault" in err.value.message
    for write in key_writes:
        with pytest.raises(HttpResponseError) as err:
            write()
        assert inner(err) == (403, "Forbidden", "KeyManagedByKeyVault")

    # Nothing changed.
    secret = secrets.get_secret(name)
    assert secret.properties.version == cert.properties.version
    assert secret.properties.enabled is True and not secret.properties.tags
    assert [p.version for p in keys.list_properties_of_key_versions(name)] == [
        cert.properties.version
    ]

    listed = {p.name: p for p in secrets.list_properties_of_secrets() if p.name == name}
    assert listed[name].managed is True
    assert listed[name].content_type == PKCS12
    assert {p.name: p.managed for p in keys.list_properties_of_keys() if p.name == name} == {
        name: True
    }
    # An ordinary secret is not managed.
    plain = unique("plain")
    secrets.set_secret(plain, "v")
    assert {p.name: p.managed for p in secrets.list_properties_of_secrets() if p.name == plain} in (
        {plain: None},
        {plain: False},
    )


def test_certificate_user_signing_flow_through_kid_and_sid(
    key_server: KeyServer, certs: CertificateClient, secrets: SecretClient
) -> None:
    """What an application does with a certificate: read ``sid`` by its URL-derived name and
    version, and sign with ``kid`` (ES256 here; RS256 in the policy cases)."""
    name = unique("app")
    cert = certs.begin_create_certificate(
        name,
        CertificatePolicy(
            "Self", subject="CN=app", key_type=KeyType.ec, content_type=CertificateContentType.pem
        ),
    ).result()
    assert isinstance(cert, KeyVaultCertificate) and cert.secret_id and cert.key_id
    _, _, tail = cert.secret_id.partition("/secrets/")
    secret_name, version = tail.split("/")
    secret = secrets.get_secret(secret_name, version)
    assert secret.value is not None
    bundle = open_secret(secret.value, PEM)
    cred = StaticCredential(key_server.env["KVAULT_TOKEN"])
    with CryptographyClient(cert.key_id, cred, **client_kwargs(key_server)) as crypto:
        d = digest("ES256")
        sig = crypto.sign(SignatureAlgorithm.es256, d).signature
    verify_with_cert(bundle.certs[0], "ES256", d, sig)


# -- contacts and issuers ----------------------------------------------------------------------


def test_contacts(certs: CertificateClient) -> None:
    contacts = [
        CertificateContact(email="admin@contoso.com", name="John Doe", phone="1111111111"),
        CertificateContact(email="pki@contoso.com", name="PKI"),
    ]
    set_ = certs.set_contacts(contacts)
    assert [(c.email, c.name, c.phone) for c in set_] == [
        ("admin@contoso.com", "John Doe", "1111111111"),
        ("pki@contoso.com", "PKI", None),
    ]
    got = certs.get_contacts()
    assert [(c.email, c.name) for c in got] == [
        ("admin@contoso.com", "John Doe"),
        ("pki@contoso.com", "PKI"),
    ]
    replaced = certs.set_contacts([CertificateContact(email="only@contoso.com")])
    assert [c.email for c in replaced] == ["only@contoso.com"]
    deleted = certs.delete_contacts()
    assert [c.email for c in deleted] == ["only@contoso.com"]
    with pytest.raises(ResourceNotFoundError):
        certs.get_contacts()


def test_issuers(certs: CertificateClient) -> None:
    name = unique("issuer")
    admins = [
        AdministratorContact(
            first_name="Jane", last_name="Doe", email="jane@contoso.com", phone="42"
        )
    ]
    made = certs.create_issuer(
        name,
        "DigiCert",
        account_id="acct",
        password="issuer-password",
        organization_id="org-1",
        admin_contacts=admins,
        enabled=True,
    )
    assert made.name == name and made.provider == "DigiCert"
    assert made.id == f"{certs.vault_url}/certificates/issuers/{name}"
    assert made.account_id == "acct" and made.organization_id == "org-1"
    assert made.enabled is True
    assert made.password is None  # write-only
    assert [(a.first_name, a.last_name, a.email, a.phone) for a in made.admin_contacts or []] == [
        ("Jane", "Doe", "jane@contoso.com", "42")
    ]

    got = certs.get_issuer(name)
    assert (got.provider, got.account_id, got.organization_id) == ("DigiCert", "acct", "org-1")
    listed = {i.name: i.provider for i in certs.list_properties_of_issuers()}
    assert listed[name] == "DigiCert"

    updated = certs.update_issuer(name, enabled=False, account_id="acct-2")
    assert updated.enabled is False and updated.account_id == "acct-2"
    assert updated.provider == "DigiCert" and updated.organization_id == "org-1"
    assert certs.get_issuer(name).enabled is False

    gone = certs.delete_issuer(name)
    assert gone.name == name
    with pytest.raises(ResourceNotFoundError):
        certs.get_issuer(name)
    assert name not in {i.name for i in certs.list_properties_of_issuers()}
    with pytest.raises(ResourceNotFoundError):
        certs.update_issuer(name, enabled=True)


def _issuer_state(issuer: CertificateIssuer) -> tuple[Any, ...]:
    admins = [(a.first_name, a.email) for a in issuer.admin_contacts or []]
    return issuer.provider, issuer.account_id, issuer.organization_id, admins, issuer.enabled


def test_update_issuer_leaves_missing_members_and_clears_replaced_parts(
    certs: CertificateClient,
) -> None:
    """``update_issuer`` (PATCH) as Azure's: a member the body leaves out (or sends null) is
    unchanged; a ``credentials`` or ``org_details`` it sends replaces that part whole, so the
    fields it leaves out are cleared. The SDK sends only what it is given: organization id
    alone clears the administrators (``az keyvault certificate issuer admin delete`` of the
    last one), administrators alone clear the organization id, a password alone clears the
    account id."""
    name = unique("upd")
    jane = AdministratorContact(first_name="Jane", last_name="Doe", email="jane@contoso.com")
    made = certs.create_issuer(
        name,
        "DigiCert",
        account_id="acct",
        password="pw",
        organization_id="org-1",
        admin_contacts=[jane],
        enabled=True,
    )
    everything = ("DigiCert", "acct", "org-1", [("Jane", "jane@contoso.com")], True)
    assert _issuer_state(made) == everything

    # Only attributes sent: everything else as it was.
    off = certs.update_issuer(name, enabled=False)
    assert _issuer_state(off) == (*everything[:4], False)
    # Only the organization id: the administrators go.
    no_admins = certs.update_issuer(name, organization_id="org-1")
    assert _issuer_state(no_admins) == ("DigiCert", "acct", "org-1", [], False)
    # Only administrators: the organization id goes.
    no_org = certs.update_issuer(name, admin_contacts=[jane])
    assert _issuer_state(no_org) == (
        "DigiCert",
        "acct",
        None,
        [("Jane", "jane@contoso.com")],
        False,
    )
    # Only a password: the account id goes (the password itself is never returned).
    no_account = certs.update_issuer(name, password="pw-2")
    assert no_account.account_id is None and no_account.password is None
    assert _issuer_state(certs.get_issuer(name)) == _issuer_state(no_account)

    def patch(body: dict[str, Any]) -> dict[str, Any]:
        r = certs.send_request(HttpRequest("PATCH", f"/certificates/issuers/{name}", json=body))
        assert r.status_code == 200, r.text()
        doc: dict[str, Any] = r.json()
        return doc

    # Null members are left as they are, like missing ones.
    before = _issuer_state(certs.get_issuer(name))
    patch({"provider": None, "credentials": None, "org_details": None, "attributes": None})
    patch({"attributes": {"enabled": None}})
    assert _issuer_state(certs.get_issuer(name)) == before
    # Null or empty fields inside a part that is sent are cleared.
    patch({"credentials": {"account_id": "acct-3"}, "org_details": {"id": "org-3"}})
    assert _issuer_state(certs.get_issuer(name)) == ("DigiCert", "acct-3", "org-3", [], False)
    doc = patch(
        {"credentials": {"account_id": "", "pwd": None}, "org_details": {"admin_details": None}}
    )
    assert "credentials" not in doc and "org_details" not in doc
    assert _issuer_state(certs.get_issuer(name)) == ("DigiCert", None, None, [], False)
    assert certs.update_issuer(name, provider="GlobalSign", enabled=True).provider == "GlobalSign"


# -- the kvault-ca issuer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ca_kty, leaf_kty, content_type",
    [("RSA", "RSA", PKCS12), ("EC-HSM", "RSA-HSM", PEM), ("RSA-HSM", "EC", PEM)],
    ids=["rsa-ca-rsa-leaf-pfx", "ec-hsm-ca-rsa-hsm-leaf-pem", "rsa-hsm-ca-ec-leaf-pem"],
)
def test_kvault_ca_issuer_signs_a_complete_chain(
    key_server: KeyServer,
    certs: CertificateClient,
    secrets: SecretClient,
    keys: KeyClient,
    ca_kty: str,
    leaf_kty: str,
    content_type: str,
) -> None:
    ca_name, issuer, leaf_name = unique("ca"), unique("iss"), unique("leaf")
    doc = create_raw(certs, ca_name, ca_policy(f"CN={ca_name},O=kvault CA", ca_kty))
    assert doc["policy"]["x509_props"]["basic_constraints"] == {"ca": True}
    ca = certs.get_certificate(ca_name)
    ca_cert = load_cer(ca.cer)
    check_issued(
        ca_cert,
        subject=f"CN={ca_name},O=kvault CA",
        created=ca.properties.created_on,
        months=24,
        eku=(),
        key_usage=("keyCertSign", "cRLSign", "digitalSignature"),
        ca=True,
    )
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).critical

    made = certs.create_issuer(issuer, "kvault-ca", account_id=ca_name)
    assert made.provider == "kvault-ca" and made.account_id == ca_name
    exportable = not leaf_kty.endswith("-HSM")
    policy = CertificatePolicy(
        issuer,
        subject=f"CN={leaf_name}.example",
        san_dns_names=[f"{leaf_name}.example"],
        enhanced_key_usage=[SERVER_AUTH],
        key_type=KeyType(leaf_kty),
        exportable=exportable,
        content_type=CertificateContentType(content_type),
        validity_in_months=3,
    )
    leaf_cert = certs.begin_create_certificate(leaf_name, policy).result()
    assert isinstance(leaf_cert, KeyVaultCertificate)
    check_version(leaf_cert, name=leaf_name, with_policy=True)
    assert leaf_cert.policy is not None and leaf_cert.policy.issuer_name == issuer
    leaf = load_cer(leaf_cert.cer)
    assert leaf.issuer == ca_cert.subject
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    check_issued(
        leaf,
        subject=f"CN={leaf_name}.example",
        created=leaf_cert.properties.created_on,
        months=3,
        dns=(f"{leaf_name}.example",),
        eku=(SERVER_AUTH,),
        key_usage=("digitalSignature", "keyEncipherment"),  # the default, EC keys too
    )
    openssl_verify([ca_cert], leaf, purpose="sslserver")
    # The chain is complete in the secret: leaf, then the CA.
    check_linked(
        key_server,
        secrets,
        keys,
        leaf_cert,
        content_type=content_type,
        exportable=exportable,
        kty=leaf_kty,
        key_usage=("digitalSignature", "keyEncipherment"),
        chain=(ca_cert,),
    )
    secret = secrets.get_secret(leaf_name)
    assert secret.value is not None
    bundle = open_secret(secret.value, content_type)
    openssl_verify([bundle.certs[-1]], bundle.certs[0])

    # A second leaf from the same issuer: another serial, same chain.
    other = certs.begin_create_certificate(unique("leaf"), policy).result()
    assert isinstance(other, KeyVaultCertificate)
    assert load_cer(other.cer).serial_number != leaf.serial_number
    openssl_verify([ca_cert], load_cer(other.cer))


def test_kvault_ca_issuer_refusals(certs: CertificateClient) -> None:
    """An issuer whose account names no certificate, a certificate that is not a CA, or a
    disabled issuer: 400, and no certificate is made."""
    not_ca, leaf = unique("notca"), unique("leaf")
    certs.begin_create_certificate(
        not_ca, CertificatePolicy("Self", subject="CN=not a ca", key_type=KeyType.ec)
    ).result()
    cases = {
        unique("iss"): unique("missing"),
        unique("iss"): not_ca,
    }
    for issuer, account in cases.items():
        certs.create_issuer(issuer, "kvault-ca", account_id=account)
        with pytest.raises(HttpResponseError) as err:
            certs.begin_create_certificate(
                leaf, CertificatePolicy(issuer, subject="CN=leaf", key_type=KeyType.ec)
            )
        assert inner(err)[:2] == (400, "BadParameter"), account
    ca = unique("ca")
    create_raw(certs, ca, ca_policy(f"CN={ca}", "EC"))
    disabled = unique("iss")
    certs.create_issuer(disabled, "kvault-ca", account_id=ca, enabled=False)
    with pytest.raises(HttpResponseError) as err:
        certs.begin_create_certificate(
            leaf, CertificatePolicy(disabled, subject="CN=leaf", key_type=KeyType.ec)
        )
    assert inner(err)[:2] == (400, "BadParameter")
    with pytest.raises(ResourceNotFoundError):
        certs.get_certificate(leaf)
    with pytest.raises(ResourceNotFoundError):
        certs.get_certificate_operation(leaf)


def test_basic_constraints_ca_of_a_self_signed_ca_policy(certs: CertificateClient) -> None:
    """The policy keeps ``basic_constraints.ca`` (the SDK ignores it, the wire has it)."""
    name = unique("ca")
    doc = create_raw(certs, name, ca_policy(f"CN={name}", "EC", crv="P-384"))
    assert doc["policy"]["x509_props"]["basic_constraints"] == {"ca": True}
    assert doc["policy"]["key_props"]["crv"] == "P-384"
    cert = load_cer(base64.b64decode(doc["cer"]))
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA384)
    assert doc["x5t"] == b64url(
        hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest()
    )


def test_a_certificate_cannot_take_the_name_of_a_plain_secret_or_key(
    certs: CertificateClient, secrets: SecretClient, keys: KeyClient, test_ca: TestCA
) -> None:
    """A certificate occupies its name in the secrets and keys too: over an existing plain
    secret or key, create and import fail (409) and leave the secret or key as it was."""
    secret_name, key_name = unique("plain"), unique("plainkey")
    secrets.set_secret(secret_name, "mine")
    key = keys.create_ec_key(key_name)
    key_pem, leaf = test_ca.leaf("taken")
    pfx = _pfx(key_pem, leaf, [], None)
    for name in (secret_name, key_name):
        with pytest.raises(HttpResponseError) as err:
            certs.begin_create_certificate(name, CertificatePolicy.get_default())
        assert err.value.status_code == 409, err.value.message
        with pytest.raises(HttpResponseError) as err:
            certs.import_certificate(name, pfx)
        assert err.value.status_code == 409, err.value.message
        with pytest.raises(ResourceNotFoundError):
            certs.get_certificate(name)
    kept = secrets.get_secret(secret_name)
    assert kept.value == "mine" and not kept.properties.managed
    again = keys.get_key(key_name)
    assert again.id == key.id and not again.properties.managed
    with pytest.raises(ResourceNotFoundError):
        keys.get_key(secret_name)
    with pytest.raises(ResourceNotFoundError):
        secrets.get_secret(key_name)
