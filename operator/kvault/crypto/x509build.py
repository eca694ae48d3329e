"""Azure Key Vault certificates: policy pieces, and certificates and CSRs signed by any key.

The policy's ``x509_props`` become ``cryptography`` objects here (:func:`parse_subject`,
:func:`key_usage`, :func:`ekus`, :class:`Names`, :class:`CertSpec`). :func:`issue` and :func:`csr`
never see a private key: the signature comes from a :data:`Signer`, which signs a digest the way
kvault's key ``sign`` operation does (PKCS#1 v1.5 for RSA, raw ``r||s`` for EC), so the issuer
key may live in an HSM. Every refusal is a :class:`CertError` naming the field; no message ever
carries key material.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from kvault.crypto import der, keys
from kvault.crypto import jwk as _jwk
from kvault.crypto.keys import Public


class CertError(ValueError):
    """A bad certificate policy, request or input.

    ``str(exc)`` names the field (``sans.dns_names[1] 'a..b' is not a valid DNS name``) and never
    contains key material, so callers may return it as is.
    """


#: Signs a digest with the issuer's (or, for a CSR, the subject's) key and returns what kvault's
#: key ``sign`` returns: an RS256 PKCS#1 v1.5 signature, or raw ``r||s`` for ES256/384/512.
Signer: TypeAlias = Callable[[bytes], Awaitable[bytes]]


def _show(value: object) -> str:
    """A caller-supplied value, quoted and cut short, for an error message."""
    text = str(value)
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


# --- subject ------------------------------------------------------------------------------

_MAX_SUBJECT = 4096
#: Attribute names as Azure (.NET's X500DistinguishedName) and RFC 4514 spell them, upper-cased.
_ATTRIBUTES: dict[str, x509.ObjectIdentifier] = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "L": NameOID.LOCALITY_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME,
    "E": NameOID.EMAIL_ADDRESS,
    "EMAIL": NameOID.EMAIL_ADDRESS,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
    "DC": NameOID.DOMAIN_COMPONENT,
    "STREET": NameOID.STREET_ADDRESS,
    "T": NameOID.TITLE,
    "TITLE": NameOID.TITLE,
    "G": NameOID.GIVEN_NAME,
    "GN": NameOID.GIVEN_NAME,
    "GIVENNAME": NameOID.GIVEN_NAME,
    "SN": NameOID.SURNAME,
    "SURNAME": NameOID.SURNAME,
    "I": NameOID.INITIALS,
    "INITIALS": NameOID.INITIALS,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "POSTALCODE": NameOID.POSTAL_CODE,
    "UID": NameOID.USER_ID,
    "DNQUALIFIER": NameOID.DN_QUALIFIER,
}
#: How :func:`subject_text` writes each attribute (the .NET spelling, ``S`` for the state).
_SHORT: dict[x509.ObjectIdentifier, str] = {
    **{_ATTRIBUTES[n]: n for n in ("CN", "O", "OU", "L", "S", "C", "E", "DC", "STREET", "T")},
    **{_ATTRIBUTES[n]: n for n in ("G", "SN", "I", "SERIALNUMBER", "UID")},
    NameOID.POSTAL_CODE: "PostalCode",
    NameOID.DN_QUALIFIER: "dnQualifier",
}
#: Attributes encoded as IA5String: ASCII only.
_IA5 = frozenset({NameOID.EMAIL_ADDRESS, NameOID.DOMAIN_COMPONENT})
_DOTTED = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
_HEX = frozenset("0123456789abcdefABCDEF")
_SEPARATORS = ",;+"


def _attribute_oid(kind: str) -> x509.ObjectIdentifier:
    found = _ATTRIBUTES.get(kind.upper())
    if found is not None:
        return found
    dotted = kind[4:] if kind.upper().startswith("OID.") else kind
    if _DOTTED.fullmatch(dotted):
        try:
            return x509.ObjectIdentifier(dotted)
        except ValueError:
            pass
    raise CertError(f"subject has an unknown attribute {_show(kind)}")


def _attribute(kind: str, value: str) -> x509.NameAttribute[str]:
    oid = _attribute_oid(kind)
    if not value:
        raise CertError(f"subject {kind} has an empty value")
    if oid in _IA5 and not value.isascii():
        raise CertError(f"subject {kind} must be ASCII")
    if oid == NameOID.COUNTRY_NAME and len(value) != 2:
        raise CertError(f"subject {kind} must be a two-letter country code, not {_show(value)}")
    try:
        return x509.NameAttribute(oid, value)
    except ValueError as exc:
        raise CertError(f"subject {kind} is not valid: {exc}") from None


def _type_end(text: str, start: int) -> int:
    """The position of the ``=`` ending the attribute name that starts at ``start``."""
    end = start
    while end < len(text) and text[end] not in "=" + _SEPARATORS:
        end += 1
    name = text[start:end].strip()
    if end == len(text) or text[end] != "=":
        if not name:
            raise CertError(
                "subject has an empty component (two separators in a row, or one at an end)"
            )
        raise CertError(f"subject component {_show(name)} is not NAME=value")
    if not name:
        raise CertError("subject has a value without an attribute name")
    return end


def _escape(text: str, pos: int, out: bytearray) -> int:
    """Decode the backslash escape at ``text[pos]`` into ``out``; the position after it."""
    nxt = text[pos + 1 : pos + 2]
    if not nxt:
        raise CertError("subject ends with a lone backslash")
    pair = text[pos + 1 : pos + 3]
    if len(pair) == 2 and set(pair) <= _HEX:
        out.append(int(pair, 16))
        return pos + 3
    out.extend(nxt.encode("utf-8"))
    return pos + 2


def _utf8(data: bytearray, kind: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CertError(f"subject {kind} has hex escapes that are not UTF-8") from None


def _quoted(text: str, pos: int, kind: str) -> tuple[str, int]:
    """The value of a ``"..."`` starting at ``text[pos]``; the position after the quote."""
    out = bytearray()
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return _utf8(out, kind), pos + 1
        if char == "\\":
            pos = _escape(text, pos, out)
        else:
            out.extend(char.encode("utf-8"))
            pos += 1
    raise CertError(f"subject {kind} has an unterminated quoted value")


def _value(text: str, pos: int, kind: str) -> tuple[str, int]:
    """The value starting at ``text[pos]`` (after ``=``) and the position of what ends it."""
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if text[pos : pos + 1] == '"':
        value, pos = _quoted(text, pos, kind)
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if pos < len(text) and text[pos] not in _SEPARATORS:
            raise CertError(f"subject {kind} has text after its closing quote")
        return value, pos
    out = bytearray()
    keep = 0  # trailing unescaped spaces are not part of the value
    while pos < len(text) and text[pos] not in _SEPARATORS:
        if text[pos] == "\\":
            pos = _escape(text, pos, out)
            keep = len(out)
            continue
        out.extend(text[pos].encode("utf-8"))
        if text[pos] != " ":
            keep = len(out)
        pos += 1
    return _utf8(out[:keep], kind), pos


def parse_subject(text: str) -> x509.Name:
    """A policy ``subject`` such as ``CN=a, O=Org, C=US``, as Azure takes it.

    Components are separated by ``,`` or ``;`` (``+`` joins a multi-valued RDN), attribute
    names are case-insensitive (``CN``, ``O``, ``OU``, ``L``, ``S``/``ST``, ``C``, ``E``, ``DC``,
    ... or ``OID.1.2.3``), values keep the text as sent and may be ``"quoted"`` or use RFC 4514
    backslash escapes. As in RFC 4514 the first component is the most specific: it is encoded
    last.
    """
    if not isinstance(text, str):
        raise CertError("subject must be a string")
    if not text.strip():
        raise CertError("subject is empty")
    if len(text) > _MAX_SUBJECT:
        raise CertError(f"subject is too long (at most {_MAX_SUBJECT} characters)")
    rdns: list[list[x509.NameAttribute[str]]] = []
    current: list[x509.NameAttribute[str]] = []
    pos = 0
    while True:
        end = _type_end(text, pos)
        kind = text[pos:end].strip()
        value, pos = _value(text, end + 1, kind)
        current.append(_attribute(kind, value))
        if pos == len(text):
            break
        if text[pos] != "+":
            rdns.append(current)
            current = []
        pos += 1
    rdns.append(current)
    try:
        return x509.Name([x509.RelativeDistinguishedName(rdn) for rdn in reversed(rdns)])
    except ValueError as exc:
        raise CertError(f"subject is not valid: {exc}") from None


def _quote(value: str) -> str:
    plain = value.strip() == value and not value.startswith(("#", '"'))
    if plain and not any(c in value for c in ',;+"\\<>=\n'):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def subject_text(name: x509.Name) -> str:
    """``name`` as Azure shows a subject (``CN=a, O=Org, C=US``); :func:`parse_subject` reads
    it back to the same name."""
    parts = []
    for rdn in reversed(name.rdns):
        items = []
        for attr in rdn:
            label = _SHORT.get(attr.oid, f"OID.{attr.oid.dotted_string}")
            value = attr.value if isinstance(attr.value, str) else attr.value.hex()
            items.append(f"{label}={_quote(value)}")
        parts.append("+".join(items))
    return ", ".join(parts)


# --- key usage and extended key usage -----------------------------------------------------

#: Azure's key usage names (the SDK matches them case-sensitively) and KeyUsage's fields.
_USAGE_FIELDS = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}
KEY_USAGES: tuple[str, ...] = tuple(_USAGE_FIELDS)
_USAGE_BY_FOLD = {name.lower(): name for name in KEY_USAGES}


def key_usage(names: Sequence[str]) -> x509.KeyUsage:
    """The KeyUsage extension of Azure's ``key_usage`` names (exact case; duplicates are fine)."""
    flags = dict.fromkeys(_USAGE_FIELDS.values(), False)
    for index, name in enumerate(names):
        field = _USAGE_FIELDS.get(name) if isinstance(name, str) else None
        if field is None:
            hint = _USAGE_BY_FOLD.get(name.lower()) if isinstance(name, str) else None
            why = f"did you mean {hint!r}?" if hint else "one of " + ", ".join(KEY_USAGES)
            raise CertError(f"key_usage[{index}] {_show(name)} is not a key usage ({why})")
        flags[field] = True
    if (flags["encipher_only"] or flags["decipher_only"]) and not flags["key_agreement"]:
        raise CertError("key_usage encipherOnly and decipherOnly need keyAgreement")
    return x509.KeyUsage(**flags)


