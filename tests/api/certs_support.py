"""Shared helpers for the certificates tests: SDK clients of a ``kvault server --dev`` (the
servers of :mod:`tests.api.keys_support`, one per HSM plugin), a test CA made with
``cryptography`` (signs the CSR of an ``Unknown``-issuer certificate for ``merge``), the
independent checks of what kvault issued (``cryptography`` and ``openssl``), and raw REST
calls for what the SDK cannot say (``x509_props.basic_constraints``: the Python SDK does not
model it, so a CA certificate is created through ``send_request``)."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.rest import HttpRequest
from azure.keyvault.certificates import CertificateClient, CertificatePolicy
from azure.keyvault.certificates.aio import CertificateClient as AsyncCertificateClient
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets.aio import SecretClient as AsyncSecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.api.conftest import AsyncStaticCredential, StaticCredential
from tests.api.keys_support import HASHES, KeyServer, client_kwargs
from tests.fixtures.devserver import DevServer

UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string
CODE_SIGNING = ExtendedKeyUsageOID.CODE_SIGNING.dotted_string
PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
BACKDATE = 600
DAY = 86400
#: Azure's key usage names -> ``x509.KeyUsage`` attributes.
USAGE_FIELDS = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
}
#: key usage -> key_ops of the backing key (learn.microsoft.com, *About certificates*).
USAGE_OPS = {
    "digitalSignature": {"sign", "verify"},
    "nonRepudiation": {"sign", "verify"},
    "keyCertSign": {"sign", "verify"},
    "cRLSign": {"sign", "verify"},
    "keyEncipherment": {"wrapKey", "unwrapKey"},
    "dataEncipherment": {"encrypt", "decrypt"},
}
CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}
ES_OF_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}

Server = KeyServer | DevServer


# -- clients -----------------------------------------------------------------------------------


def cert_client(server: Server) -> CertificateClient:
    cred = StaticCredential(server.env["KVAULT_TOKEN"])
    return CertificateClient(server.env["KVAULT_ENDPOINT"], cred, **client_kwargs(server))


def async_cert_client(server: Server) -> AsyncCertificateClient:
    cred = AsyncStaticCredential(server.env["KVAULT_TOKEN"])
    return AsyncCertificateClient(server.env["KVAULT_ENDPOINT"], cred, **client_kwargs(server))


def secret_client(server: Server) -> SecretClient:
    cred = StaticCredential(server.env["KVAULT_TOKEN"])
    return SecretClient(server.env["KVAULT_ENDPOINT"], cred, **client_kwargs(server))


def async_secret_client(server: Server) -> AsyncSecretClient:
    cred = AsyncStaticCredential(server.env["KVAULT_TOKEN"])
    return AsyncSecretClient(server.env["KVAULT_ENDPOINT"], cred, **client_kwargs(server))


# -- raw REST through the SDK's pipeline -------------------------------------------------------


def ca_policy(
    subject: str, kty: str = "RSA", *, crv: str | None = None, months: int = 24
) -> dict[str, Any]:
    """A Self-issued CA policy (wire form): ``basic_constraints.ca`` true, keyCertSign and
    cRLSign, not exportable for ``-HSM`` key types."""
    key: dict[str, Any] = {"kty": kty, "exportable": not kty.endswith("-HSM")}
    if crv:
        key["crv"] = crv
    return {
        "key_props": key,
        "secret_props": {"contentType": PEM},
        "x509_props": {
            "subject": subject,
            "ekus": [],
            "key_usage": ["keyCertSign", "cRLSign", "digitalSignature"],
            "validity_months": months,
            "basic_constraints": {"ca": True},
        },
        "issuer": {"name": "Self"},
    }


def create_raw(client: CertificateClient, name: str, policy: dict[str, Any]) -> dict[str, Any]:
    """``POST /certificates/{name}/create`` with a wire-form policy, then the certificate."""
    r = client.send_request(
        HttpRequest("POST", f"/certificates/{name}/create", json={"policy": policy})
    )
    assert r.status_code == 202, r.text()
    op = client.send_request(HttpRequest("GET", f"/certificates/{name}/pending"))
    assert op.status_code == 200 and op.json()["status"] == "completed", op.text()
    got = client.send_request(HttpRequest("GET", f"/certificates/{name}/"))
    assert got.status_code == 200, got.text()
    doc: dict[str, Any] = got.json()
    return doc


async def acreate_raw(
    client: AsyncCertificateClient, name: str, policy: dict[str, Any]
) -> dict[str, Any]:
    r = await client.send_request(
        HttpRequest("POST", f"/certificates/{name}/create", json={"policy": policy})
    )
    assert r.status_code == 202, r.text()
    op = await client.send_request(HttpRequest("GET", f"/certificates/{name}/pending"))
    assert op.status_code == 200 and op.json()["status"] == "completed", op.text()
    got = await client.send_request(HttpRequest("GET", f"/certificates/{name}/"))
    assert got.status_code == 200, got.text()
    doc: dict[str, Any] = got.json()
    return doc


# -- a CA of the test's own --------------------------------------------------------------------


@dataclass
class TestCA:
    """A root CA made with ``cryptography`` (an external CA for ``Unknown`` issuers)."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    __test__ = False  # not a test class

    @classmethod
    def make(cls, cn: str = "kvault test root", *, ec_key: bool = True) -> TestCA:
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
            ec.generate_private_key(ec.SECP256R1())
            if ec_key
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def sign_csr(
        self, csr: x509.CertificateSigningRequest, *, days: int = 90, serial: int | None = None
    ) -> x509.Certificate:
        """A leaf for ``csr``: its subject, key and requested extensions."""
        assert csr.is_signature_valid
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.cert.subject)
            .public_key(csr.public_key())  # type: ignore[arg-type]
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        for ext in csr.extensions:
            builder = builder.add_extension(ext.value, ext.critical)
        return builder.sign(self.key, hashes.SHA256())

    def leaf(
        self,
        cn: str,
        *,
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
        dns: Sequence[str] = (),
        days: int = 90,
    ) -> tuple[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A key and a leaf certificate for it (for imports)."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if dns:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), False
            )
        return key, builder.sign(self.key, hashes.SHA256())


