"""The shared X.509 and JWK helpers: real chains verified by OpenSSL, round trips."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kvault.crypto import certs, jwk, pem
from kvault.crypto.authority import CA_KEY, CertificateAuthority

DAY = dt.timedelta(days=1)


def test_leaf_carries_sans_usage_validity_and_chains_to_the_ca() -> None:
    ca, ca_key = certs.self_signed_ca("test CA", 10 * DAY, path_length=0)
    leaf, key = certs.issue(
        ca,
        ca_key,
        "kubelet",
        DAY,
        orgs=("system:nodes",),
        names=("node-a", "10.0.0.7", "::1"),
        usages=(certs.CLIENT,),
    )
    leaf.verify_directly_issued_by(ca)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["node-a"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.7", "::1"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "system:nodes"
    )
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime == DAY + certs.BACKDATE
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert key.public_key() == leaf.public_key()


def test_pem_and_der_round_trip(tmp_path: Path) -> None:
    ca, key = certs.self_signed_ca("x", DAY)
    assert pem.load_cert(pem.cert_pem(ca)) == ca
    assert pem.load_cert(pem.cert_der(ca)) == ca
    loaded = pem.load_private_key(pem.private_pem(key))
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers() == key.private_numbers()
    path = tmp_path / "k.pem"
    path.write_bytes(b"")
    os.chmod(path, 0o644)
    pem.write_private(path, pem.private_pem(key))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_authority_persists_and_its_leaves_serve_tls(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path)
    again = CertificateAuthority.load_or_create(tmp_path)
    assert again.cert == first.cert
    assert stat.S_IMODE((tmp_path / CA_KEY).stat().st_mode) == 0o600
    chain, key = first.issue(["vault.ns.svc", "127.0.0.1"])
    cert_file, key_file = tmp_path / "leaf.pem", tmp_path / "leaf-key.pem"
    cert_file.write_bytes(chain)
    pem.write_private(key_file, key)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)  # OpenSSL accepts the pair
    leaf = x509.load_pem_x509_certificate(chain)
    leaf.verify_directly_issued_by(first.cert)


@pytest.mark.parametrize(
    "key",
    [
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        ec.generate_private_key(ec.SECP384R1()).public_key(),
        ec.generate_private_key(ec.SECP521R1()).public_key(),
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(),
    ],
    ids=["P-256", "P-384", "P-521", "RSA-2048"],
)
def test_jwk_round_trip(key: jwk.PublicKey) -> None:
    doc = jwk.public_jwk(key)
    assert jwk.public_key(doc).public_numbers() == key.public_numbers()
    members = {"EC": ["crv", "kty", "x", "y"], "RSA": ["e", "kty", "n"]}[doc["kty"]]
    canonical = json.dumps({k: doc[k] for k in members}, separators=(",", ":"))
    assert jwk.thumbprint(doc) == jwk.b64url(hashlib.sha256(canonical.encode()).digest())


def test_ec_coordinates_have_fixed_length() -> None:
    doc = jwk.public_jwk(ec.generate_private_key(ec.SECP521R1()).public_key())
    assert len(jwk.unb64url(doc["x"])) == len(jwk.unb64url(doc["y"])) == 66


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"kty": "oct", "k": "AA"}, "unsupported JWK kty"),
        ({"kty": "EC", "crv": "P-192", "x": "AA", "y": "AA"}, "unsupported JWK crv"),
        ({"kty": "RSA", "n": "AA"}, "lacks member 'e'"),
    ],
)
def test_bad_jwk_is_refused_by_name(doc: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        jwk.public_key(doc)