def usage_names(usage: x509.KeyUsage) -> tuple[str, ...]:
    """Azure's names of the bits set in ``usage``, in :data:`KEY_USAGES` order."""
    out = []
    for name, field in _USAGE_FIELDS.items():
        if field in ("encipher_only", "decipher_only") and not usage.key_agreement:
            continue
        if getattr(usage, field):
            out.append(name)
    return tuple(out)


def ekus(oids: Sequence[str]) -> x509.ExtendedKeyUsage:
    """The ExtendedKeyUsage extension of dotted OIDs (``1.3.6.1.5.5.7.3.1``), duplicates dropped."""
    out: list[x509.ObjectIdentifier] = []
    for index, text in enumerate(oids):
        if not isinstance(text, str) or not _DOTTED.fullmatch(text):
            raise CertError(f"ekus[{index}] {_show(text)} is not a dotted object identifier")
        try:
            oid = x509.ObjectIdentifier(text)
        except ValueError:
            raise CertError(
                f"ekus[{index}] {_show(text)} is not a valid object identifier"
            ) from None
        if oid not in out:
            out.append(oid)
    return x509.ExtendedKeyUsage(out)


# --- subject alternative names ------------------------------------------------------------

UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_URI_FORBIDDEN = frozenset(' "<>\\^`{|}')


