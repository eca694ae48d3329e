"""The PFX of a certificate-backed secret: PKCS#12 with an empty password and legacy algorithms.

Key Vault's consumers need the old format: the Secrets Store CSI Azure provider's
``golang.org/x/crypto/pkcs12`` refuses a SHA-256 MAC and a MAC-less file, and OpenSSL 3 reads
3DES without ``-legacy`` (RC2 it does not). So the certificates (an encryptedData) and the key
(a pkcs8ShroudedKeyBag) are both ``pbeWithSHAAnd3-KeyTripleDES-CBC`` and the MAC is HMAC-SHA-1,
2048 iterations each, as OpenSSL writes them. ``cryptography`` cannot encrypt a PKCS#12 under an
empty password, so this module encodes it (RFC 7292) with :mod:`kvault.crypto.der`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from kvault.crypto import der
from kvault.crypto.keys import OctKey, Private
from kvault.crypto.x509build import CertError, same_key

ITERATIONS = 2048
#: RFC 7292 B.1: the password is a BMPString with a two-byte NUL terminator, so "" is two zero
#: bytes (what OpenSSL derives for ``-passin pass:`` and Go's pkcs12 for "").
EMPTY_PASSWORD = b"\x00\x00"
_SALT_BYTES = 8
_DATA = "1.2.840.113549.1.7.1"
_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
_PBE_SHA1_3DES = "1.2.840.113549.1.12.1.3"
_SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
_CERT_BAG = "1.2.840.113549.1.12.10.1.3"
_X509_CERTIFICATE = "1.2.840.113549.1.9.22.1"
_LOCAL_KEY_ID = "1.2.840.113549.1.9.21"
_SHA1 = "1.3.14.3.2.26"
# RFC 7292 B.2 purposes
_KEY, _IV, _MAC = 1, 2, 3


def _repeat(data: bytes, size: int) -> bytes:
    """Copies of ``data`` concatenated and cut to ``size`` bytes."""
    return (data * (size // len(data) + 1))[:size] if data else b""


def derive(password: bytes, salt: bytes, purpose: int, iterations: int, size: int) -> bytes:
    """The RFC 7292 appendix B.2 key derivation with SHA-1 (u = 20, v = 64 bytes).

    ``password`` is already the BMPString with its terminator (:data:`EMPTY_PASSWORD` for "")."""
    v = 64  # SHA-1's block; its output (u) is 20 bytes
    diversifier = bytes([purpose]) * v
    block = bytearray(
        _repeat(salt, v * -(-len(salt) // v)) + _repeat(password, v * -(-len(password) // v))
    )
    out = b""
    while len(out) < size:
        a = diversifier + bytes(block)
        for _ in range(iterations):
            a = hashlib.sha1(a).digest()
        out += a
        b = int.from_bytes(_repeat(a, v), "big") + 1
        for start in range(0, len(block), v):
            chunk = (int.from_bytes(block[start : start + v], "big") + b) % (1 << (8 * v))
            block[start : start + v] = chunk.to_bytes(v, "big")
    return out[:size]


def _pbe(data: bytes) -> tuple[bytes, bytes]:
    """``data`` encrypted with pbeWithSHAAnd3-KeyTripleDES-CBC under the empty password:
    (AlgorithmIdentifier, ciphertext)."""
    salt = os.urandom(_SALT_BYTES)
    key = derive(EMPTY_PASSWORD, salt, _KEY, ITERATIONS, 24)
    iv = derive(EMPTY_PASSWORD, salt, _IV, ITERATIONS, 8)
    padder = padding.PKCS7(64).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    algorithm = der.sequence(
        der.oid(_PBE_SHA1_3DES), der.sequence(der.octets(salt), der.integer(ITERATIONS))
    )
    return algorithm, ciphertext


def _local_key_id(key_id: bytes) -> bytes:
    return der.set_of(der.sequence(der.oid(_LOCAL_KEY_ID), der.set_of(der.octets(key_id))))


def _cert_bag(cert: x509.Certificate, key_id: bytes | None) -> bytes:
    value = der.sequence(
        der.oid(_X509_CERTIFICATE),
        der.explicit(0, der.octets(cert.public_bytes(serialization.Encoding.DER))),
    )
    attributes = [] if key_id is None else [_local_key_id(key_id)]
    return der.sequence(der.oid(_CERT_BAG), der.explicit(0, value), *attributes)


def _certificates(chain: Sequence[x509.Certificate], key_id: bytes | None) -> bytes:
    """ContentInfo encryptedData holding the certificate bags (the leaf with its localKeyId)."""
    bags = [_cert_bag(cert, key_id if i == 0 else None) for i, cert in enumerate(chain)]
    algorithm, ciphertext = _pbe(der.sequence(*bags))
    encrypted = der.sequence(
        der.integer(0),
        der.sequence(der.oid(_DATA), algorithm, der.implicit(0, ciphertext)),
    )
    return der.sequence(der.oid(_ENCRYPTED_DATA), der.explicit(0, encrypted))


def _key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, key_id: bytes) -> bytes:
    """ContentInfo data holding the key's pkcs8ShroudedKeyBag."""
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    algorithm, ciphertext = _pbe(pkcs8)
    shrouded = der.sequence(algorithm, der.octets(ciphertext))
    bag = der.sequence(der.oid(_SHROUDED_KEY_BAG), der.explicit(0, shrouded), _local_key_id(key_id))
    return der.sequence(der.oid(_DATA), der.explicit(0, der.octets(der.sequence(bag))))


def pfx(key: Private | None, chain: Sequence[x509.Certificate]) -> bytes:
    """PKCS#12 (DER) of ``key`` (when given) and ``chain`` (leaf first), empty password,
    3DES bags, SHA-1 MAC. The key must be the leaf's."""
    if not chain:
        raise CertError("a PFX needs at least one certificate")
    leaf = chain[0]
    key_id = hashlib.sha1(leaf.public_bytes(serialization.Encoding.DER)).digest()
    contents = [_certificates(chain, None if key is None else key_id)]
    if key is not None:
        if isinstance(key, OctKey):
            raise CertError("a certificate's key must be RSA or EC, not oct")
        if not same_key(key.public_key(), leaf.public_key()):
            raise CertError("the private key does not match the certificate")
        contents.append(_key(key, key_id))
    auth_safe = der.sequence(*contents)
    mac_salt = os.urandom(_SALT_BYTES)
    mac_key = derive(EMPTY_PASSWORD, mac_salt, _MAC, ITERATIONS, 20)
    mac = hmac.new(mac_key, auth_safe, hashlib.sha1).digest()
    mac_data = der.sequence(
        der.sequence(der.sequence(der.oid(_SHA1), der.null()), der.octets(mac)),
        der.octets(mac_salt),
        der.integer(ITERATIONS),
    )
    content = der.sequence(der.oid(_DATA), der.explicit(0, der.octets(auth_safe)))
    return der.sequence(der.integer(3), content, mac_data)