# -- reading what kvault issued ----------------------------------------------------------------


def der_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cer(cer: bytes | bytearray | None) -> x509.Certificate:
    assert cer, "the certificate has no cer"
    return x509.load_der_x509_certificate(bytes(cer))


def csr_of(op: Any) -> x509.CertificateSigningRequest:
    """The CSR of a CertificateOperation (the SDK gives the DER bytes)."""
    assert op.csr, "the pending operation has no csr"
    return x509.load_der_x509_csr(bytes(op.csr))


@dataclass
class Bundle:
    """A certificate-backed secret's value, opened."""

    key: Any  # private key or None
    certs: list[x509.Certificate]
    raw: bytes  # the PEM text, or the PFX bytes


def open_secret(value: str, content_type: str | None) -> Bundle:
    """PEM: the PKCS#8 key (first) and the certificates; PKCS#12: the base64 PFX, loaded with
    password None (the empty password), leaf first then the chain."""
    if content_type == PEM:
        data = value.encode()
        blocks = [b"-----BEGIN" + b for b in data.split(b"-----BEGIN")[1:]]
        key = None
        if blocks and blocks[0].startswith(b"-----BEGIN PRIVATE KEY-----"):
            key = serialization.load_pem_private_key(blocks[0], None)
            blocks = blocks[1:]
        for block in blocks:
            assert block.startswith(b"-----BEGIN CERTIFICATE-----"), block[:40]
        assert b"PRIVATE KEY" not in b"".join(blocks), "a private key after the certificates"
        return Bundle(key, [x509.load_pem_x509_certificate(b) for b in blocks], data)
    assert content_type == PKCS12, content_type
    pfx = base64.b64decode(value, validate=True)
    key, cert, extra = pkcs12.load_key_and_certificates(pfx, None)
    certs = ([cert] if cert is not None else []) + list(extra)
    return Bundle(key, certs, pfx)


def public_der(key: Any) -> bytes:
    """The SubjectPublicKeyInfo of a public key, or of a private key's public half."""
    if hasattr(key, "private_numbers"):
        key = key.public_key()
    out: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return out


def same_public(a: Any, b: Any) -> bool:
    return public_der(a) == public_der(b)


def verify_with_cert(cert: x509.Certificate, alg: str, digest: bytes, signature: bytes) -> None:
    """Check a Key Vault signature (RS*, or raw r||s ES*) with the certificate's public key."""
    public = cert.public_key()
    h = HASHES[alg]
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(h))
        return
    assert isinstance(public, ec.EllipticCurvePublicKey)
    width = (public.curve.key_size + 7) // 8
    assert len(signature) == 2 * width
    r, s = int.from_bytes(signature[:width], "big"), int.from_bytes(signature[width:], "big")
    public.verify(utils.encode_dss_signature(r, s), digest, ec.ECDSA(utils.Prehashed(h)))


def sign_alg(cert: x509.Certificate) -> str:
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return "RS256"
    assert isinstance(public, ec.EllipticCurvePublicKey)
    return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[public.curve.name]