def _is_dns(name: str, *, wildcard: bool = True) -> bool:
    if not 0 < len(name) <= 253:
        return False
    labels = name.split(".")
    if wildcard and len(labels) > 1 and labels[0] == "*":
        labels = labels[1:]
    return all(_LABEL.fullmatch(label) for label in labels)


def _is_email(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return (
        bool(at)
        and len(value) <= 254
        and len(local) <= 64
        and bool(_LOCAL_PART.fullmatch(local))
        and _is_dns(domain, wildcard=False)
    )


def _is_upn(value: str) -> bool:
    user, at, domain = value.rpartition("@")
    return (
        bool(at)
        and 0 < len(user) <= 1024
        and all(c.isprintable() and not c.isspace() and c != "@" for c in user)
        and _is_dns(domain, wildcard=False)
    )


def _is_uri(value: str) -> bool:
    scheme, colon, rest = value.partition(":")
    return (
        bool(colon and rest)
        and len(value) <= 4096
        and bool(_SCHEME.fullmatch(scheme))
        and all(32 < ord(c) < 127 and c not in _URI_FORBIDDEN for c in value)
    )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


#: Field, its name in the policy's ``sans``, what it must be, and its check.
_SAN_FIELDS: tuple[tuple[str, str, str, Callable[[str], bool]], ...] = (
    ("dns", "dns_names", "a valid DNS name", _is_dns),
    ("emails", "emails", "a valid e-mail address", _is_email),
    ("upns", "upns", "a valid user principal name (user@domain)", _is_upn),
    ("uris", "uris", "an absolute URI", _is_uri),
    ("ips", "ipAddresses", "an IPv4 or IPv6 address", _is_ip),
)


@dataclass(frozen=True)
class Names:
    """Subject alternative names, checked on construction (lists become tuples)."""

    dns: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    upns: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for field, wire, what, check in _SAN_FIELDS:
            values = getattr(self, field)
            if isinstance(values, str | bytes) or not isinstance(values, Sequence):
                raise CertError(f"sans.{wire} must be a list of strings")
            values = tuple(values)
            object.__setattr__(self, field, values)
            for index, value in enumerate(values):
                if not isinstance(value, str):
                    raise CertError(f"sans.{wire}[{index}] must be a string")
                if not check(value):
                    raise CertError(f"sans.{wire}[{index}] {_show(value)} is not {what}")

    def general_names(self) -> list[x509.GeneralName]:
        """The SAN entries: DNS, e-mail, UPN (otherName, UTF8String), URI, IP, in that order."""
        out: list[x509.GeneralName] = [x509.DNSName(n) for n in self.dns]
        out += [x509.RFC822Name(e) for e in self.emails]
        out += [x509.OtherName(UPN_OID, der.utf8(u)) for u in self.upns]
        out += [x509.UniformResourceIdentifier(u) for u in self.uris]
        out += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in self.ips]
        return out


