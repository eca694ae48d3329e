"""Certificate policies as data: the members of a policy, Azure's enumerations and defaults.

:mod:`~kvault.vault.certificates.policy` builds and uses them; parsing a client's request is
in :mod:`~kvault.vault.certificates.policy_request`, reflecting an imported certificate in
:mod:`~kvault.vault.certificates.policy_reflect`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from kvault.crypto import x509build as xb
from kvault.vault.model import DAY

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
CONTENT_TYPES = (PKCS12, PEM)

AUTO_RENEW = "AutoRenew"
EMAIL_CONTACTS = "EmailContacts"
ACTION_TYPES = (AUTO_RENEW, EMAIL_CONTACTS)

SELF = "Self"
UNKNOWN = "Unknown"

KTYS = ("RSA", "RSA-HSM", "EC", "EC-HSM")
RSA_SIZES = (2048, 3072, 4096)
#: Curve sizes in bits, for a ``key_size`` given alongside (or instead of) ``crv``.
CURVE_BITS = {"P-256": 256, "P-384": 384, "P-521": 521, "P-256K": 256}
DEFAULT_CURVE = "P-256"

SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
DEFAULT_EKUS = (SERVER_AUTH, CLIENT_AUTH)
#: X.509 key usages by their Azure names, in the bit order of RFC 5280.
KEY_USAGES = (
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
DEFAULT_KEY_USAGE = ("digitalSignature", "keyEncipherment")

DEFAULT_VALIDITY_MONTHS = 12
MAX_VALIDITY_MONTHS = 1200
#: ``x509_props.validity_seconds``, a kvault extension for tests and demos of renewal, is
#: refused unless the process runs with a dev validity floor (``--dev-certificate-validity-
#: floor``, Helm ``dev.certificateValidityFloorSeconds``; unset by default); it then accepts
#: from the floor up to this (one day: anything longer is said in months).
MAX_VALIDITY_SECONDS = 86_400
#: ``days_before_expiry`` may be at most ``validity_months`` times this.
DAYS_PER_MONTH_LIMIT = 27
DEFAULT_LIFETIME_PERCENTAGE = 80
MAX_CTY = 255
#: The Microsoft UPN ``otherName`` of a subject alternative name.
UPN_OID = xb.UPN_OID

CONTENT_TYPE_OF = {c.lower(): c for c in CONTENT_TYPES}


def is_int(value: Any) -> bool:
    """An integer that is not a bool (JSON's true is not 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class KeyProps:
    """``key_props``: the key each version gets. EC keys have a ``crv`` and no ``key_size``
    unless the request gave one (it must match the curve). ``exportable: false`` leaves the
    private key out of the secret (PFX or PEM)."""

    exportable: bool = True
    kty: str = "RSA"
    key_size: int | None = 2048
    reuse_key: bool = False
    crv: str | None = None

    @property
    def base_kty(self) -> str:
        """``RSA`` or ``EC`` (without ``-HSM``)."""
        return self.kty.removesuffix("-HSM")


@dataclass(frozen=True, slots=True)
class SubjectAlternativeNames:
    """``x509_props.sans`` (wire ``dns_names``, ``emails``, ``upns``, ``uris``,
    ``ipAddresses``)."""

    dns_names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    upns: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.dns_names or self.emails or self.upns or self.uris or self.ip_addresses)


#: Wire member, attribute and what an element must be (for error messages).
SAN_FIELDS = (
    ("dns_names", "dns_names", "a DNS name"),
    ("emails", "emails", "an e-mail address"),
    ("upns", "upns", "a user principal name (user@domain)"),
    ("uris", "uris", "an absolute URI"),
    ("ipAddresses", "ip_addresses", "an IPv4 or IPv6 address"),
)


@dataclass(frozen=True, slots=True)
class X509Props:
    """``x509_props``. ``subject`` is the text as the client sent it (``cn=MyCert`` stays
    lower-case, as in Azure); :func:`parse_subject` turns it into an :class:`x509.Name`."""

    subject: str = ""
    sans: SubjectAlternativeNames = dataclasses.field(default_factory=SubjectAlternativeNames)
    ekus: tuple[str, ...] = DEFAULT_EKUS
    key_usage: tuple[str, ...] = DEFAULT_KEY_USAGE
    validity_months: int = DEFAULT_VALIDITY_MONTHS
    ca: bool = False
    #: kvault's dev-only ``validity_seconds`` (see :data:`MAX_VALIDITY_SECONDS`): overrides
    #: ``validity_months`` for short-lived certificates in tests and demos.
    validity_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class LifetimeAction:
    """One lifetime action: exactly one of the two triggers is set."""

    action: str
    lifetime_percentage: int | None = None
    days_before_expiry: int | None = None

    def trigger(self) -> dict[str, int]:
        if self.lifetime_percentage is not None:
            return {"lifetime_percentage": self.lifetime_percentage}
        if self.days_before_expiry is not None:
            return {"days_before_expiry": self.days_before_expiry}
        return {}

    def due_at(self, not_before: int, not_after: int) -> int:
        """When this action is due for a version valid ``[not_before, not_after]``."""
        if self.lifetime_percentage is not None:
            return not_before + (not_after - not_before) * self.lifetime_percentage // 100
        return not_after - (self.days_before_expiry or 0) * DAY


@dataclass(frozen=True, slots=True)
class IssuerRef:
    """``issuer``: ``Self`` (self-signed), ``Unknown`` (a CSR to merge) or a named issuer."""

    name: str = SELF
    cty: str | None = None
    cert_transparency: bool | None = None


def default_actions(issuer: IssuerRef) -> tuple[LifetimeAction, ...]:
    """What Azure fills in when a policy has no ``lifetime_actions``: renew at 80 % of the
    lifetime, or only e-mail the contacts for ``Unknown`` (nothing can renew it)."""
    kind = EMAIL_CONTACTS if issuer.name == UNKNOWN else AUTO_RENEW
    return (LifetimeAction(kind, lifetime_percentage=DEFAULT_LIFETIME_PERCENTAGE),)
