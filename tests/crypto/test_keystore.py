"""PKCS#12 keystores and truststores under a password (``kvault.crypto.keystore``): what they
hold, that only the password opens them, the algorithms of each profile (read back from the
file, and by ``openssl pkcs12 -info`` when it is installed), and ``holds``, which lets a
caller keep an existing file of the same content."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from kvault.crypto import keystore as p12
from kvault.crypto.pkcs12 import pfx as legacy_pfx
from kvault.crypto.x509build import same_key

PASSWORD = b"correct horse battery staple"
JAVA_TRUSTED = "2.16.840.1.113894.746875.1.1"


def _cert(
    subject: str,
    key: p12.Private,
    issuer: tuple[x509.Certificate, p12.Private] | None = None,
    *,
    ca: bool = False,
) -> x509.Certificate:
    """A certificate of ``key``, signed by ``issuer`` (its certificate and key) or itself."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = (name, key) if issuer is None else (issuer[0].subject, issuer[1])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def pki() -> tuple[p12.Private, list[x509.Certificate], x509.Certificate]:
    """(leaf key, [leaf, intermediate, root], root)."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    mid_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = _cert("root", root_key, ca=True)
    mid = _cert("intermediate", mid_key, (root, root_key), ca=True)
    leaf = _cert("web.example", leaf_key, (mid, mid_key))
    return leaf_key, [leaf, mid, root], root


def _der(key: object) -> bytes:
    assert isinstance(key, p12.Private)
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize("profile", p12.PROFILES)
def test_a_keystore_holds_the_key_and_the_chain_under_the_password(
    pki: tuple[p12.Private, list[x509.Certificate], x509.Certificate], profile: str
) -> None:
    key, chain, _ = pki
    data = p12.keystore(key, chain, PASSWORD, profile, b"web")
    found_key, leaf, extra = pkcs12.load_key_and_certificates(data, PASSWORD)
    assert leaf == chain[0] and extra == chain[1:]  # the leaf, then its chain in order
    assert found_key is not None and _der(found_key) == _der(key)
    assert same_key(found_key.public_key(), leaf.public_key())  # type: ignore[arg-type]
    loaded = pkcs12.load_pkcs12(data, PASSWORD)
    assert loaded.cert is not None and loaded.cert.friendly_name == b"web"
    for wrong in (b"", b"wrong", PASSWORD + b" "):
        with pytest.raises(ValueError):
            pkcs12.load_key_and_certificates(data, wrong)
    assert PASSWORD not in data


@pytest.mark.parametrize("profile", p12.PROFILES)
def test_a_truststore_holds_only_the_ca(
    pki: tuple[p12.Private, list[x509.Certificate], x509.Certificate], profile: str
) -> None:
    _, _, root = pki
    data = p12.truststore([root], PASSWORD, profile)
    loaded = pkcs12.load_pkcs12(data, PASSWORD)
    assert loaded.key is None and loaded.cert is None
    assert [(c.certificate, c.friendly_name) for c in loaded.additional_certs] == [(root, b"ca")]
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(data, b"wrong")


@pytest.mark.parametrize(
    ("profile", "pbe", "mac"),
    [
        ("Modern2023", "PBES2/PBKDF2-HMAC-SHA256/AES-256-CBC", "SHA256"),
        ("LegacyDES", "PBE-SHA1-3DES", "SHA1"),
    ],
)
def test_the_profile_chooses_the_algorithms(
    pki: tuple[p12.Private, list[x509.Certificate], x509.Certificate],
    profile: str,
    pbe: str,
    mac: str,
) -> None:
    key, chain, root = pki
    store = p12.protection(p12.keystore(key, chain, PASSWORD, profile))
    assert store == p12.Protection(mac, (pbe,), (pbe,)) == p12.expected(profile, with_key=True)
    trust = p12.protection(p12.truststore([root], PASSWORD, profile))
    assert trust == p12.Protection(mac, (pbe,), ()) == p12.expected(profile, with_key=False)


def test_protection_reads_another_encoder_too(
    pki: tuple[p12.Private, list[x509.Certificate], x509.Certificate],
) -> None:
    """kvault's own empty-password PFX (a certificate's secret): 3DES and a SHA-1 MAC."""
    key, chain, _ = pki
    assert p12.protection(legacy_pfx(key, chain)) == p12.Protection(
        "SHA1", ("PBE-SHA1-3DES",), ("PBE-SHA1-3DES",)
    )
    unencrypted = pkcs12.serialize_key_and_certificates(
        None, None, chain[0], None, serialization.NoEncryption()
    )
    assert p12.protection(unencrypted).certificates == ("none",)
    for junk in (b"", b"\x30\x03abc", b"not pkcs12", legacy_pfx(key, chain)[:-7]):
        with pytest.raises(ValueError):
            p12.protection(junk)


def _openssl_info(tmp_path: Path, data: bytes, password: bytes) -> str:
    path = tmp_path / "store.p12"
    path.write_bytes(data)
    done = subprocess.run(
        ["openssl", "pkcs12", "-info", "-nokeys", "-in", str(path), "-passin", "stdin"],
        input=password + b"\n",
        capture_output=True,
        check=True,
        timeout=30,
    )
    return (done.stdout + done.stderr).decode()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize(
    ("profile", "words"),
    [
        (
            "Modern2023",
            [
                "MAC: sha256, Iteration 2048",
                "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF "
                "hmacWithSHA256",
                "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256",
            ],
        ),
        (
            "LegacyDES",
            [
                "MAC: sha1, Iteration 2048",
                "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048",
                "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048",
            ],
        ),
    ],
)
def test_openssl_reads_each_profile(
    pki: tuple[p12.Private, list[x509.Certificate], x509.Certificate],
    tmp_path: Path,
    profile: str,
    words: list[str],
) -> None:
    key, chain, root = pki
    info = _openssl_info(tmp_path, p12.keystore(key, chain, PASSWORD, profile, b"web"), PASSWORD)
    for word in words:
        assert word in info
    assert info.count("-----BEGIN CERTIFICATE-----") == 3
    assert "friendlyName: web" in info
    trust = _openssl_info(tmp_path, p12.truststore([root], PASSWORD, profile), PASSWORD)
    assert words[0] in trust and words[1] in trust and "Keybag" not in trust
    assert trust.count("-----BEGIN CERTIFICATE-----") == 1
    assert JAVA_TRUSTED in trust  # Java loads it as a trusted certificate entry
    with pytest.raises(subprocess.CalledProcessError):
        _openssl_info(tmp_path, p12.truststore([root], PASSWORD, profile), b"wrong")


def test_holds_says_whether_existing_bytes_have_this_content(
    pki: tuple[p12.Private, list[x509.Certificate], x509.Certificate],
) -> None:
    key, chain, root = pki
    data = p12.keystore(key, chain, PASSWORD, "Modern2023", b"web")
    # Random salts: the same inputs never encode alike, hence holds().
    assert data != p12.keystore(key, chain, PASSWORD, "Modern2023", b"web")
    same = {"key": key, "certificates": chain, "names": [b"web", None, None]}
    assert p12.holds(data, PASSWORD, "Modern2023", **same)  # type: ignore[arg-type]
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for password, profile, changes in (
        (b"other", "Modern2023", {}),
        (PASSWORD, "LegacyDES", {}),
        (PASSWORD, "Modern2023", {"key": other_key}),
        (PASSWORD, "Modern2023", {"key": None}),
        (PASSWORD, "Modern2023", {"certificates": chain[:2]}),
        (PASSWORD, "Modern2023", {"certificates": [chain[0], chain[2], chain[1]]}),
        (PASSWORD, "Modern2023", {"names": [b"other", None, None]}),
    ):
        assert not p12.holds(data, password, profile, **{**same, **changes})  # type: ignore[arg-type]
    for junk in (b"", b"junk", data[:-1]):
        assert not p12.holds(junk, PASSWORD, "Modern2023", **same)  # type: ignore[arg-type]
    trust = p12.truststore([root], PASSWORD, "LegacyDES")
    assert p12.holds(trust, PASSWORD, "LegacyDES", key=None, certificates=[root], names=[b"ca"])
    assert not p12.holds(trust, PASSWORD, "Modern2023", key=None, certificates=[root])
    assert not p12.holds(trust, PASSWORD, "LegacyDES", key=key, certificates=[root])