# --- the certificate specification --------------------------------------------------------


@dataclass(frozen=True)
class CertSpec:
    """What to certify; checked on construction (EKUs, key usages, validity, path length)."""

    subject: x509.Name
    names: Names
    ekus: tuple[str, ...]
    key_usage: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    ca: bool = False
    path_length: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ekus", tuple(self.ekus))
        object.__setattr__(self, "key_usage", tuple(self.key_usage))
        ekus(self.ekus)
        key_usage(self.key_usage)
        if len(self.subject) == 0 and not self.names.general_names():
            raise CertError("x509_props needs a subject or subject alternative names")
        for field in ("not_before", "not_after"):
            when = getattr(self, field)
            if not isinstance(when, dt.datetime) or when.utcoffset() is None:
                raise CertError(f"{field} must be a datetime with a time zone")
        if self.not_after <= self.not_before:
            raise CertError("not_after must be later than not_before")
        if self.path_length is not None:
            if not self.ca:
                raise CertError("basic_constraints.path_length is only valid for a CA")
            if isinstance(self.path_length, bool) or self.path_length < 0:
                raise CertError("basic_constraints.path_length must be 0 or more")


# --- signing algorithms -------------------------------------------------------------------

_ES_OF_CRV = {"P-256": "ES256", "P-256K": "ES256K", "P-384": "ES384", "P-521": "ES512"}
_CRV_OF_CURVE = {curve().name: crv for crv, curve in _jwk.CURVES.items()}
_SHA256, _SHA384, _SHA512 = hashes.SHA256(), hashes.SHA384(), hashes.SHA512()
_HASH: dict[str, hashes.SHA256 | hashes.SHA384 | hashes.SHA512] = {
    "RS256": _SHA256,
    "ES256": _SHA256,
    "ES256K": _SHA256,
    "ES384": _SHA384,
    "ES512": _SHA512,
}
_ECDSA_OID = {
    "sha256": "1.2.840.10045.4.3.2",
    "sha384": "1.2.840.10045.4.3.3",
    "sha512": "1.2.840.10045.4.3.4",
}
#: signatureAlgorithm AlgorithmIdentifier DER per signing algorithm: RSA with NULL parameters,
#: ECDSA without (RFC 5754), exactly as ``cryptography`` writes them into the TBSCertificate.
_ALG_ID: dict[str, bytes] = {
    alg: der.sequence(der.oid(_ECDSA_OID[_HASH[alg].name]))
    for alg in ("ES256", "ES256K", "ES384", "ES512")
}
_ALG_ID["RS256"] = der.sequence(der.oid("1.2.840.113549.1.1.11"), der.null())


