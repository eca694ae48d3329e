"""Key Vault certificate building blocks: policy pieces, certificates and CSRs signed through a
digest signer (as the HSM path signs), merge and import input, the PEM and the legacy PFX.
OpenSSL's CLI checks what it can (chains, CSRs, the PFX's algorithms)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12 as cpkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from kvault.crypto import bundles, der, keys, pem, pkcs12
from kvault.crypto import x509build as xb
from kvault.crypto.keys import OctKey
from kvault.crypto.x509build import CertError, CertSpec, Names

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
YEAR = dt.timedelta(days=365)
SERVER, CLIENT = "1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed")


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def keys_sign_signer(private: Key, alg: str) -> xb.Signer:
    """How the HSM path signs: kvault's key ``sign`` of a digest with an Azure algorithm name."""

    async def sign(digest: bytes) -> bytes:
        return keys.sign(private, alg, digest)

    return sign


def spec(
    subject: str = "CN=leaf.example, O=Org, C=US",
    names: Names | None = None,
    *,
    eku: tuple[str, ...] = (SERVER, CLIENT),
    usage: tuple[str, ...] = ("digitalSignature", "keyEncipherment"),
    ca: bool = False,
    path_length: int | None = None,
) -> CertSpec:
    return CertSpec(
        subject=xb.parse_subject(subject),
        names=Names(dns=("leaf.example",)) if names is None else names,
        ekus=eku,
        key_usage=usage,
        not_before=NOW - dt.timedelta(minutes=10),
        not_after=NOW + YEAR,
        ca=ca,
        path_length=path_length,
    )


async def issue_with(
    s: CertSpec,
    subject: Key,
    issuer: x509.Certificate | None,
    issuer_key: Key,
    *,
    sign: xb.Signer | None = None,
    serial: int | None = None,
) -> x509.Certificate:
    """:func:`xb.issue` for ``subject``'s key by ``issuer_key`` (signing with it by default)."""
    return await xb.issue(
        s,
        subject.public_key(),
        issuer=issuer,
        issuer_public=issuer_key.public_key(),
        sign=sign or xb.software_signer(issuer_key),
        serial=serial,
    )


async def self_signed(key: Key, s: CertSpec | None = None) -> x509.Certificate:
    return await issue_with(s or spec(), key, None, key)


async def make_ca(key: Key, subject: str = "CN=kvault test CA, O=kvault") -> x509.Certificate:
    ca_spec = spec(
        subject,
        Names(),
        eku=(),
        usage=("keyCertSign", "cRLSign", "digitalSignature"),
        ca=True,
        path_length=0,
    )
    return await self_signed(key, ca_spec)


def openssl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, *args],
        input=None if stdin is None else stdin.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def ext(cert: x509.Certificate | x509.CertificateSigningRequest, kind: type) -> x509.Extension[Any]:
    return cert.extensions.get_extension_for_class(kind)


# --- issue ----------------------------------------------------------------------------------

ALL_NAMES = Names(
    dns=("leaf.example", "*.wild.example"),
    emails=("ops@example.com",),
    upns=("svc@corp.example",),
    uris=("spiffe://cluster.local/ns/a/sa/b",),
    ips=("10.0.0.7", "2001:db8::1"),
)


@pytest.mark.parametrize(
    ("kind", "hash_name"),
    [("rsa", "sha256"), ("P-256", "sha256"), ("P-384", "sha384"), ("P-521", "sha512")],
)
async def test_self_signed_carries_key_vaults_extensions(
    kind: str, hash_name: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
    key: Key = rsa_key if kind == "rsa" else ec_key(curves[kind])
    s = spec("CN=leaf.example, O=Org, C=US", ALL_NAMES)
    cert = await issue_with(s, key, None, key, serial=0x1234)
    cert.verify_directly_issued_by(cert)  # the signature verifies with the subject key
    tbs_signature_algorithm = children(read_tlv(cert.tbs_certificate_bytes)[1])[2]
    assert tbs_signature_algorithm == children(read_tlv(der_of(cert))[1])[1]
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == hash_name
    assert cert.version is x509.Version.v3
    assert cert.serial_number == 0x1234
    assert cert.issuer == cert.subject == s.subject
    assert cert.subject.rfc4514_string() == "CN=leaf.example,O=Org,C=US"
    assert cert.not_valid_before_utc == s.not_before
    assert cert.not_valid_after_utc == s.not_after
    assert xb.same_key(cert.public_key(), key.public_key())

    usage = ext(cert, x509.KeyUsage)
    assert usage.critical
    assert xb.usage_names(usage.value) == ("digitalSignature", "keyEncipherment")
    constraints = ext(cert, x509.BasicConstraints)
    assert not constraints.critical and not constraints.value.ca
    assert constraints.value.public_bytes() == b"\x30\x00"  # empty, as Key Vault's
    eku = ext(cert, x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    san = ext(cert, x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.DNSName) == ["leaf.example", "*.wild.example"]
    assert san.value.get_values_for_type(x509.RFC822Name) == ["ops@example.com"]
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/a/sa/b"
    ]
    assert san.value.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("2001:db8::1"),
    ]
    (upn,) = san.value.get_values_for_type(x509.OtherName)
    assert upn.type_id.dotted_string == "1.3.6.1.4.1.311.20.2.3"
    assert upn.value == b"\x0c\x10svc@corp.example"  # UTF8String
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski.digest


