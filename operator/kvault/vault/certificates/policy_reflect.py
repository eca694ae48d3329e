"""What an imported certificate says about its policy: key type, size and curve, subject,
SANs, EKUs, key usage, CA flag and validity in months, as the real service reflects them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import Certificate

from kvault.crypto import x509build as xb
from kvault.crypto.jwk import CURVES
from kvault.errors import BadParameter
from kvault.vault.certificates.policy_model import (
    CURVE_BITS,
    MAX_VALIDITY_MONTHS,
    RSA_SIZES,
    UPN_OID,
    KeyProps,
    SubjectAlternativeNames,
    X509Props,
)

_CRV_OF_CURVE = {curve().name: crv for crv, curve in CURVES.items()}


def key_of_certificate(cert: Certificate, given: KeyProps) -> KeyProps:
    """``given`` with the type, size and curve of the certificate's key (``-HSM`` kept)."""
    public = cert.public_key()
    hsm = given.kty.endswith("-HSM")
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size not in RSA_SIZES:
            raise BadParameter(
                f"value: the certificate's RSA key has {public.key_size} bits; "
                "use 2048, 3072 or 4096"
            )
        kty = "RSA-HSM" if hsm else "RSA"
        return KeyProps(given.exportable, kty, public.key_size, given.reuse_key, None)
    if isinstance(public, ec.EllipticCurvePublicKey):
        crv = _CRV_OF_CURVE.get(public.curve.name)
        if crv is None:
            raise BadParameter(
                f"value: the certificate's curve {public.curve.name} is not supported "
                f"({', '.join(CURVE_BITS)})"
            )
        kty = "EC-HSM" if hsm else "EC"
        return KeyProps(given.exportable, kty, None, given.reuse_key, crv)
    raise BadParameter("value: the certificate's key must be an RSA or EC key")


def x509_of_certificate(cert: Certificate) -> X509Props:
    try:
        extensions = cert.extensions
        subject = xb.subject_text(cert.subject)
    except ValueError:
        raise BadParameter("value: the certificate's extensions or subject are malformed") from None
    sans = SubjectAlternativeNames()
    ekus: tuple[str, ...] = ()
    usages: tuple[str, ...] = ()
    ca = False
    for ext in extensions:
        value = ext.value
        if isinstance(value, x509.SubjectAlternativeName):
            sans = SubjectAlternativeNames(
                dns_names=tuple(value.get_values_for_type(x509.DNSName)),
                emails=tuple(value.get_values_for_type(x509.RFC822Name)),
                upns=tuple(
                    upn
                    for other in value.get_values_for_type(x509.OtherName)
                    if other.type_id == UPN_OID and (upn := _utf8_string(other.value)) is not None
                ),
                uris=tuple(value.get_values_for_type(x509.UniformResourceIdentifier)),
                ip_addresses=tuple(str(ip) for ip in value.get_values_for_type(x509.IPAddress)),
            )
        elif isinstance(value, x509.ExtendedKeyUsage):
            ekus = tuple(oid.dotted_string for oid in value)
        elif isinstance(value, x509.KeyUsage):
            usages = xb.usage_names(value)
        elif isinstance(value, x509.BasicConstraints):
            ca = value.ca
    months = validity_months_between(
        int(cert.not_valid_before_utc.timestamp()), int(cert.not_valid_after_utc.timestamp())
    )
    return X509Props(subject, sans, ekus, usages, months, ca)


def _utf8_string(der: bytes) -> str | None:
    """The text of a DER UTF8String (a UPN's ``otherName`` value), or ``None``."""
    if len(der) < 2 or der[0] != 0x0C:
        return None
    size, offset = der[1], 2
    if size & 0x80:
        width = size & 0x7F
        if not 1 <= width <= 4 or len(der) < 2 + width:
            return None
        size, offset = int.from_bytes(der[2 : 2 + width], "big"), 2 + width
    if len(der) != offset + size:
        return None
    try:
        return der[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def validity_months_between(not_before: int, not_after: int) -> int:
    """``validity_months`` of an imported certificate: the calendar months from ``not_before``
    to ``not_after``, a partial month counting as a whole one, within 1..1200.

    Matches both real-service data points: a certificate valid 365 days and 10 minutes
    (Azure's own ``nbf = created - 600 s``, ``exp = created + 365 days``) imports as 13 months
    (JS SDK recording), and 2015-04-29 to 2039-12-31 (296 months and 2 days) as 297 (REST spec
    ImportCertificate example); plain rounding of days/30.4 would give 12 and 296."""
    if not_after <= not_before:
        return 1
    start = datetime.fromtimestamp(not_before, UTC)
    end = datetime.fromtimestamp(not_after, UTC)
    months = (end.year - start.year) * 12 + (end.month - start.month)
    day = min(start.day, _days_in_month(end.year, end.month))
    if (end.day, end.time()) > (day, start.time()):
        months += 1
    return max(1, min(MAX_VALIDITY_MONTHS, months))


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31
