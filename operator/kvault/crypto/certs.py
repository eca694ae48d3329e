"""Build X.509 certificates: a self-signed CA and leaves with SANs, key usages and validity.

ECDSA P-256 by default: generation is instant, which matters for per-SNI certificates and
for test suites that build a CA per test.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey
SERVER = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH
#: Certificates start this far in the past, so a peer whose clock lags still accepts them.
BACKDATE = dt.timedelta(minutes=5)


def new_key() -> Key:
    """A fresh P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def name(cn: str, orgs: Sequence[str] = ()) -> x509.Name:
    """Subject ``O=<org>...,CN=<cn>`` (Kubernetes reads groups from O, the user from CN)."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def general_names(names: Sequence[str]) -> list[x509.GeneralName]:
    """SAN entries: IP addresses where the text is one, DNS names otherwise."""
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def self_signed_ca(
    cn: str,
    validity: dt.timedelta,
    *,
    path_length: int | None = None,
    names: Sequence[str] = (),
    key: Key | None = None,
) -> tuple[x509.Certificate, Key]:
    """A self-signed CA valid for ``validity``; ``names`` adds SANs, so that the CA can
    also serve TLS itself (a one-certificate test server)."""
    key = key or new_key()
    subject = name(cn)
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(general_names(names)), critical=False
        )
    return builder.sign(key, hashes.SHA256()), key


def issue(
    ca: x509.Certificate,
    ca_key: Key,
    cn: str,
    validity: dt.timedelta,
    *,
    orgs: Sequence[str] = (),
    names: Sequence[str] = (),
    usages: Sequence[x509.ObjectIdentifier] = (SERVER,),
    key: Key | None = None,
) -> tuple[x509.Certificate, Key]:
    """A leaf certificate for ``cn`` (and SANs ``names``) with extended key ``usages``,
    signed by ``ca``; its key is fresh unless given."""
    key = key or new_key()
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(cn[:64], orgs))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(general_names(names)), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()), key