def _check_public(key: object, what: str) -> Public:
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return key
    raise CertError(f"{what} must be an RSA or EC public key")


def signing_alg(public: Public) -> str:
    """The Azure ``sign`` algorithm a :data:`Signer` for this key must use: RS256 for RSA,
    ES256/ES384/ES512 for P-256/P-384/P-521 (ES256K for P-256K)."""
    key = _check_public(public, "the signing key")
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    crv = _CRV_OF_CURVE.get(key.curve.name)
    if crv is None:
        raise CertError(f"the signing key's curve {key.curve.name} is not supported")
    return _ES_OF_CRV[crv]


def software_signer(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> Signer:
    """A :data:`Signer` for a key held in memory, through :func:`kvault.crypto.keys.sign`."""
    alg = signing_alg(private.public_key())

    async def sign(digest: bytes) -> bytes:
        return keys.sign(private, alg, digest)

    return sign


def _digest(alg: str, data: bytes) -> bytes:
    h = hashes.Hash(_HASH[alg])
    h.update(data)
    return h.finalize()


def _signature_value(alg: str, public: Public, raw: object) -> bytes:
    """The signatureValue contents for what the signer returned (ECDSA: DER Ecdsa-Sig-Value)."""
    if not isinstance(raw, bytes):
        raise CertError(f"the {alg} signer did not return bytes")
    if isinstance(public, ec.EllipticCurvePublicKey):
        width = (public.curve.key_size + 7) // 8
        if len(raw) != 2 * width:
            raise CertError(
                f"the {alg} signer returned {len(raw)} bytes, not a raw r||s of {2 * width}"
            )
        r, s = int.from_bytes(raw[:width], "big"), int.from_bytes(raw[width:], "big")
        return utils.encode_dss_signature(r, s)
    size = (public.key_size + 7) // 8
    if len(raw) != size:
        raise CertError(f"the {alg} signer returned {len(raw)} bytes, not {size}")
    return raw


def _verifies(public: Public, signature: bytes, data: bytes, alg: str) -> bool:
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), _HASH[alg])
        else:
            public.verify(signature, data, ec.ECDSA(_HASH[alg]))
    except InvalidSignature:
        return False
    return True


async def _signed(alg: str, public: Public, body: bytes, sign: Signer) -> bytes:
    """``SEQUENCE { body, signatureAlgorithm, BIT STRING signature }`` signed via ``sign``."""
    raw = await sign(_digest(alg, body))
    return der.sequence(body, _ALG_ID[alg], der.bits(_signature_value(alg, public, raw)))


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def same_key(a: CertificatePublicKeyTypes, b: CertificatePublicKeyTypes) -> bool:
    """Whether two public keys are the same key."""
    return _spki(a) == _spki(b)


# --- certificates -------------------------------------------------------------------------


