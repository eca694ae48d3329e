"""Cluster certificates, generated with ``cryptography`` (no openssl CLI).

One CA signs every serving and client certificate; identities follow the names the RBAC
bootstrap policy and the Node authorizer expect. ECDSA P-256 keys keep generation instant.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from kvault.crypto import certs, pem

VALIDITY = dt.timedelta(days=365)
Key = certs.Key


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
    return certs.new_key()


def write_key(key: Key, path: Path) -> None:
    """Write a private key as PKCS#8 PEM readable only by root."""
    pem.write_private(path, pem.private_pem(key))


def write_cert(cert: x509.Certificate, path: Path) -> None:
    """Write a certificate as PEM."""
    path.write_bytes(pem.cert_pem(cert))


def make_ca(cn: str = "kvault-e2e-ca") -> tuple[x509.Certificate, Key]:
    """Self-signed CA."""
    return certs.self_signed_ca(cn, VALIDITY)


def issue(ident: Identity, ca: x509.Certificate, ca_key: Key) -> tuple[x509.Certificate, Key]:
    """Issue a leaf certificate for ``ident`` signed by the CA."""
    return certs.issue(
        ca,
        ca_key,
        ident.cn,
        VALIDITY,
        orgs=ident.orgs,
        names=(*ident.dns, *ident.ips),
        usages=(certs.SERVER if ident.server else certs.CLIENT,),
    )


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
    (pki_dir / "sa.pub").write_bytes(pem.public_pem(sa_key.public_key()))