async def test_signer_through_keys_sign_interoperates(rsa_key: rsa.RSAPrivateKey) -> None:
    """Signers built on kvault's key ``sign`` (RS256, ES256, ES384), the HSM path's contract."""
    p256, p384 = ec_key(), ec_key(ec.SECP384R1())
    for key, alg in ((rsa_key, "RS256"), (p256, "ES256"), (p384, "ES384")):
        assert xb.signing_alg(key.public_key()) == alg
        cert = await issue_with(spec(), key, None, key, sign=keys_sign_signer(key, alg))
        cert.verify_directly_issued_by(cert)
        request = await xb.csr(spec(), key.public_key(), keys_sign_signer(key, alg))
        assert request.is_signature_valid
    ca = await make_ca(rsa_key)
    leaf = await issue_with(spec(), p384, ca, rsa_key, sign=keys_sign_signer(rsa_key, "RS256"))
    leaf.verify_directly_issued_by(ca)


@needs_openssl
async def test_openssl_verifies_leaves_issued_by_a_ca(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, rsa_key2: rsa.RSAPrivateKey
) -> None:
    p384 = ec_key(ec.SECP384R1())
    for ca_key, leaf_key in ((rsa_key, ec_key()), (p384, rsa_key2)):
        ca = await make_ca(ca_key)
        constraints = ext(ca, x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca
        assert constraints.value.path_length == 0
        leaf = await issue_with(spec(), leaf_key, ca, ca_key)
        assert leaf.issuer == ca.subject
        aki = ext(leaf, x509.AuthorityKeyIdentifier).value.key_identifier
        assert aki == ext(ca, x509.SubjectKeyIdentifier).value.digest
        (tmp_path / "ca.pem").write_bytes(pem.cert_pem(ca))
        (tmp_path / "leaf.pem").write_bytes(pem.cert_pem(leaf))
        done = openssl(
            "verify",
            "-attime",
            str(int((NOW + dt.timedelta(days=1)).timestamp())),
            "-purpose",
            "sslserver",
            "-CAfile",
            str(tmp_path / "ca.pem"),
            str(tmp_path / "leaf.pem"),
        )
        assert done.returncode == 0, done.stderr + done.stdout
        assert done.stdout.strip().endswith(": OK")


async def test_issue_refusals(rsa_key: rsa.RSAPrivateKey) -> None:
    key, other = ec_key(), ec_key()
    with pytest.raises(CertError, match="issuer_public must be the subject key"):
        await issue_with(spec(), key, None, other)
    leaf = await self_signed(key)
    with pytest.raises(CertError, match="not a CA"):
        await issue_with(spec(), other, leaf, key)
    ca = await make_ca(key)
    with pytest.raises(CertError, match="not the issuer certificate's key"):
        await issue_with(spec(), other, ca, other)
    with pytest.raises(CertError, match="path length 0 forbids issuing a CA"):
        await issue_with(spec(ca=True), other, ca, key)
    no_sign = spec("CN=odd CA", Names(), usage=("digitalSignature",), ca=True)
    odd = await self_signed(key, no_sign)
    with pytest.raises(CertError, match="no keyCertSign"):
        await issue_with(spec(), other, odd, key)
    # a signer with the wrong key, or returning the wrong shape
    with pytest.raises(CertError, match="ES256 signature by the issuer key does not verify"):
        await issue_with(spec(), key, None, key, sign=xb.software_signer(other))

    async def der_signature(digest: bytes) -> bytes:
        return key.sign(digest, ec.ECDSA(hashes.SHA256()))

    with pytest.raises(CertError, match="not a raw r\\|\\|s of 64"):
        await issue_with(spec(), key, None, key, sign=der_signature)
    with pytest.raises(CertError, match="RS256 signer returned 64 bytes, not 256"):
        await issue_with(spec(), rsa_key, None, rsa_key, sign=xb.software_signer(key))
    for serial in (0, -1, 1 << 160):
        with pytest.raises(CertError, match="serial"):
            await issue_with(spec(), key, None, key, serial=serial)


async def test_empty_subject_makes_the_san_critical() -> None:
    key = ec_key()
    cert = await self_signed(
        key, CertSpec(x509.Name([]), Names(dns=("a.example",)), (), (), NOW, NOW + YEAR)
    )
    assert len(cert.subject) == 0
    assert ext(cert, x509.SubjectAlternativeName).critical
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.KeyUsage)  # no key usage asked for: no (empty, invalid) extension
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.ExtendedKeyUsage)