def ext(cert: x509.Certificate | x509.CertificateSigningRequest, kind: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def usages(cert: x509.Certificate | x509.CertificateSigningRequest) -> set[str]:
    found = ext(cert, x509.KeyUsage)
    if found is None:
        return set()
    return {name for name, attr in USAGE_FIELDS.items() if getattr(found.value, attr)}


def sans(cert: x509.Certificate | x509.CertificateSigningRequest) -> dict[str, list[str]]:
    found = ext(cert, x509.SubjectAlternativeName)
    if found is None:
        return {"dns": [], "emails": [], "upns": []}
    value = found.value
    upns = []
    for other in value.get_values_for_type(x509.OtherName):
        assert other.type_id == UPN_OID
        assert other.value[0] == 0x0C  # UTF8String
        upns.append(other.value[2:].decode())
    return {
        "dns": value.get_values_for_type(x509.DNSName),
        "emails": value.get_values_for_type(x509.RFC822Name),
        "upns": upns,
    }


def ekus(cert: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    found = ext(cert, x509.ExtendedKeyUsage)
    return [] if found is None else [oid.dotted_string for oid in found.value]


def check_issued(
    cert: x509.Certificate,
    *,
    subject: str,
    created: dt.datetime | None,
    months: int,
    dns: Sequence[str] = (),
    emails: Sequence[str] = (),
    upns: Sequence[str] = (),
    eku: Sequence[str] = (SERVER_AUTH, CLIENT_AUTH),
    key_usage: Sequence[str] = ("digitalSignature", "keyEncipherment"),
    ca: bool = False,
) -> None:
    """What the policy said, read back from the X.509 certificate with ``cryptography``:
    subject, SANs, EKUs, key usage (critical), basic constraints, and the validity:
    ``nbf = created - 10 min``, ``exp = created + the policy's months`` (365 days for 12, as
    real Key Vault issues them; other month counts within 28..31 days a month)."""
    assert cert.version == x509.Version.v3
    assert cert.subject.rfc4514_string() == subject, cert.subject.rfc4514_string()
    assert sans(cert) == {"dns": list(dns), "emails": list(emails), "upns": list(upns)}
    assert ekus(cert) == list(eku)
    assert usages(cert) == set(key_usage)
    if key_usage:
        assert ext(cert, x509.KeyUsage).critical
    constraints = ext(cert, x509.BasicConstraints)
    assert constraints is not None and constraints.value.ca is ca
    assert ext(cert, x509.SubjectKeyIdentifier) is not None
    assert ext(cert, x509.AuthorityKeyIdentifier) is not None
    nbf, exp = cert.not_valid_before_utc, cert.not_valid_after_utc
    if created is not None:
        assert abs((created - nbf).total_seconds() - BACKDATE) <= 5, (created, nbf)
        life = (exp - created).total_seconds()
    else:
        life = (exp - nbf).total_seconds() - BACKDATE
    if months == 12:
        assert life == 365 * DAY, life / DAY
    else:
        assert months * 28 * DAY <= life <= months * 31 * DAY, life / DAY


# -- openssl -----------------------------------------------------------------------------------


def openssl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, timeout=60)


def openssl_verify(
    roots: Sequence[x509.Certificate],
    leaf: x509.Certificate,
    untrusted: Sequence[x509.Certificate] = (),
    *,
    purpose: str | None = None,
) -> None:
    """``openssl verify -CAfile roots.pem [-untrusted chain.pem] leaf.pem`` must pass."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "ca.pem").write_bytes(b"".join(der_pem(c) for c in roots))
        (d / "leaf.pem").write_bytes(der_pem(leaf))
        args = ["verify", "-CAfile", str(d / "ca.pem")]
        if untrusted:
            (d / "chain.pem").write_bytes(b"".join(der_pem(c) for c in untrusted))
            args += ["-untrusted", str(d / "chain.pem")]
        if purpose:
            args += ["-purpose", purpose]
        done = openssl(*args, str(d / "leaf.pem"))
        out = done.stdout.decode() + done.stderr.decode()
        assert done.returncode == 0 and ": OK" in out, out


def openssl_pkcs12_nodes(pfx: bytes) -> str:
    """``openssl pkcs12 -nodes -passin pass:`` (OpenSSL 3, no ``-legacy``) must read the PFX;
    its PEM output."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.pfx"
        path.write_bytes(pfx)
        done = openssl("pkcs12", "-in", str(path), "-nodes", "-passin", "pass:")
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()


def policy_summary(policy: CertificatePolicy) -> dict[str, Any]:
    """What a test compares of an SDK policy."""
    return {
        "issuer": policy.issuer_name,
        "subject": policy.subject,
        "dns": list(policy.san_dns_names or []),
        "emails": list(policy.san_emails or []),
        "upns": list(policy.san_user_principal_names or []),
        "ekus": list(policy.enhanced_key_usage or []),
        "key_usage": [str(u.value if hasattr(u, "value") else u) for u in policy.key_usage or []],
        "months": policy.validity_in_months,
        "content_type": str(getattr(policy.content_type, "value", policy.content_type)),
        "kty": str(getattr(policy.key_type, "value", policy.key_type)),
        "exportable": policy.exportable,
    }
