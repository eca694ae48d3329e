"""kvault's own certificate authority and the server certificates it issues.

The CA (ECDSA P-256) lives in the data directory: ``ca.pem`` is what clients trust,
``ca-key.pem`` is 0600. Server certificates are issued at start-up (and per SNI name on
demand) and kept only in memory-backed SSL contexts; their key files are written 0600 into
``tls/`` because :mod:`ssl` loads certificates only from files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import ssl
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
_CA_YEARS = 10
_LEAF_DAYS = 397
#: OpenSSL ignores ``*.localhost`` (a wildcard needs two labels after it); it is there for
#: other clients, and SNI gets each ``<labels>.localhost`` a certificate of its own.
_DEV_NAMES = ("localhost", "*.localhost", "dev.localhost", "127.0.0.1", "::1")
#: SNI names that get a certificate of their own: vault service names and dev sub-domains.
_SNI_NAME = re.compile(
    r"[a-z0-9-]{1,63}\.[a-z0-9-]{1,63}\.svc(\.cluster\.local)?|([a-z0-9-]{1,63}\.){1,2}localhost"
)
_SNI_CACHE = 256


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CertificateAuthority:
    """Loads the CA from ``directory`` or creates it there on first start."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, path: Path):
        self.cert = cert
        self.key = key
        self.cert_file = path

    @classmethod
    def load_or_create(
        cls, directory: Path, common_name: str = "kvault CA"
    ) -> CertificateAuthority:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        cert_path, key_path = directory / CA_CERT, directory / CA_KEY
        if cert_path.exists() and key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_path} is not an EC private key")
            return cls(x509.load_pem_x509_certificate(cert_path.read_bytes()), key, cert_path)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365 * _CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        _write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(cert, key, cert_path)

    def issue(
        self, names: Sequence[str], validity: dt.timedelta | None = None
    ) -> tuple[bytes, bytes]:
        """A server certificate for DNS names and IP addresses: (chain PEM, key PEM).
        ``validity`` defaults to 397 days (short ones let rotation be tested)."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + (validity or dt.timedelta(days=_LEAF_DAYS)))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.cert.public_bytes(
            serialization.Encoding.PEM
        )
        pem_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return chain, pem_key


class ServerTLS:
    """The server's SSL context: a default certificate plus one per SNI vault name."""

    def __init__(
        self, ca: CertificateAuthority, directory: Path, names: Sequence[str] = _DEV_NAMES
    ) -> None:
        self.ca = ca
        self._dir = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._names = tuple(names)
        self._lock = threading.Lock()
        self._by_name: OrderedDict[str, ssl.SSLContext] = OrderedDict()
        self.context = self._context("default", self._names)
        self.context.sni_callback = self._sni

    def _context(self, label: str, names: Sequence[str]) -> ssl.SSLContext:
        chain, key = self.ca.issue(names)
        cert_file, key_file = self._dir / f"{label}.pem", self._dir / f"{label}-key.pem"
        _write_private(key_file, key)
        cert_file.write_bytes(chain)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(cert_file, key_file)
        finally:  # loaded into memory: the files have done their job
            key_file.unlink(missing_ok=True)
            cert_file.unlink(missing_ok=True)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def _sni(
        self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext
    ) -> None:
        """Switch to a certificate naming ``name`` when it is a vault host the default one
        does not cover (``V.N.svc``, ``a.b.localhost``); other names get the default."""
        if not name:
            return
        name = name.lower().rstrip(".")
        if name in self._names or not _SNI_NAME.fullmatch(name):
            return
        with self._lock:
            ctx = self._by_name.get(name)
            if ctx is None:
                ctx = self._context(f"sni-{len(self._by_name)}-{name}", [name])
                self._by_name[name] = ctx
                if len(self._by_name) > _SNI_CACHE:
                    self._by_name.popitem(last=False)
            else:
                self._by_name.move_to_end(name)
        sock.context = ctx