# --- CSR ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa", "P-256", "P-384"])
async def test_csr_parses_verifies_and_openssl_accepts_it(
    kind: str, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    key: Key = (
        rsa_key if kind == "rsa" else ec_key(ec.SECP256R1() if kind == "P-256" else ec.SECP384R1())
    )
    s = spec("CN=req.example, OU=Team, O=Org", ALL_NAMES)
    request = await xb.csr(s, key.public_key(), xb.software_signer(key))
    assert request.is_signature_valid
    assert request.subject == s.subject
    assert xb.same_key(request.public_key(), key.public_key())
    assert ext(request, x509.KeyUsage).critical
    assert xb.usage_names(ext(request, x509.KeyUsage).value) == s.key_usage
    assert [o.dotted_string for o in ext(request, x509.ExtendedKeyUsage).value] == [SERVER, CLIENT]
    san = ext(request, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == list(ALL_NAMES.dns)
    assert len(san.get_values_for_type(x509.OtherName)) == 1
    with pytest.raises(x509.ExtensionNotFound):
        ext(request, x509.BasicConstraints)
    if OPENSSL is not None:
        path = tmp_path / "req.der"
        path.write_bytes(request.public_bytes(serialization.Encoding.DER))
        done = openssl("req", "-in", str(path), "-inform", "DER", "-verify", "-noout")
        assert done.returncode == 0, done.stderr
        assert "verify OK" in done.stdout + done.stderr


async def test_csr_without_extensions_and_for_a_ca() -> None:
    key = ec_key()
    bare = CertSpec(xb.parse_subject("CN=bare"), Names(), (), (), NOW, NOW + YEAR)
    request = await xb.csr(bare, key.public_key(), xb.software_signer(key))
    assert request.is_signature_valid and len(request.extensions) == 0
    ca_request = await xb.csr(
        spec(ca=True, path_length=1), key.public_key(), xb.software_signer(key)
    )
    constraints = ext(ca_request, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 1

    async def wrong(digest: bytes) -> bytes:
        return keys.sign(ec_key(), "ES256", digest)

    with pytest.raises(CertError, match="request's key does not verify"):
        await xb.csr(bare, key.public_key(), wrong)


# --- merge ------------------------------------------------------------------------------------


async def test_check_merge_is_lenient_about_encodings(rsa_key: rsa.RSAPrivateKey) -> None:
    key = ec_key()
    ca = await make_ca(rsa_key)
    leaf = await issue_with(spec(), key, ca, rsa_key)
    leaf_der, ca_der = der_of(leaf), der_of(ca)
    b64_text = base64.b64encode(leaf_der)
    wrapped = b"\n".join(b64_text[i : i + 64] for i in range(0, len(b64_text), 64))
    pem_chain = pem.cert_pem(leaf) + pem.cert_pem(ca)
    cases: list[list[bytes]] = [
        [leaf_der],
        [leaf_der, ca_der],
        [b64_text, base64.b64encode(ca_der)],  # base64 text of DER, as the Python SDK test sends
        [wrapped + b"\n"],
        [pem.cert_pem(leaf), pem.cert_pem(ca)],
        [pem_chain],  # one PEM element with the whole chain
        [b"  \n" + pem_chain],
        [base64.b64encode(pem_chain)],  # base64 text of PEM
        [leaf_der, pem.cert_pem(ca)],
    ]
    for case in cases:
        got = bundles.check_merge(case, key.public_key())
        assert got[0] == leaf
        assert got == ([leaf] if len(got) == 1 else [leaf, ca])


async def test_check_merge_refusals(rsa_key: rsa.RSAPrivateKey) -> None:
    key = ec_key()
    ca = await make_ca(rsa_key)
    leaf = await self_signed(key)
    with pytest.raises(CertError, match=r"^x5c\[0\] does not match the certificate request's key$"):
        bundles.check_merge([der_of(ca), der_of(leaf)], key.public_key())
    with pytest.raises(CertError, match="x5c\\[0\\] does not match"):
        bundles.check_merge([der_of(leaf)], ec_key().public_key())
    with pytest.raises(CertError, match="x5c must be a non-empty list"):
        bundles.check_merge([], key.public_key())
    with pytest.raises(CertError, match=r"x5c\[1\] is not a certificate"):
        bundles.check_merge([der_of(leaf), b"hello world"], key.public_key())
    with pytest.raises(CertError, match=r"x5c\[1\] is not a certificate"):
        bundles.check_merge(
            [der_of(leaf), base64.b64encode(b"not a certificate")], key.public_key()
        )
    with pytest.raises(CertError, match=r"x5c\[0\] holds no valid PEM certificate"):
        bundles.check_merge(
            [b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"], key.public_key()
        )
    with pytest.raises(CertError, match=r"x5c\[0\] must be a non-empty certificate"):
        bundles.check_merge([b""], key.public_key())


# --- x5t, PEM bundle ----------------------------------------------------------------------------


async def test_x5t_is_unpadded_base64url_sha1() -> None:
    cert = await self_signed(ec_key())
    thumb = xb.x5t(cert)
    assert len(thumb) == 27 and "=" not in thumb
    assert base64.urlsafe_b64decode(thumb + "=") == hashlib.sha1(der_of(cert)).digest()


async def test_pem_bundle_key_first_then_chain(rsa_key: rsa.RSAPrivateKey) -> None:
    key = ec_key()
    ca = await make_ca(rsa_key)
    leaf = await issue_with(spec(), key, ca, rsa_key)
    text = bundles.pem_bundle(key, [leaf, ca])
    assert text.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert text.count("-----BEGIN CERTIFICATE-----") == 2
    assert x509.load_pem_x509_certificates(text.encode()) == [leaf, ca]
    got_key, chain = bundles.load_import(text.encode(), None)
    assert chain == [leaf, ca] and isinstance(got_key, ec.EllipticCurvePrivateKey)
    assert got_key.private_numbers() == key.private_numbers()
    public_only = bundles.pem_bundle(None, [leaf])
    assert public_only.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE" not in public_only
    with pytest.raises(CertError, match=r"^the private key does not match the certificate$"):
        bundles.pem_bundle(key, [ca])
    with pytest.raises(CertError, match="not oct"):
        bundles.pem_bundle(OctKey(b"k" * 32), [leaf])
    with pytest.raises(CertError, match="at least one certificate"):
        bundles.pem_bundle(key, [])


# --- PFX --------------------------------------------------------------------------------------


def read_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """(tag, contents, end) of the DER element at ``pos`` (an independent reader for tests)."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    return tag, data[pos : pos + length], pos + length


def children(contents: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(contents):
        tag, body, pos = read_tlv(contents, pos)
        out.append((tag, body))
    return out


def pfx_mac_parts(data: bytes) -> tuple[bytes, bytes, bytes, int, bytes]:
    """(authSafe contents, MAC algorithm OID DER, MAC, iterations, salt) of a PFX."""
    _, top, _ = read_tlv(data)
    version, auth_safe_info, mac_data = children(top)
    assert version == (0x02, b"\x03")
    _, explicit = children(auth_safe_info[1])
    (octets,) = children(explicit[1])
    digest_info, salt, iterations = children(mac_data[1])
    algorithm, mac = children(digest_info[1])
    oid = children(algorithm[1])[0][1]
    return octets[1], oid, mac[1], int.from_bytes(iterations[1], "big"), salt[1]


async def test_pfx_loads_with_cryptography(rsa_key: rsa.RSAPrivateKey) -> None:
    key = ec_key()
    ca = await make_ca(rsa_key)
    leaf = await issue_with(spec(), key, ca, rsa_key)
    data = pkcs12.pfx(key, [leaf, ca])
    for password in (b"", None):
        got_key, cert, extra = cpkcs12.load_key_and_certificates(data, password)
        assert isinstance(got_key, ec.EllipticCurvePrivateKey)
        assert got_key.private_numbers() == key.private_numbers()
        assert cert == leaf and extra == [ca]
    loaded = cpkcs12.load_pkcs12(data, b"")
    assert loaded.cert is not None
    assert loaded.cert.friendly_name is None
    auth_safe, oid, mac, iterations, salt = pfx_mac_parts(data)
    assert oid == der.oid("1.3.14.3.2.26")[2:] and iterations == 2048 and len(salt) == 8
    mac_key = pkcs12.derive(pkcs12.EMPTY_PASSWORD, salt, 3, iterations, 20)
    assert hmac.new(mac_key, auth_safe, hashlib.sha1).digest() == mac
    # without the key: certificates only
    _, cert_only, extra_only = cpkcs12.load_key_and_certificates(pkcs12.pfx(None, [leaf]), b"")
    assert cert_only is None and extra_only == [leaf]
    with pytest.raises(CertError, match=r"^the private key does not match the certificate$"):
        pkcs12.pfx(key, [ca])
    with pytest.raises(CertError, match="not oct"):
        pkcs12.pfx(OctKey(b"k" * 32), [leaf])
    with pytest.raises(CertError, match="at least one certificate"):
        pkcs12.pfx(key, [])


@needs_openssl
async def test_pfx_is_legacy_3des_and_sha1_for_openssl(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, rsa_key2: rsa.RSAPrivateKey
) -> None:
    ca = await make_ca(rsa_key)
    leaf = await issue_with(spec(), rsa_key2, ca, rsa_key)
    path = tmp_path / "c.pfx"
    path.write_bytes(pkcs12.pfx(rsa_key2, [leaf, ca]))
    done = openssl("pkcs12", "-in", str(path), "-nodes", "-passin", "pass:")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("-----BEGIN CERTIFICATE-----") == 2
    assert "-----BEGIN PRIVATE KEY-----" in done.stdout
    block = done.stdout[done.stdout.index("-----BEGIN PRIVATE KEY-----") :]
    assert pem.load_private_key(block.encode()).public_key() == rsa_key2.public_key()
    info = openssl("pkcs12", "-info", "-in", str(path), "-nodes", "-passin", "pass:")
    assert info.returncode == 0, info.stderr
    report = info.stdout + info.stderr
    assert "MAC: sha1, Iteration 2048" in report
    assert "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048" in report
    assert "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048" in report
    assert "localKeyID" in report
    wrong = openssl("pkcs12", "-in", str(path), "-nodes", "-passin", "pass:x")
    assert wrong.returncode != 0


@needs_openssl
async def test_empty_password_kdf_matches_openssl(tmp_path: Path) -> None:
    """RFC 7292 B.1: "" is the BMPString terminator (two zero bytes), not zero bytes; an
    OpenSSL-written empty-password PFX's MAC is reproduced with it (and not without)."""
    key = ec_key()
    cert = await self_signed(key)
    (tmp_path / "k.pem").write_bytes(pem.private_pem(key))
    (tmp_path / "c.pem").write_bytes(pem.cert_pem(cert))
    done = openssl(
        "pkcs12",
        "-export",
        "-inkey",
        str(tmp_path / "k.pem"),
        "-in",
        str(tmp_path / "c.pem"),
        "-passout",
        "pass:",
        "-keypbe",
        "PBE-SHA1-3DES",
        "-certpbe",
        "PBE-SHA1-3DES",
        "-macalg",
        "sha1",
        "-out",
        str(tmp_path / "o.pfx"),
    )
    assert done.returncode == 0, done.stderr
    data = (tmp_path / "o.pfx").read_bytes()
    auth_safe, _, mac, iterations, salt = pfx_mac_parts(data)
    for password, matches in ((pkcs12.EMPTY_PASSWORD, True), (b"", False)):
        mac_key = pkcs12.derive(password, salt, 3, iterations, 20)
        assert (hmac.new(mac_key, auth_safe, hashlib.sha1).digest() == mac) is matches
    got_key, chain = bundles.load_import(data, None)
    assert isinstance(got_key, ec.EllipticCurvePrivateKey) and chain == [cert]
    assert xb.same_key(got_key.public_key(), key.public_key())


# --- import -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain(rsa_key: rsa.RSAPrivateKey) -> tuple[ec.EllipticCurvePrivateKey, list[x509.Certificate]]:
    """An EC leaf key and [leaf, intermediate CA, root CA] (the intermediate is EC P-384)."""

    async def build() -> tuple[ec.EllipticCurvePrivateKey, list[x509.Certificate]]:
        root = await self_signed(
            rsa_key, spec("CN=root", Names(), eku=(), usage=("keyCertSign",), ca=True)
        )
        mid_key = ec_key(ec.SECP384R1())
        mid_spec = spec("CN=intermediate", Names(), eku=(), usage=("keyCertSign",), ca=True)
        mid = await issue_with(mid_spec, mid_key, root, rsa_key)
        leaf_key = ec_key()
        leaf = await issue_with(spec(), leaf_key, mid, mid_key)
        return leaf_key, [leaf, mid, root]

    return asyncio.run(build())


ChainFixture = tuple[ec.EllipticCurvePrivateKey, list[x509.Certificate]]


def same_private(a: object, b: Key) -> bool:
    if isinstance(a, rsa.RSAPrivateKey) and isinstance(b, rsa.RSAPrivateKey):
        return a.private_numbers() == b.private_numbers()
    if isinstance(a, ec.EllipticCurvePrivateKey) and isinstance(b, ec.EllipticCurvePrivateKey):
        return a.private_numbers() == b.private_numbers()
    return False


def test_load_import_pem_orders_leaf_first(chain: ChainFixture) -> None:
    key, certs = chain
    leaf, mid, root = certs
    shuffled = pem.cert_pem(root) + pem.private_pem(key) + pem.cert_pem(leaf) + pem.cert_pem(mid)
    got, ordered = bundles.load_import(shuffled, None)
    assert same_private(got, key) and ordered == [leaf, mid, root]
    for fmt in (serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8):
        key_pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        assert (b"EC PRIVATE KEY" in key_pem) is (
            fmt is serialization.PrivateFormat.TraditionalOpenSSL
        )
        got, ordered = bundles.load_import(pem.cert_pem(leaf) + key_pem, "")
        assert same_private(got, key) and ordered == [leaf]
    # an unrelated extra certificate stays, after the chain
    stranger = asyncio.run(self_signed(ec_key()))
    with_stranger = pem.cert_pem(stranger) + shuffled
    got, ordered = bundles.load_import(with_stranger, None)
    assert ordered == [leaf, mid, root, stranger]
    # base64 text of the PEM (the SDK sends base64 of the raw bytes; a second layer is tolerated)
    got, ordered = bundles.load_import(base64.b64encode(shuffled), None)
    assert same_private(got, key) and ordered == [leaf, mid, root]


def test_load_import_rsa_private_key_pem(rsa_key: rsa.RSAPrivateKey) -> None:
    cert = asyncio.run(self_signed(rsa_key))
    key_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    got, ordered = bundles.load_import(key_pem + pem.cert_pem(cert), None)
    assert same_private(got, rsa_key) and ordered == [cert]


def test_load_import_pkcs12(chain: ChainFixture) -> None:
    key, certs = chain
    leaf, mid, root = certs
    ours = pkcs12.pfx(key, certs)
    for password in (None, ""):
        got, ordered = bundles.load_import(ours, password)
        assert same_private(got, key) and ordered == [leaf, mid, root]
    protected = cpkcs12.serialize_key_and_certificates(
        b"friendly", key, leaf, [root, mid], serialization.BestAvailableEncryption(b"s3cret")
    )
    got, ordered = bundles.load_import(protected, "s3cret")
    assert same_private(got, key) and ordered == [leaf, mid, root]
    got, ordered = bundles.load_import(base64.b64encode(protected), "s3cret")
    assert ordered == [leaf, mid, root]
    plain = cpkcs12.serialize_key_and_certificates(
        None, key, leaf, None, serialization.NoEncryption()
    )
    got, ordered = bundles.load_import(plain, None)
    assert same_private(got, key) and ordered == [leaf]


def test_load_import_refusals(chain: ChainFixture) -> None:
    key, certs = chain
    leaf, mid, _ = certs
    protected = cpkcs12.serialize_key_and_certificates(
        None, key, leaf, None, serialization.BestAvailableEncryption(b"s3cret")
    )
    cases: list[tuple[bytes, str | None, str]] = [
        (protected, "wrong", "the PFX password is wrong"),
        (protected, None, "the PFX password is wrong"),
        (pkcs12.pfx(key, [leaf]), "unexpected", "the PFX password is wrong"),
        (pem.cert_pem(leaf) + pem.cert_pem(mid), None, "the PEM holds no private key"),
        (pem.private_pem(key), None, "the PEM holds no certificate"),
        (pem.private_pem(key) * 2 + pem.cert_pem(leaf), None, "the PEM holds more than one"),
        (
            pem.private_pem(key) + pem.cert_pem(mid),
            None,
            "the private key does not match the certificate",
        ),
        (
            pem.private_pem(ec_key()) + pem.cert_pem(leaf),
            None,
            "the private key does not match the certificate",
        ),
        (pkcs12.pfx(None, [leaf]), None, "the PFX holds no private key"),
        (b"just some text", None, "value is neither PEM nor PKCS#12"),
        (b"\x30\x03\x02\x01\x05", None, "value is neither PEM nor PKCS#12"),
        (b"", None, "value is neither PEM nor PKCS#12"),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" + pem.cert_pem(leaf),
            None,
            "the PEM private key is not valid",
        ),
    ]
    for data, password, message in cases:
        with pytest.raises(CertError, match=f"^{message}"):
            bundles.load_import(data, password)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(CertError, match="encrypted and no password"):
        bundles.load_import(encrypted + pem.cert_pem(leaf), None)
    with pytest.raises(CertError, match="the PEM password is wrong"):
        bundles.load_import(encrypted + pem.cert_pem(leaf), "nope")
    got, _ = bundles.load_import(encrypted + pem.cert_pem(leaf), "pw")
    assert same_private(got, key)


def test_load_import_error_messages_carry_no_key_material(chain: ChainFixture) -> None:
    key, certs = chain
    secret_pem = pem.private_pem(key)
    body = b"".join(secret_pem.splitlines()[1:-1])
    for data in (secret_pem + pem.cert_pem(certs[1]), secret_pem):
        with pytest.raises(CertError) as caught:
            bundles.load_import(data, None)
        assert body[:16].decode() not in str(caught.value)


# --- subject, usages, EKUs, names, spec -------------------------------------------------------


def flat(name: x509.Name) -> list[list[tuple[str, str]]]:
    """The RDNs in encoding order as (dotted OID, value)."""
    return [[(a.oid.dotted_string, str(a.value)) for a in rdn] for rdn in name.rdns]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CN=a", [[("2.5.4.3", "a")]]),
        ("cn=MyCert", [[("2.5.4.3", "MyCert")]]),  # names case-insensitive, value kept as sent
        ("CN=a, O=Org, C=US", [[("2.5.4.6", "US")], [("2.5.4.10", "Org")], [("2.5.4.3", "a")]]),
        ("CN=a;O=Org", [[("2.5.4.10", "Org")], [("2.5.4.3", "a")]]),
        ("  CN = a b  ;  ou=x ", [[("2.5.4.11", "x")], [("2.5.4.3", "a b")]]),
        ('CN="Acme, Inc."', [[("2.5.4.3", "Acme, Inc.")]]),
        ('O=" padded "', [[("2.5.4.10", " padded ")]]),
        (r"CN=a\,b\;c\+d", [[("2.5.4.3", "a,b;c+d")]]),
        (r"CN=trailing\ ", [[("2.5.4.3", "trailing ")]]),
        (r"CN=caf\C3\A9", [[("2.5.4.3", "café")]]),
        ("CN=café", [[("2.5.4.3", "café")]]),
        ("CN=a=b", [[("2.5.4.3", "a=b")]]),
        ("CN=a+OU=b", [[("2.5.4.3", "a"), ("2.5.4.11", "b")]]),
        ("E=ops@example.com, DC=example, DC=com",
         [[("0.9.2342.19200300.100.1.25", "com")], [("0.9.2342.19200300.100.1.25", "example")],
          [("1.2.840.113549.1.9.1", "ops@example.com")]]),
        ("L=Redmond, S=WA, ST=WA2", [[("2.5.4.8", "WA2")], [("2.5.4.8", "WA")],
                                     [("2.5.4.7", "Redmond")]]),
        ("OID.2.5.4.3=x, 2.5.4.10=y", [[("2.5.4.10", "y")], [("2.5.4.3", "x")]]),
        ("STREET=1 Main St, T=Boss, G=Ann, SN=Lee, SERIALNUMBER=42, PostalCode=123",
         [[("2.5.4.17", "123")], [("2.5.4.5", "42")], [("2.5.4.4", "Lee")],
          [("2.5.4.42", "Ann")], [("2.5.4.12", "Boss")], [("2.5.4.9", "1 Main St")]]),
    ],
)  # fmt: skip
def test_parse_subject(text: str, expected: list[list[tuple[str, str]]]) -> None:
    name = xb.parse_subject(text)
    assert flat(name) == expected
    assert xb.parse_subject(xb.subject_text(name)) == name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "subject is empty"),
        ("   ", "subject is empty"),
        ("CN", "subject component 'CN' is not NAME=value"),
        ("XX=a", "subject has an unknown attribute 'XX'"),
        ("OID.9.9=a", "subject has an unknown attribute"),
        ("CN=a,,O=b", "subject has an empty component"),
        ("CN=a,", "subject has an empty component"),
        (",CN=a", "subject has an empty component"),
        ("=a", "subject has a value without an attribute name"),
        ("CN=", "subject CN has an empty value"),
        ("CN=a, O=  ", "subject O has an empty value"),
        ("C=USA", "subject C must be a two-letter country code"),
        ('CN="open', "subject CN has an unterminated quoted value"),
        ('CN="a" b', "subject CN has text after its closing quote"),
        ("CN=a\\", "subject ends with a lone backslash"),
        (r"CN=\FF", "subject CN has hex escapes that are not UTF-8"),
        ("E=é@example.com", "subject E must be ASCII"),
        ("CN=" + "x" * 65, "subject CN is not valid"),
        ("CN=a+CN=a", "subject is not valid"),
        ("CN=" + "x" * 5000, "subject is too long"),
    ],
)
def test_parse_subject_refusals(text: str, message: str) -> None:
    with pytest.raises(CertError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        xb.parse_subject(text)


def test_subject_text_quotes_what_needs_it() -> None:
    name = xb.parse_subject('CN="a, b", O=x\\"y, L=Redmond, ST=WA, C=US')
    assert xb.subject_text(name) == 'CN="a, b", O="x\\"y", L=Redmond, S=WA, C=US'


def test_key_usage_names() -> None:
    assert xb.KEY_USAGES == (
        "digitalSignature",
        "nonRepudiation",
        "keyEncipherment",
        "dataEncipherment",
        "keyAgreement",
        "keyCertSign",
        "cRLSign",
        "encipherOnly",
        "decipherOnly",
    )
    usage = xb.key_usage(xb.KEY_USAGES)
    assert usage.digital_signature and usage.content_commitment and usage.crl_sign
    assert usage.encipher_only and usage.decipher_only
    assert xb.usage_names(usage) == xb.KEY_USAGES
    assert xb.usage_names(xb.key_usage(["cRLSign", "cRLSign"])) == ("cRLSign",)
    assert xb.usage_names(xb.key_usage([])) == ()
    with pytest.raises(
        CertError, match=r"^key_usage\[1\] 'DigitalSignature' .*did you mean 'digitalSignature'"
    ):
        xb.key_usage(["keyEncipherment", "DigitalSignature"])
    with pytest.raises(CertError, match=r"^key_usage\[0\] 'sign' is not a key usage \(one of"):
        xb.key_usage(["sign"])
    with pytest.raises(CertError, match="encipherOnly and decipherOnly need keyAgreement"):
        xb.key_usage(["encipherOnly"])


def test_ekus() -> None:
    got = xb.ekus([SERVER, CLIENT, SERVER, "1.3.6.1.4.1.311.10.3.12"])
    assert [o.dotted_string for o in got] == [SERVER, CLIENT, "1.3.6.1.4.1.311.10.3.12"]
    for bad in ["1", "a.b", "1.2.", "1..2", "3.1", "01.2", " 1.2", "serverAuth"]:
        with pytest.raises(CertError, match=r"^ekus\[1\] .* is not a dotted object identifier"):
            xb.ekus([SERVER, bad])
    with pytest.raises(CertError, match=r"^ekus\[0\] '1.40' is not a valid object identifier"):
        xb.ekus(["1.40"])


@pytest.mark.parametrize(
    ("field", "wire", "good", "bad"),
    [
        ("dns", "dns_names",
         ["a", "a.example", "*.example.com", "xn--caf-dma.example", "1.example", "a-b.c"],
         ["", "-a.example", "a-.example", "a..b", "a.example.", "*", "a.*.example", "a_b.example",
          "café.example", "x" * 64 + ".example", "a b"]),
        ("emails", "emails", ["a@example.com", "first.last+tag@sub.example"],
         ["a", "@example.com", "a@", "a..b@example.com", "a@b@c.example", "a b@example.com",
          "a@-bad.example"]),
        ("upns", "upns", ["svc@corp.example", "Ünïcode.user@corp.example"],
         ["svc", "@corp.example", "svc@", "a b@corp.example", "svc@bad_domain"]),
        ("uris", "uris", ["https://a.example/x?y=1", "spiffe://td/ns/x", "urn:uuid:1234"],
         ["a.example", "https://a b", "1http://x", "https:", "https://a.example/<x>",
          "https://café.example"]),
        ("ips", "ipAddresses", ["10.0.0.1", "::1", "2001:db8::2"],
         ["10.0.0", "10.0.0.1/24", "300.1.1.1", "localhost", "010.0.0.1"]),
    ],
)  # fmt: skip
def test_names_validation(field: str, wire: str, good: list[str], bad: list[str]) -> None:
    names = Names(**{field: good})  # type: ignore[arg-type]
    assert getattr(names, field) == tuple(good)
    assert len(names.general_names()) == len(good)
    for value in bad:
        with pytest.raises(CertError, match=rf"^sans\.{wire}\[1\] "):
            Names(**{field: (good[0], value)})
    with pytest.raises(CertError, match=rf"^sans\.{wire} must be a list of strings"):
        Names(**{field: good[0]})  # type: ignore[arg-type]
    with pytest.raises(CertError, match=rf"^sans\.{wire}\[0\] must be a string"):
        Names(**{field: [7]})  # type: ignore[arg-type]


def test_cert_spec_validation() -> None:
    subject = xb.parse_subject("CN=a")
    kwargs: dict[str, object] = dict(
        subject=subject,
        names=Names(),
        ekus=[SERVER],
        key_usage=["digitalSignature"],
        not_before=NOW,
        not_after=NOW + YEAR,
    )
    made = CertSpec(**kwargs)  # type: ignore[arg-type]
    assert made.ekus == (SERVER,) and made.key_usage == ("digitalSignature",)
    refusals: list[tuple[dict[str, object], str]] = [
        ({"ekus": ["x"]}, r"ekus\[0\]"),
        ({"key_usage": ["nope"]}, r"key_usage\[0\]"),
        ({"subject": x509.Name([])}, "x509_props needs a subject or subject alternative names"),
        ({"not_before": dt.datetime(2026, 1, 1)}, "not_before must be a datetime with a time zone"),
        ({"not_after": NOW}, "not_after must be later than not_before"),
        ({"path_length": 1}, "basic_constraints.path_length is only valid for a CA"),
        ({"path_length": -1, "ca": True}, "basic_constraints.path_length must be 0 or more"),
    ]
    for change, message in refusals:
        with pytest.raises(CertError, match=message):
            CertSpec(**{**kwargs, **change})  # type: ignore[arg-type]


def test_signing_alg() -> None:
    assert xb.signing_alg(ec_key(ec.SECP521R1()).public_key()) == "ES512"
    assert xb.signing_alg(ec_key(ec.SECP256K1()).public_key()) == "ES256K"
    with pytest.raises(CertError, match="curve secp224r1 is not supported"):
        xb.signing_alg(ec_key(ec.SECP224R1()).public_key())
    with pytest.raises(CertError, match="must be an RSA or EC public key"):
        xb.signing_alg(ec_key())  # type: ignore[arg-type]


def test_der_writer() -> None:
    assert der.integer(0) == b"\x02\x01\x00"
    assert der.integer(128) == b"\x02\x02\x00\x80"
    assert der.integer(-1) == b"\x02\x01\xff"
    assert der.oid("1.2.840.113549.1.1.11") == bytes.fromhex("06092a864886f70d01010b")
    assert der.octets(b"x" * 200)[:3] == b"\x04\x81\xc8"
    assert der.octets(b"x" * 300)[:4] == b"\x04\x82\x01\x2c"
    assert der.set_of(b"\x02\x01\x02", b"\x02\x01\x01") == b"\x31\x06\x02\x01\x01\x02\x01\x02"
    assert der.bmp("a") == b"\x1e\x02\x00a"
    for bad in ("1", "3.1", "1.40", "x.y"):
        with pytest.raises(ValueError):
            der.oid(bad)
