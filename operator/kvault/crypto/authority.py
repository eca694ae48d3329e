"""kvault's own certificate authority, kept in a directory, and the leaves it issues.

The CA (ECDSA P-256) lives in the data directory: ``ca.pem`` is what clients trust,
``ca-key.pem`` is 0600. The data plane's TLS and the webhook both issue from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from kvault.crypto import certs, pem

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CA_VALIDITY = dt.timedelta(days=365 * 10)
LEAF_VALIDITY = dt.timedelta(days=397)


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
            key = pem.load_private_key(key_path.read_bytes())
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_path} is not an EC private key")
            return cls(pem.load_cert(cert_path.read_bytes()), key, cert_path)
        cert, key = certs.self_signed_ca(common_name, CA_VALIDITY, path_length=0)
        pem.write_private(key_path, pem.private_pem(key))
        cert_path.write_bytes(pem.cert_pem(cert))
        return cls(cert, key, cert_path)

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes, path: Path) -> CertificateAuthority:
        """A CA held elsewhere (sealed in storage); ``path`` is where its certificate is
        published for clients (only the certificate: the key stays in memory)."""
        key = pem.load_private_key(key_pem)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the stored CA key is not an EC private key")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_bytes(cert_pem)
        return cls(pem.load_cert(cert_pem), key, path)

    def pems(self) -> tuple[bytes, bytes]:
        """(certificate PEM, private key PEM), to be sealed."""
        return pem.cert_pem(self.cert), pem.private_pem(self.key)

    def issue(
        self, names: Sequence[str], validity: dt.timedelta | None = None
    ) -> tuple[bytes, bytes]:
        """A server certificate for DNS names and IP addresses: (chain PEM, key PEM).
        ``validity`` defaults to 397 days (short ones let rotation be tested)."""
        cert, key = certs.issue(
            self.cert, self.key, names[0], validity or LEAF_VALIDITY, names=names
        )
        return pem.cert_pem(cert) + pem.cert_pem(self.cert), pem.private_pem(key)
