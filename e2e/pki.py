"""Cluster certificates, generated with ``cryptography`` (no openssl CLI).

One CA signs every serving and client certificate; identities follow the names the RBAC
bootstrap policy and the Node authorizer expect. ECDSA P-256 keys keep generation instant.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)
Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Identity:
    """A certificate to issue: file stem, subject, usage and SANs."""

    stem: str
    cn: str
    orgs: tuple[str, ...] = ()
    server: bool = False
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()


def new_key() -> Key:
    """A fresh P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def write_key(key: Key, path: Path) -> None:
    """Write a private key as PKCS#8 PEM readable only by root."""
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def write_cert(cert: x509.Certificate, path: Path) -> None:
    """Write a certificate as PEM."""
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str = "kvault-e2e-ca") -> tuple[x509.Certificate, Key]:
    """Self-signed CA."""
    key = new_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(ident: Identity, ca: x509.Certificate, ca_key: Key) -> tuple[x509.Certificate, Key]:
    """Issue a leaf certificate for ``ident`` signed by the CA."""
    key = new_key()
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if ident.server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(ident.cn, ident.orgs))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in ident.dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ident.ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def identities(node_name: str, node_ip: str, service_ip: str) -> list[Identity]:
    """Every certificate the cluster needs."""
    api_dns = (
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    )
    return [
        Identity("apiserver", "kube-apiserver", server=True, dns=api_dns,
                 ips=("127.0.0.1", service_ip, node_ip)),
        Identity("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                 ("system:masters",)),
        Identity("admin", "kubernetes-admin", ("system:masters",)),
        Identity("controller-manager", "system:kube-controller-manager"),
        Identity("scheduler", "system:kube-scheduler"),
        Identity("kube-proxy", "system:kube-proxy"),  # bound to system:node-proxier
        Identity("coredns", "system:kvault:coredns"),  # RBAC from e2e/addons.py
        Identity("local-path", "system:kvault:local-path-provisioner"),
        Identity("kubelet", f"system:node:{node_name}", ("system:nodes",)),
        Identity("kubelet-serving", f"system:node:{node_name}", ("system:nodes",),
                 server=True, dns=(node_name, "localhost"), ips=(node_ip, "127.0.0.1")),
    ]  # fmt: skip


def generate(pki_dir: Path, node_name: str, node_ip: str, service_ip: str) -> None:
    """Write ca, leaf certificates and the ServiceAccount signing key into ``pki_dir``."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    ca, ca_key = make_ca()
    write_cert(ca, pki_dir / "ca.crt")
    write_key(ca_key, pki_dir / "ca.key")
    for ident in identities(node_name, node_ip, service_ip):
        cert, key = issue(ident, ca, ca_key)
        write_cert(cert, pki_dir / f"{ident.stem}.crt")
        write_key(key, pki_dir / f"{ident.stem}.key")
    sa_key = new_key()
    write_key(sa_key, pki_dir / "sa.key")
    (pki_dir / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