@cache
def _throwaway(kind: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """A key of the issuer's kind, used only so ``cryptography`` writes the TBSCertificate
    (its signature is discarded; the signatureAlgorithm depends on the kind and hash only)."""
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return ec.generate_private_key(ec.SECP256R1())


def _extensions(
    spec: CertSpec, subject_key: Public, aki: x509.AuthorityKeyIdentifier | None
) -> list[tuple[x509.ExtensionType, bool]]:
    """Key Vault's extensions (critical or not): KeyUsage, BasicConstraints, EKU, SAN, SKI, AKI.
    Without ``aki`` (a CSR): KeyUsage, EKU, SAN, and BasicConstraints for a CA."""
    out: list[tuple[x509.ExtensionType, bool]] = []
    if spec.key_usage:
        out.append((key_usage(spec.key_usage), True))
    if aki is not None or spec.ca:
        constraints = x509.BasicConstraints(ca=spec.ca, path_length=spec.path_length)
        out.append((constraints, spec.ca))
    if spec.ekus:
        out.append((ekus(spec.ekus), False))
    names = spec.names.general_names()
    if names:  # RFC 5280: critical when the subject is empty
        out.append((x509.SubjectAlternativeName(names), len(spec.subject) == 0))
    if aki is not None:
        out.append((x509.SubjectKeyIdentifier.from_public_key(subject_key), False))
        out.append((aki, False))
    return out


def _issuer_aki(issuer: x509.Certificate, public: Public) -> x509.AuthorityKeyIdentifier:
    """The AKI naming the issuer's own SKI when it has one (chain builders match on it)."""
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(public)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _check_issuer(issuer: x509.Certificate, spec: CertSpec) -> None:
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise CertError("the issuer certificate is not a CA (basic_constraints.ca is false)")
    if spec.ca and constraints.path_length == 0:
        raise CertError("the issuer certificate's path length 0 forbids issuing a CA")
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise CertError("the issuer certificate may not sign certificates (no keyCertSign)")


async def issue(
    spec: CertSpec,
    subject_key: Public,
    *,
    issuer: x509.Certificate | None,
    issuer_public: Public,
    sign: Signer,
    serial: int | None = None,
) -> x509.Certificate:
    """A certificate for ``subject_key`` signed through ``sign`` by the issuer's key.

    ``issuer`` None means self-signed: ``issuer_public`` must then be ``subject_key``. The hash
    follows the issuer key (:func:`signing_alg`): SHA-256 for RSA and P-256, SHA-384 for P-384,
    SHA-512 for P-521. The result's signature is verified with ``issuer_public``.
    """
    subject_key = _check_public(subject_key, "subject_key")
    alg = signing_alg(issuer_public)
    if issuer is None:
        if not same_key(subject_key, issuer_public):
            raise CertError("issuer_public must be the subject key of a self-signed certificate")
        issuer_name = spec.subject
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(subject_key)
    else:
        issuer_key = _check_public(issuer.public_key(), "the issuer certificate's key")
        if not same_key(issuer_key, issuer_public):
            raise CertError("issuer_public is not the issuer certificate's key")
        _check_issuer(issuer, spec)
        issuer_name = issuer.subject
        aki = _issuer_aki(issuer, issuer_public)
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.subject)
        .issuer_name(issuer_name)
        .public_key(subject_key)
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
    )
    try:
        builder = builder.serial_number(x509.random_serial_number() if serial is None else serial)
    except (TypeError, ValueError):
        raise CertError("serial must be a positive integer of at most 159 bits") from None
    for extension, critical in _extensions(spec, subject_key, aki):
        builder = builder.add_extension(extension, critical)
    kind = "RSA" if isinstance(issuer_public, rsa.RSAPublicKey) else "EC"
    tbs = builder.sign(_throwaway(kind), _HASH[alg]).tbs_certificate_bytes
    cert = x509.load_der_x509_certificate(await _signed(alg, issuer_public, tbs, sign))
    if not _verifies(issuer_public, cert.signature, cert.tbs_certificate_bytes, alg):
        raise CertError(f"the {alg} signature by the issuer key does not verify")
    return cert


_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"


async def csr(
    spec: CertSpec, subject_public: Public, sign: Signer
) -> x509.CertificateSigningRequest:
    """A PKCS#10 request for ``subject_public`` (subject, and an extensionRequest with KeyUsage,
    EKU and SAN, plus BasicConstraints for a CA), signed through ``sign`` by that key."""
    subject_public = _check_public(subject_public, "subject_public")
    alg = signing_alg(subject_public)
    requested = [
        der.sequence(
            der.oid(extension.oid.dotted_string),
            *([der.boolean(True)] if critical else []),
            der.octets(extension.public_bytes()),
        )
        for extension, critical in _extensions(spec, subject_public, None)
    ]
    attributes = b""
    if requested:
        attributes = der.sequence(der.oid(_EXTENSION_REQUEST), der.set_of(der.sequence(*requested)))
    info = der.sequence(
        der.integer(0),
        spec.subject.public_bytes(),
        _spki(subject_public),
        der.implicit(0, attributes, constructed=True),
    )
    request = x509.load_der_x509_csr(await _signed(alg, subject_public, info, sign))
    if not request.is_signature_valid:
        raise CertError(f"the {alg} signature by the request's key does not verify")
    return request


def x5t(cert: x509.Certificate) -> str:
    """Key Vault's ``x5t``: base64url SHA-1 of the DER, unpadded (27 characters)."""
    return _jwk.b64url(hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest())
