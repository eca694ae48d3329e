"""PKCS#12 keystores and truststores under a password, as cert-manager writes them
(``keystore.p12``: the private key with the leaf and its chain; ``truststore.p12``: CA
certificates only, marked trusted for Java), and the algorithms a PKCS#12 file was made with.

``cryptography`` makes them (``PrivateFormat.PKCS12.encryption_builder()``), in one of
cert-manager's profiles, with its names:

- ``Modern2023``: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for the certificates and the key,
  an HMAC-SHA256 MAC. OpenSSL 3, Java 8u301+ / 11.0.12+ and Go's go-pkcs12 (sslmate) read
  it.
- ``LegacyDES``: ``pbeWithSHAAnd3-KeyTripleDES-CBC`` for both and an HMAC-SHA1 MAC, for
  older readers (Java before 8u301, ``golang.org/x/crypto/pkcs12``).

cert-manager's third profile, ``LegacyRC2`` (40-bit RC2 certificates), is not offered:
``cryptography`` cannot write RC2 (its ``PBES`` has 3DES and AES-256 only), and OpenSSL 3 reads
RC2 only with its legacy provider. Both profiles use 2048 iterations for the PBE and the MAC,
as cert-manager (go-pkcs12) and ``openssl pkcs12 -export`` do.

A PKCS#12 file is salted at random, so the same inputs never give the same bytes twice:
:func:`holds` tells whether existing bytes already hold given content under a password and a
profile (:func:`protection` reads the algorithms from the file's clear structure), so a
caller can keep them instead of writing an equal file that differs in every byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

Private = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

ITERATIONS = 2048
MODERN, LEGACY_DES = "Modern2023", "LegacyDES"
#: Profile name -> (PBE of the certificates and the key, hash of the MAC).
_PROFILES: Mapping[str, tuple[pkcs12.PBES, hashes.HashAlgorithm]] = {
    MODERN: (pkcs12.PBES.PBESv2SHA256AndAES256CBC, hashes.SHA256()),
    LEGACY_DES: (pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC, hashes.SHA1()),
}
#: The profiles offered, the default first.
PROFILES = tuple(_PROFILES)

_SEQUENCE, _OCTETS, _OID, _CONTEXT_0 = 0x30, 0x04, 0x06, 0xA0
_DATA = "1.2.840.113549.1.7.1"
_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
_SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
_CERT_BAG = "1.2.840.113549.1.12.10.1.3"
_PBES2 = "1.2.840.113549.1.5.13"
_HMAC_SHA1 = "1.2.840.113549.2.7"
#: Names of the algorithms :func:`protection` reports (others are shown dotted).
_NAMES = {
    "1.3.14.3.2.26": "SHA1",
    "2.16.840.1.101.3.4.2.1": "SHA256",
    "2.16.840.1.101.3.4.2.2": "SHA384",
    "2.16.840.1.101.3.4.2.3": "SHA512",
    "1.2.840.113549.1.12.1.3": "PBE-SHA1-3DES",
    "1.2.840.113549.1.12.1.6": "PBE-SHA1-RC2-40",
    "1.2.840.113549.1.5.12": "PBKDF2",
    _HMAC_SHA1: "HMAC-SHA1",
    "1.2.840.113549.2.9": "HMAC-SHA256",
    "2.16.840.1.101.3.4.1.2": "AES-128-CBC",
    "2.16.840.1.101.3.4.1.42": "AES-256-CBC",
}


@dataclass(frozen=True, slots=True)
class Protection:
    """How a PKCS#12 file is protected: its MAC's hash, the encryption of each encrypted
    part (the certificates; ``"none"`` for a part in the clear) and of each shrouded key."""

    mac: str
    certificates: tuple[str, ...]
    keys: tuple[str, ...]


def expected(profile: str, *, with_key: bool) -> Protection:
    """The :class:`Protection` of what :func:`keystore` (``with_key``) or :func:`truststore`
    writes in ``profile``."""
    pbe = "PBES2/PBKDF2-HMAC-SHA256/AES-256-CBC" if profile == MODERN else "PBE-SHA1-3DES"
    mac = "SHA256" if profile == MODERN else "SHA1"
    return Protection(mac, (pbe,), (pbe,) if with_key else ())


def _encryption(password: bytes, profile: str) -> serialization.KeySerializationEncryption:
    pbe, mac = _PROFILES[profile]  # KeyError: not a profile (callers check first)
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(ITERATIONS)
        .key_cert_algorithm(pbe)
        .hmac_hash(mac)
        .build(password)
    )


def keystore(
    key: Private,
    chain: Sequence[x509.Certificate],
    password: bytes,
    profile: str = MODERN,
    name: bytes | None = None,
) -> bytes:
    """PKCS#12 of ``key`` and ``chain`` (the leaf, which must be ``key``'s, then its chain),
    encrypted with ``password`` (non-empty) in ``profile``; ``name`` is the friendly name of
    the key and the leaf (Java's alias)."""
    leaf, *rest = chain
    return pkcs12.serialize_key_and_certificates(
        name, key, leaf, rest or None, _encryption(password, profile)
    )


def trust_names(count: int) -> list[bytes]:
    """The friendly names (Java's aliases) of a truststore's certificates: ``ca``, then
    ``ca-1``, ``ca-2``..."""
    return [b"ca" if i == 0 else f"ca-{i}".encode() for i in range(count)]


def truststore(cas: Sequence[x509.Certificate], password: bytes, profile: str = MODERN) -> bytes:
    """PKCS#12 of the certificates ``cas`` only, each marked trusted for any purpose (the
    attribute Java's ``KeyStore`` needs to load them as trusted entries, as go-pkcs12's
    ``EncodeTrustStore`` sets it), named by :func:`trust_names`."""
    certs = [
        pkcs12.PKCS12Certificate(c, n) for c, n in zip(cas, trust_names(len(cas)), strict=True)
    ]
    return pkcs12.serialize_java_truststore(certs, _encryption(password, profile))


def _private_der(key: object) -> bytes | None:
    if not isinstance(key, Private):
        return None
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def holds(
    data: bytes,
    password: bytes,
    profile: str,
    *,
    key: Private | None,
    certificates: Sequence[x509.Certificate],
    names: Sequence[bytes | None] = (),
) -> bool:
    """Whether ``data`` is a PKCS#12 file that opens with ``password``, was made in
    ``profile`` and holds exactly ``key`` (``None``: no key, a truststore) and
    ``certificates`` in this order, with friendly ``names`` when given (one per certificate).
    Anything else, including bytes that are not PKCS#12 at all, is False."""
    try:
        found = pkcs12.load_pkcs12(data, password)
        made = protection(data)
    except ValueError:
        return False
    if made != expected(profile, with_key=key is not None):
        return False
    if (found.key is None) != (key is None) or (
        key is not None and _private_der(found.key) != _private_der(key)
    ):
        return False
    entries = ([found.cert] if found.cert is not None else []) + list(found.additional_certs)
    if [e.certificate for e in entries] != list(certificates):
        return False
    return not names or [e.friendly_name for e in entries] == list(names)


# --- reading the clear structure (RFC 7292) -------------------------------------------------


class _Malformed(ValueError):
    """Not the DER of a PKCS#12 file."""


def _element(data: bytes, at: int = 0) -> tuple[int, bytes, int]:
    """(tag, contents, end) of the DER element at ``at`` (definite lengths only)."""
    if at + 2 > len(data):
        raise _Malformed("truncated")
    tag, first = data[at], data[at + 1]
    at += 2
    size = first
    if first >= 0x80:
        count = first & 0x7F
        if not 0 < count <= 4 or at + count > len(data):
            raise _Malformed("bad length")
        size = int.from_bytes(data[at : at + count], "big")
        at += count
    if at + size > len(data):
        raise _Malformed("truncated")
    return tag, data[at : at + size], at + size


def _children(body: bytes) -> list[tuple[int, bytes]]:
    """The elements one after another in ``body`` (a constructed element's contents)."""
    out: list[tuple[int, bytes]] = []
    at = 0
    while at < len(body):
        tag, contents, at = _element(body, at)
        out.append((tag, contents))
    return out


def _one(body: bytes, tag: int) -> bytes:
    """The contents of the single element of ``body``, which must have ``tag``."""
    found, contents, end = _element(body)
    if found != tag or end != len(body):
        raise _Malformed(f"expected one element of tag {tag:#x}")
    return contents


def _first(items: list[tuple[int, bytes]], tag: int) -> bytes:
    if not items or items[0][0] != tag:
        raise _Malformed(f"expected tag {tag:#x}")
    return items[0][1]


def _dotted(body: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise _Malformed("empty object identifier")
    top = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (top, arcs[0] - 40 * top, *arcs[1:]))


def _name(dotted: str) -> str:
    return _NAMES.get(dotted, dotted)


def _algorithm(body: bytes) -> str:
    """An AlgorithmIdentifier's name; PBES2 as ``PBES2/<KDF>-<PRF>/<cipher>``."""
    parts = _children(body)
    algorithm = _dotted(_first(parts, _OID))
    if algorithm != _PBES2 or len(parts) < 2:
        return _name(algorithm)
    kdf, cipher = (_children(c) for t, c in _children(parts[1][1]) if t == _SEQUENCE)
    prf = _HMAC_SHA1  # PBKDF2-params: salt, iterationCount, keyLength?, prf DEFAULT SHA-1
    if len(kdf) > 1:
        for tag, contents in _children(kdf[1][1]):
            if tag == _SEQUENCE:
                prf = _dotted(_first(_children(contents), _OID))
    kdf_name = _name(_dotted(_first(kdf, _OID)))
    return f"PBES2/{kdf_name}-{_name(prf)}/{_name(_dotted(_first(cipher, _OID)))}"


def protection(data: bytes) -> Protection:
    """The algorithms ``data`` (a PKCS#12 file) was made with, read from its clear structure
    without a password; ValueError when it is not PKCS#12."""
    try:
        pfx = _children(_one(data, _SEQUENCE))
        if len(pfx) < 2 or pfx[1][0] != _SEQUENCE:
            raise _Malformed("no authSafe")
        mac = "none"
        if len(pfx) > 2:  # MacData: DigestInfo (AlgorithmIdentifier, digest), salt, iterations
            digest_info = _children(_first(_children(pfx[2][1]), _SEQUENCE))
            mac = _algorithm(_first(digest_info, _SEQUENCE))
        certificates: list[str] = []
        keys: list[str] = []
        for content_type, content in _content_infos(pfx[1][1]):
            if content_type == _ENCRYPTED_DATA:  # EncryptedData: version, EncryptedContentInfo
                encrypted = _children(_one(content, _SEQUENCE))
                info = _children(encrypted[1][1])  # contentType, algorithm, [0] ciphertext
                certificates.append(_algorithm(info[1][1]))
            elif content_type == _DATA:
                bags = _children(_one(_one(content, _OCTETS), _SEQUENCE))
                for _, bag in bags:
                    bag_parts = _children(bag)
                    bag_id = _dotted(_first(bag_parts, _OID))
                    if bag_id == _SHROUDED_KEY_BAG:  # EncryptedPrivateKeyInfo
                        shrouded = _children(_one(bag_parts[1][1], _SEQUENCE))
                        keys.append(_algorithm(_first(shrouded, _SEQUENCE)))
                    elif bag_id == _CERT_BAG:
                        certificates.append("none")
        return Protection(mac, tuple(certificates), tuple(keys))
    except (_Malformed, IndexError, ValueError) as exc:
        raise ValueError("not a PKCS#12 file") from exc


def _content_infos(auth_safe: bytes) -> list[tuple[str, bytes]]:
    """(contentType, the [0] content) of each ContentInfo of the AuthenticatedSafe."""
    outer = _children(auth_safe)  # ContentInfo: data, [0] OCTET STRING (AuthenticatedSafe)
    if _dotted(_first(outer, _OID)) != _DATA:
        raise _Malformed("authSafe is not data")
    safe = _one(_one(outer[1][1], _OCTETS), _SEQUENCE)
    out: list[tuple[str, bytes]] = []
    for _, info in _children(safe):
        parts = _children(info)
        content = parts[1][1] if len(parts) > 1 and parts[1][0] == _CONTEXT_0 else b""
        out.append((_dotted(_first(parts, _OID)), content))
    return out
