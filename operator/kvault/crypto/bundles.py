"""Certificates in and out of Key Vault: merge input, import input, and the PEM secret value.

Merge and import take what the SDKs and the az CLI send, leniently (DER, base64 text of DER,
PEM, PKCS#12); the PEM bundle is what a certificate-backed secret holds (PKCS#8 key first). The
PFX lives in :mod:`kvault.crypto.pkcs12`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from kvault.crypto import jwk as _jwk
from kvault.crypto import pem
from kvault.crypto.keys import OctKey, Private, Public
from kvault.crypto.x509build import CertError, same_key

_PEM = b"-----BEGIN"
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/=\s]+")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_KEY_LABELS = frozenset(
    {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"}
)
_MISMATCH = "the private key does not match the certificate"
_CURVES = frozenset(curve().name for curve in _jwk.CURVES.values())


def _unbase64(data: bytes) -> bytes | None:
    """The bytes a base64 text stands for, or None when ``data`` is not base64 text."""
    if not _BASE64_TEXT.fullmatch(data):
        return None
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _parse_certificates(data: bytes, where: str, *, nested: bool = False) -> list[x509.Certificate]:
    if data.lstrip().startswith(_PEM):
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError:
            raise CertError(f"{where} holds no valid PEM certificate") from None
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    decoded = None if nested else _unbase64(data)
    if decoded:
        return _parse_certificates(decoded, where, nested=True)
    raise CertError(f"{where} is not a certificate (DER, base64 of DER, or PEM)")


def check_merge(leaf_and_chain: Sequence[bytes], expected_public: Public) -> list[x509.Certificate]:
    """The certificates of a merge's ``x5c``, leaf first, in the order sent.

    Each element may be DER, base64 text of DER (``MII...``) or PEM text with one or more
    certificates, as real Key Vault accepts them (the SDKs send all three). The first
    certificate must be for ``expected_public``, the pending request's key.
    """
    if isinstance(leaf_and_chain, bytes | str) or not leaf_and_chain:
        raise CertError("x5c must be a non-empty list of certificates")
    certs: list[x509.Certificate] = []
    for index, item in enumerate(leaf_and_chain):
        if not isinstance(item, bytes) or not item:
            raise CertError(f"x5c[{index}] must be a non-empty certificate")
        certs.extend(_parse_certificates(item, f"x5c[{index}]"))
    if not same_key(certs[0].public_key(), expected_public):
        raise CertError("x5c[0] does not match the certificate request's key")
    return certs


def _asymmetric(key: Private) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if isinstance(key, OctKey):
        raise CertError("a certificate's key must be RSA or EC, not oct")
    return key


def pem_bundle(key: Private | None, chain: Sequence[x509.Certificate]) -> str:
    """The PEM secret value: the PKCS#8 ``PRIVATE KEY`` first (when given), then the
    certificates, leaf first. The key must be the leaf's."""
    if not chain:
        raise CertError("a PEM bundle needs at least one certificate")
    parts = []
    if key is not None:
        private = _asymmetric(key)
        if not same_key(private.public_key(), chain[0].public_key()):
            raise CertError(_MISMATCH)
        parts.append(pem.private_pem(private))
    parts.extend(pem.cert_pem(cert) for cert in chain)
    return b"".join(parts).decode("ascii")


# --- import -------------------------------------------------------------------------------


def _checked_key(key: object) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in _CURVES:
            raise CertError(f"the private key's curve {key.curve.name} is not supported")
        return key
    raise CertError("the private key is not an RSA or EC key")


def _leaf_first(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, certs: list[x509.Certificate]
) -> list[x509.Certificate]:
    """The certificate of ``key`` first, then its issuers as far as they are present, then
    the rest in the order given."""
    public = key.public_key()
    leaf = next((c for c in certs if same_key(c.public_key(), public)), None)
    if leaf is None:
        raise CertError(_MISMATCH)
    rest = list(certs)
    rest.remove(leaf)
    ordered = [leaf]
    while rest and ordered[-1].issuer != ordered[-1].subject:
        parent = next((c for c in rest if c.subject == ordered[-1].issuer), None)
        if parent is None:
            break
        rest.remove(parent)
        ordered.append(parent)
    return ordered + rest


def _is_pkcs12(data: bytes) -> bool:
    """Whether ``data`` starts like a PFX: ``SEQUENCE { INTEGER 3, SEQUENCE ...``."""
    if len(data) < 2 or data[0] != 0x30:
        return False
    header = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    return data[header : header + 4] == b"\x02\x01\x03\x30"


def _from_pkcs12(data: bytes, password: str | None) -> tuple[Private, list[x509.Certificate]]:
    secret = password.encode("utf-8") if password else None
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, secret)
    except ValueError:
        raise CertError("the PFX password is wrong") from None
    if key is None:
        raise CertError("the PFX holds no private key")
    certs = ([cert] if cert is not None else []) + list(extra)
    if not certs:
        raise CertError("the PFX holds no certificate")
    private = _checked_key(key)
    return private, _leaf_first(private, certs)


def _pem_key(block: bytes, password: str | None) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    encrypted = b"ENCRYPTED" in block
    if encrypted and not password:
        raise CertError("the PEM private key is encrypted and no password was given")
    secret = password.encode("utf-8") if encrypted and password else None
    try:
        key = serialization.load_pem_private_key(block, secret)
    except (ValueError, TypeError):
        what = "the PEM password is wrong" if encrypted else "the PEM private key is not valid"
        raise CertError(what) from None
    return _checked_key(key)


def _from_pem(data: bytes, password: str | None) -> tuple[Private, list[x509.Certificate]]:
    keys: list[bytes] = []
    certs: list[x509.Certificate] = []
    for match in _PEM_BLOCK.finditer(data):
        label = match.group(1)
        if label in _KEY_LABELS:
            keys.append(match.group(0))
        elif label == b"CERTIFICATE":
            try:
                certs.append(x509.load_pem_x509_certificate(match.group(0)))
            except ValueError:
                raise CertError(f"the PEM's certificate {len(certs)} is not valid") from None
    if not keys:
        raise CertError("the PEM holds no private key")
    if len(keys) > 1:
        raise CertError("the PEM holds more than one private key")
    if not certs:
        raise CertError("the PEM holds no certificate")
    private = _pem_key(keys[0], password)
    return private, _leaf_first(private, certs)


def load_import(data: bytes, password: str | None) -> tuple[Private, list[x509.Certificate]]:
    """The key and certificates of an import's ``value`` (already base64-decoded once): PEM
    (PKCS#8, or PKCS#1/SEC1 ``RSA``/``EC PRIVATE KEY``, plus the certificates) or PKCS#12
    (``password`` None or "" for none). The chain comes back leaf (the key's certificate) first;
    base64 text of either is accepted too."""
    for candidate in (data, _unbase64(data)):
        if not candidate:
            continue
        if candidate.lstrip().startswith(_PEM):
            return _from_pem(candidate, password)
        if _is_pkcs12(candidate):
            return _from_pkcs12(candidate, password)
    raise CertError("value is neither PEM nor PKCS#12")
