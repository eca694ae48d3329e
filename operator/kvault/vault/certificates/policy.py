"""Certificate policies (``/certificates/{name}/policy`` and the ``policy`` of create and import):
validation with Azure's server-filled defaults, the import policy that reflects a certificate,
storage and wire forms, the backing key's ``key_ops`` and the lifetime-action schedule.

Pure logic: no I/O and no clock of its own. Callers pass ``now`` and, for the schedule, the
current version's validity, so every due time is recomputed from stored state.

Wire form (snake_case, as the service and every SDK speak it; ``contentType`` and
``ipAddresses`` are the exceptions)::

    {"id": ".../certificates/c/policy",
     "key_props": {"exportable": true, "kty": "RSA", "key_size": 2048, "reuse_key": false},
     "secret_props": {"contentType": "application/x-pkcs12"},
     "x509_props": {"subject": "CN=a", "sans": {}, "ekus": [...], "key_usage": [...],
                    "validity_months": 12, "basic_constraints": {"ca": false}},
     "lifetime_actions": [{"trigger": {"lifetime_percentage": 80},
                           "action": {"action_type": "AutoRenew"}}],
     "issuer": {"name": "Self"},
     "attributes": {"enabled": true, "created": 1, "updated": 1}}

Enumerations (action types, content types, key usages, issuer ``Self``/``Unknown``) are read
case-insensitively and always written in Azure's exact case: the SDKs convert them with
case-sensitive enums. ``kty`` and ``crv`` must be given in Azure's exact case, as for keys.

Short-lived certificates: ``validity_months`` is whole months, as in Azure (at least
``min_months``, 1 by default). End-to-end tests of renewal use ``validity_months: 1`` with a
``lifetime_percentage`` trigger and drive the renewal scheduler's clock themselves.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import Certificate
from cryptography.x509.oid import ObjectIdentifier

from kvault.crypto import x509build as xb
from kvault.crypto.jwk import CURVES
from kvault.errors import BadParameter, IntegrityError
from kvault.vault.model import DAY
from kvault.vault.names import ITEM_NAME

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
CONTENT_TYPES = (PKCS12, PEM)

AUTO_RENEW = "AutoRenew"
EMAIL_CONTACTS = "EmailContacts"
ACTION_TYPES = (AUTO_RENEW, EMAIL_CONTACTS)
#: Contacts hear about a version before a renewal replaces it.
_ORDER = {EMAIL_CONTACTS: 0, AUTO_RENEW: 1}

SELF = "Self"
UNKNOWN = "Unknown"

KTYS = ("RSA", "RSA-HSM", "EC", "EC-HSM")
RSA_SIZES = (2048, 3072, 4096)
#: Curve sizes in bits, for a ``key_size`` given alongside (or instead of) ``crv``.
CURVE_BITS = {"P-256": 256, "P-384": 384, "P-521": 521, "P-256K": 256}
_CURVE_OF_SIZE = {256: "P-256", 384: "P-384", 521: "P-521"}
DEFAULT_CURVE = "P-256"
_CRV_OF_CURVE = {curve().name: crv for crv, curve in CURVES.items()}

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
#: ``days_before_expiry`` may be at most ``validity_months`` times this.
DAYS_PER_MONTH_LIMIT = 27
DEFAULT_LIFETIME_PERCENTAGE = 80
MAX_CTY = 255
#: The Microsoft UPN ``otherName`` of a subject alternative name.
UPN_OID = xb.UPN_OID

#: ``key_ops`` of the backing key by key usage (learn.microsoft.com, *About certificates*).
_USAGE_OPS: dict[str, tuple[str, ...]] = {
    "digitalSignature": ("sign", "verify"),
    "nonRepudiation": ("sign", "verify"),
    "keyCertSign": ("sign", "verify"),
    "cRLSign": ("sign", "verify"),
    "keyEncipherment": ("wrapKey", "unwrapKey"),
    "dataEncipherment": ("encrypt", "decrypt"),
    "encipherOnly": ("encrypt",),
    "decipherOnly": ("decrypt",),
    "keyAgreement": (),
}
#: What each key type can do, in the order ``key_ops`` are listed.
_KTY_OPS = {
    "RSA": ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"),
    "EC": ("sign", "verify"),
}

_CONTENT_TYPE_OF = {c.lower(): c for c in CONTENT_TYPES}
_ACTION_OF = {a.lower(): a for a in ACTION_TYPES}
_USAGE_OF = {u.lower(): u for u in KEY_USAGES}
_ISSUER_OF = {SELF.lower(): SELF, UNKNOWN.lower(): UNKNOWN}

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DNS = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*\.?")
_MAILBOX = re.compile(r"[^@\s]+@[^@\s]+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")


def _show(value: Any) -> str:
    """A short repr of client input for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- the policy -------------------------------------------------------------------------------


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
_SAN_FIELDS = (
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


@dataclass(frozen=True, slots=True)
class CertificatePolicy:
    """A certificate's policy as stored (one per certificate name, not per version)."""

    key: KeyProps
    secret_content_type: str
    x509: X509Props
    actions: tuple[LifetimeAction, ...]
    issuer: IssuerRef
    enabled: bool = True
    created: int | None = None
    updated: int | None = None

    # --- from clients -------------------------------------------------------------------

    @classmethod
    def from_request(
        cls, doc: Any, now: int, *, field: str = "policy", min_months: int = 1
    ) -> CertificatePolicy:
        """Validate a create body's policy and fill Azure's defaults; messages name the field
        path under ``field``.

        Missing members get what the real service fills in: ``key_props`` RSA 2048, exportable,
        no key reuse (EC: P-256); ``contentType`` PKCS#12; ``ekus`` serverAuth and clientAuth;
        ``key_usage`` digitalSignature and keyEncipherment; 12 months; not a CA; issuer
        ``Self``; enabled; and :func:`default_actions`. An explicit empty list (``ekus: []``,
        ``lifetime_actions: []``) stays empty. ``id``, ``attributes.created``/``updated`` and
        unknown members are ignored; a ``crv`` next to an RSA ``kty`` is ignored too."""
        if not isinstance(doc, dict):
            raise BadParameter(f"{field} must be a JSON object")
        key = _parse_key(doc.get("key_props"), f"{field}.key_props")
        content_type = _parse_content_type(doc.get("secret_props"), f"{field}.secret_props")
        props = _parse_x509(doc.get("x509_props"), f"{field}.x509_props", min_months)
        issuer = _parse_issuer(doc.get("issuer"), f"{field}.issuer", SELF)
        actions = _parse_actions(
            doc.get("lifetime_actions"),
            f"{field}.lifetime_actions",
            issuer,
            props.validity_months,
        )
        enabled = _parse_enabled(doc.get("attributes"), f"{field}.attributes")
        return cls(key, content_type, props, actions, issuer, enabled, now, now)

    def merged(self, patch: Any, now: int, *, min_months: int = 1) -> CertificatePolicy:
        """``PATCH .../policy``: the members ``patch`` gives replace those of this policy,
        objects merged member by member (``x509_props.sans.dns_names`` alone can change),
        arrays and scalars replaced whole, ``null`` meaning "not given". The result is
        validated as a whole with :meth:`from_request`'s rules; ``created`` is kept.

        Changing the key's shape (another base ``kty``, or a ``key_size`` or ``crv``) drops the
        old ``key_size``/``crv`` that the patch does not give, so ``{"kty": "EC"}`` alone
        turns an RSA 2048 policy into EC P-256 instead of failing on the stale size."""
        if not isinstance(patch, dict):
            raise BadParameter("policy must be a JSON object")
        base = self._body()
        base["attributes"] = {"enabled": self.enabled}
        key_patch = patch.get("key_props")
        if isinstance(key_patch, dict):
            base["key_props"] = _reshape_key(base["key_props"], key_patch)
        built = CertificatePolicy.from_request(_merge(base, patch), now, min_months=min_months)
        created = self.created if self.created is not None else now
        return dataclasses.replace(built, created=created, updated=now)

    @classmethod
    def for_import(
        cls,
        given: Any,
        cert: Certificate,
        now: int,
        *,
        content_type_hint: str | None,
    ) -> CertificatePolicy:
        """The policy of an imported certificate, reflecting it as the real service does.

        From the certificate: the subject (RFC 4514 text), SANs, ``ekus`` and ``key_usage``
        (``[]`` when it has no such extension), the CA flag, ``validity_months`` (see
        :func:`validity_months_between`) and the key's ``kty``/``key_size``/``crv``. From
        ``given`` (the import body's ``policy``, validated, may be ``None``): ``exportable``,
        ``reuse_key``, an ``-HSM`` ``kty``, ``contentType`` (else ``content_type_hint``, else
        PKCS#12), ``issuer`` (default ``Unknown``), ``lifetime_actions`` (default per issuer:
        80 % EmailContacts for ``Unknown``) and ``attributes.enabled``. ``x509_props`` in
        ``given`` are ignored: the certificate says what it is."""
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise BadParameter("policy must be a JSON object")
        key = _key_of_certificate(cert, _parse_key(given.get("key_props"), "policy.key_props"))
        default_type = PKCS12
        if content_type_hint is not None:
            canonical = _CONTENT_TYPE_OF.get(content_type_hint.lower())
            if canonical is None:
                raise ValueError(f"content_type_hint {content_type_hint!r} is not a content type")
            default_type = canonical
        content_type = _parse_content_type(
            given.get("secret_props"), "policy.secret_props", default_type
        )
        props = _x509_of_certificate(cert)
        issuer = _parse_issuer(given.get("issuer"), "policy.issuer", UNKNOWN)
        actions = _parse_actions(
            given.get("lifetime_actions"),
            "policy.lifetime_actions",
            issuer,
            props.validity_months,
        )
        enabled = _parse_enabled(given.get("attributes"), "policy.attributes")
        return cls(key, content_type, props, actions, issuer, enabled, now, now)

    # --- to clients -----------------------------------------------------------------------

    def to_response(self, policy_id: str) -> dict[str, Any]:
        """The wire body (GET/PATCH policy, and ``policy`` in a certificate bundle). Optional
        members without a value are left out, as the service does: ``key_size`` of an EC key
        without one, ``crv`` of RSA keys, an empty ``subject``, empty SAN lists, ``cty`` and
        ``cert_transparency``. ``sans`` itself, ``ekus`` and ``key_usage`` are always present
        (possibly empty)."""
        attributes: dict[str, Any] = {"enabled": self.enabled}
        if self.created is not None:
            attributes["created"] = self.created
        if self.updated is not None:
            attributes["updated"] = self.updated
        return {"id": policy_id, **self._body(), "attributes": attributes}

    def _body(self) -> dict[str, Any]:
        key: dict[str, Any] = {"exportable": self.key.exportable, "kty": self.key.kty}
        if self.key.key_size is not None:
            key["key_size"] = self.key.key_size
        key["reuse_key"] = self.key.reuse_key
        if self.key.crv is not None:
            key["crv"] = self.key.crv
        x = self.x509
        props: dict[str, Any] = {}
        if x.subject:
            props["subject"] = x.subject
        props["sans"] = {
            wire: list(getattr(x.sans, attr))
            for wire, attr, _ in _SAN_FIELDS
            if getattr(x.sans, attr)
        }
        props["ekus"] = list(x.ekus)
        props["key_usage"] = list(x.key_usage)
        props["validity_months"] = x.validity_months
        props["basic_constraints"] = {"ca": x.ca}
        issuer: dict[str, Any] = {"name": self.issuer.name}
        if self.issuer.cty is not None:
            issuer["cty"] = self.issuer.cty
        if self.issuer.cert_transparency is not None:
            issuer["cert_transparency"] = self.issuer.cert_transparency
        return {
            "key_props": key,
            "secret_props": {"contentType": self.secret_content_type},
            "x509_props": props,
            "lifetime_actions": [
                {"trigger": a.trigger(), "action": {"action_type": a.action}} for a in self.actions
            ],
            "issuer": issuer,
        }

    # --- storage --------------------------------------------------------------------------

    def to_doc(self) -> dict[str, Any]:
        """The storage form (JSON-able; every member explicit)."""
        k, x, s = self.key, self.x509, self.x509.sans
        return {
            "key": {
                "exportable": k.exportable,
                "kty": k.kty,
                "keySize": k.key_size,
                "reuseKey": k.reuse_key,
                "crv": k.crv,
            },
            "contentType": self.secret_content_type,
            "x509": {
                "subject": x.subject,
                "sans": {
                    "dnsNames": list(s.dns_names),
                    "emails": list(s.emails),
                    "upns": list(s.upns),
                    "uris": list(s.uris),
                    "ipAddresses": list(s.ip_addresses),
                },
                "ekus": list(x.ekus),
                "keyUsage": list(x.key_usage),
                "validityMonths": x.validity_months,
                "ca": x.ca,
            },
            "actions": [
                {
                    "action": a.action,
                    "lifetimePercentage": a.lifetime_percentage,
                    "daysBeforeExpiry": a.days_before_expiry,
                }
                for a in self.actions
            ],
            "issuer": {
                "name": self.issuer.name,
                "cty": self.issuer.cty,
                "certTransparency": self.issuer.cert_transparency,
            },
            "enabled": self.enabled,
            "created": self.created,
            "updated": self.updated,
        }

    @classmethod
    def from_doc(cls, doc: Any) -> CertificatePolicy:
        """Read :meth:`to_doc` back; :class:`IntegrityError` if it is malformed. Only the
        shape and the enumerations are checked: the request rules were applied when it was
        written (and may change later)."""
        try:
            return cls._from_doc(doc)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise IntegrityError("stored certificate policy is malformed") from None

    @classmethod
    def _from_doc(cls, doc: Any) -> CertificatePolicy:
        k, x, i = _dict(doc["key"]), _dict(doc["x509"]), _dict(doc["issuer"])
        s = _dict(x["sans"])
        kty = _typed(k["kty"], str)
        if kty not in KTYS:
            raise ValueError("kty")
        key = KeyProps(
            exportable=_typed(k["exportable"], bool),
            kty=kty,
            key_size=_opt_int(k["keySize"]),
            reuse_key=_typed(k["reuseKey"], bool),
            crv=_opt(k["crv"], str),
        )
        content_type = _typed(doc["contentType"], str)
        if content_type not in CONTENT_TYPES:
            raise ValueError("contentType")
        usages = _strings(x["keyUsage"])
        if any(u not in KEY_USAGES for u in usages):
            raise ValueError("keyUsage")
        props = X509Props(
            subject=_typed(x["subject"], str),
            sans=SubjectAlternativeNames(
                dns_names=_strings(s["dnsNames"]),
                emails=_strings(s["emails"]),
                upns=_strings(s["upns"]),
                uris=_strings(s["uris"]),
                ip_addresses=_strings(s["ipAddresses"]),
            ),
            ekus=_strings(x["ekus"]),
            key_usage=usages,
            validity_months=_int(x["validityMonths"]),
            ca=_typed(x["ca"], bool),
        )
        actions = []
        for item in _list(doc["actions"]):
            a = _dict(item)
            action = LifetimeAction(
                _typed(a["action"], str),
                _opt_int(a["lifetimePercentage"]),
                _opt_int(a["daysBeforeExpiry"]),
            )
            if action.action not in ACTION_TYPES or len(action.trigger()) != 1:
                raise ValueError("action")
            if action.lifetime_percentage is not None and action.days_before_expiry is not None:
                raise ValueError("trigger")
            actions.append(action)
        issuer = IssuerRef(
            name=_typed(i["name"], str),
            cty=_opt(i["cty"], str),
            cert_transparency=_opt(i["certTransparency"], bool),
        )
        return cls(
            key=key,
            secret_content_type=content_type,
            x509=props,
            actions=tuple(actions),
            issuer=issuer,
            enabled=_typed(doc["enabled"], bool),
            created=_opt_int(doc["created"]),
            updated=_opt_int(doc["updated"]),
        )

    # --- what the policy implies ----------------------------------------------------------

    def key_ops(self) -> tuple[str, ...]:
        """The backing key's ``key_ops`` from ``key_usage`` (digitalSignature, nonRepudiation,
        keyCertSign, cRLSign: sign, verify; keyEncipherment: wrapKey, unwrapKey;
        dataEncipherment: encrypt, decrypt; encipherOnly: encrypt; decipherOnly: decrypt),
        limited to what the key type can do (an EC key only signs and verifies) and listed in
        the order encrypt, decrypt, sign, verify, wrapKey, unwrapKey. No key usage at all (an
        imported certificate without the extension, which X.509 reads as "unrestricted")
        gives every operation of the key type. Unconfirmed against the real service beyond
        the documented table."""
        possible = _KTY_OPS[self.key.base_kty]
        if not self.x509.key_usage:
            return possible
        wanted = {op for usage in self.x509.key_usage for op in _USAGE_OPS.get(usage, ())}
        return tuple(op for op in possible if op in wanted)

    def validity_seconds(self) -> int:
        """How long a version issued under this policy is valid: ``validity_months`` x 365/12
        days, rounded half up to whole days. 12 months is 365 days, as the real service issues
        them (``exp = created + 365 days``, recorded); other month counts are unconfirmed
        (1 month = 30 days, 6 = 183, 24 = 730)."""
        return (self.x509.validity_months * 365 + 6) // 12 * DAY


# --- schedule ---------------------------------------------------------------------------------


def _due_times(policy: CertificatePolicy, not_before: int, not_after: int) -> dict[str, int]:
    """The earliest due time of each action type; nothing when the policy is disabled."""
    if not policy.enabled:
        return {}
    earliest: dict[str, int] = {}
    for a in policy.actions:
        at = a.due_at(not_before, not_after)
        earliest[a.action] = min(at, earliest.get(a.action, at))
    return earliest


def renewal_due(
    policy: CertificatePolicy, not_before: int, not_after: int
) -> tuple[str, int] | None:
    """The first lifetime action and when it is due for a version valid ``[not_before,
    not_after]`` (possibly in the past: the scheduler was down). ``lifetime_percentage`` p is
    due at ``not_before + (not_after - not_before) * p / 100`` (rounded down to the second),
    ``days_before_expiry`` d at ``not_after - d days``. EmailContacts first on a tie; ``None``
    without actions or when the policy is disabled (``attributes.enabled: false``)."""
    times = _due_times(policy, not_before, not_after)
    if not times:
        return None
    return min(times.items(), key=lambda item: (item[1], _ORDER.get(item[0], 2)))


def due_actions(
    policy: CertificatePolicy,
    not_before: int,
    not_after: int,
    now: int,
    *,
    done: frozenset[str],
) -> list[str]:
    """The actions due at ``now`` for the current version and not yet carried out for it
    (``done`` holds the action names already run for this version), EmailContacts before
    AutoRenew whatever their times. Each type at most once."""
    times = _due_times(policy, not_before, not_after)
    due = [action for action, at in times.items() if at <= now and action not in done]
    return sorted(due, key=lambda action: _ORDER.get(action, 2))


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


# --- subject ------------------------------------------------------------------------------------


def parse_subject(text: str, field: str = "policy.x509_props.subject") -> x509.Name:
    """An X.500 name from the text Azure takes (``CN=a, O=b, C=US``; ``cn=MyCert``): the
    parser of :mod:`kvault.crypto.x509build`, so what validates here also issues.
    :class:`BadParameter` names ``field``."""
    try:
        return xb.parse_subject(text)
    except xb.CertError as exc:
        raise BadParameter(
            f"{field} is not a valid X.500 distinguished name ({exc}), got {_show(text)}"
        ) from None


def _object_id(dotted: str) -> ObjectIdentifier | None:
    if not _OID.fullmatch(dotted):
        return None
    try:
        return ObjectIdentifier(dotted)
    except ValueError:
        return None


# --- request parsing ----------------------------------------------------------------------------


def _obj(value: Any, path: str) -> dict[str, Any]:
    """An optional object member (``None`` reads as ``{}``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadParameter(f"{path} must be an object")
    return value


def _flag(value: Any, path: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadParameter(f"{path} must be true or false, got {_show(value)}")
    return value


def _parse_key(doc: Any, path: str) -> KeyProps:
    kp = _obj(doc, path)
    kty = kp.get("kty")
    if kty is None:
        kty = "RSA"
    if not isinstance(kty, str) or kty not in KTYS:
        raise BadParameter(f"{path}.kty must be one of {', '.join(KTYS)}, got {_show(kty)}")
    hsm = kty.endswith("-HSM")
    exportable = _flag(kp.get("exportable"), f"{path}.exportable", not hsm)
    if hsm and exportable:
        raise BadParameter(
            f"{path}.exportable must be false for kty {kty}: an HSM key never leaves the HSM"
        )
    size = kp.get("key_size")
    if size is not None and not _is_int(size):
        raise BadParameter(f"{path}.key_size must be an integer, got {_show(size)}")
    reuse = _flag(kp.get("reuse_key"), f"{path}.reuse_key", False)
    crv = kp.get("crv")
    if kty.removesuffix("-HSM") == "RSA":
        if size is None:
            size = 2048
        elif size not in RSA_SIZES:
            raise BadParameter(
                f"{path}.key_size must be 2048, 3072 or 4096 for {kty} keys, got {size}"
            )
        return KeyProps(exportable, kty, size, reuse, None)
    if crv is not None:
        if not isinstance(crv, str) or crv not in CURVE_BITS:
            raise BadParameter(
                f"{path}.crv must be one of {', '.join(CURVE_BITS)}, got {_show(crv)}"
            )
        if size is not None and size != CURVE_BITS[crv]:
            raise BadParameter(
                f"{path}.key_size must be {CURVE_BITS[crv]} for curve {crv}, got {size}"
            )
    elif size is not None:
        crv = _CURVE_OF_SIZE.get(size)
        if crv is None:
            raise BadParameter(
                f"{path}.key_size must be 256, 384 or 521 for {kty} keys, got {size}"
            )
    else:
        crv = DEFAULT_CURVE
    return KeyProps(exportable, kty, size, reuse, crv)


def _parse_content_type(doc: Any, path: str, default: str = PKCS12) -> str:
    value = _obj(doc, path).get("contentType")
    if value is None:
        return default
    canonical = _CONTENT_TYPE_OF.get(value.lower()) if isinstance(value, str) else None
    if canonical is None:
        raise BadParameter(f"{path}.contentType must be {PKCS12} or {PEM}, got {_show(value)}")
    return canonical


def _san_check(kind: str) -> Callable[[str], bool]:
    """Whether one subject alternative name of ``kind`` (a :class:`xb.Names` field) is valid,
    by the rules the certificate is issued with."""

    def check(value: str) -> bool:
        try:
            xb.Names(**{kind: (value,)})
        except xb.CertError:
            return False
        return True

    return check


_SAN_CHECKS = {
    "dns_names": _san_check("dns"),
    "emails": _san_check("emails"),
    "upns": _san_check("upns"),
    "uris": _san_check("uris"),
    "ipAddresses": _san_check("ips"),
}


def _strings_of(value: Any, path: str, what: str, check: Callable[[str], bool]) -> tuple[str, ...]:
    """An array of strings each passing ``check``; duplicates dropped, order kept."""
    if not isinstance(value, list):
        raise BadParameter(f"{path} must be an array")
    out: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not check(item):
            raise BadParameter(f"{path}[{index}] must be {what}, got {_show(item)}")
        if item not in out:
            out.append(item)
    return tuple(out)


def _parse_sans(doc: Any, path: str) -> SubjectAlternativeNames:
    sans = _obj(doc, path)
    found: dict[str, tuple[str, ...]] = {}
    for wire, attr, what in _SAN_FIELDS:
        value = sans.get(wire)
        if value is not None:
            found[attr] = _strings_of(value, f"{path}.{wire}", what, _SAN_CHECKS[wire])
    return SubjectAlternativeNames(**found)


def _parse_key_usage(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise BadParameter(f"{path} must be an array")
    out: list[str] = []
    for index, item in enumerate(value):
        canonical = _USAGE_OF.get(item.lower()) if isinstance(item, str) else None
        if canonical is None:
            raise BadParameter(
                f"{path}[{index}] must be one of {', '.join(KEY_USAGES)}, got {_show(item)}"
            )
        if canonical not in out:
            out.append(canonical)
    if ("encipherOnly" in out or "decipherOnly" in out) and "keyAgreement" not in out:
        raise BadParameter(f"{path}: encipherOnly and decipherOnly need keyAgreement")
    return tuple(out)


def _parse_x509(doc: Any, path: str, min_months: int) -> X509Props:
    xp = _obj(doc, path)
    subject = xp.get("subject")
    if subject is None:
        subject = ""
    if not isinstance(subject, str):
        raise BadParameter(f"{path}.subject must be a string, got {_show(subject)}")
    if subject.strip():
        parse_subject(subject, f"{path}.subject")
    else:
        subject = ""
    sans = _parse_sans(xp.get("sans"), f"{path}.sans")
    ekus = xp.get("ekus")
    ekus = (
        DEFAULT_EKUS
        if ekus is None
        else _strings_of(
            ekus,
            f"{path}.ekus",
            "a dotted-decimal OID such as 1.3.6.1.5.5.7.3.1",
            lambda s: _object_id(s) is not None,
        )
    )
    usage = xp.get("key_usage")
    key_usage = DEFAULT_KEY_USAGE if usage is None else _parse_key_usage(usage, f"{path}.key_usage")
    months = xp.get("validity_months")
    if months is None:
        months = DEFAULT_VALIDITY_MONTHS
    if not _is_int(months) or not min_months <= months <= MAX_VALIDITY_MONTHS:
        raise BadParameter(
            f"{path}.validity_months must be an integer from {min_months} to "
            f"{MAX_VALIDITY_MONTHS}, got {_show(months)}"
        )
    constraints = _obj(xp.get("basic_constraints"), f"{path}.basic_constraints")
    ca = _flag(constraints.get("ca"), f"{path}.basic_constraints.ca", False)
    if not subject and not sans:
        raise BadParameter(f"{path}: a subject or a subject alternative name is required")
    return X509Props(subject, sans, ekus, key_usage, months, ca)


def _parse_issuer(doc: Any, path: str, default: str) -> IssuerRef:
    issuer = _obj(doc, path)
    name = issuer.get("name")
    if name is None:
        name = default
    if not isinstance(name, str):
        raise BadParameter(f"{path}.name must be a string, got {_show(name)}")
    canonical = _ISSUER_OF.get(name.lower())
    if canonical is not None:
        name = canonical
    elif not ITEM_NAME.fullmatch(name):
        raise BadParameter(
            f"{path}.name must be Self, Unknown or an issuer name of 1-127 letters, digits "
            f"and hyphens, got {_show(name)}"
        )
    cty = issuer.get("cty")
    if cty is not None and (not isinstance(cty, str) or len(cty) > MAX_CTY):
        raise BadParameter(f"{path}.cty must be a string of at most {MAX_CTY} characters")
    transparency = issuer.get("cert_transparency")
    if transparency is not None and not isinstance(transparency, bool):
        raise BadParameter(
            f"{path}.cert_transparency must be true or false, got {_show(transparency)}"
        )
    return IssuerRef(name, cty, transparency)


def _parse_actions(
    doc: Any, path: str, issuer: IssuerRef, months: int
) -> tuple[LifetimeAction, ...]:
    """``lifetime_actions``: Azure's default when absent; at most one action ("At most one
    action is allowed" is the real service's BadParameter)."""
    if doc is None:
        return default_actions(issuer)
    if not isinstance(doc, list):
        raise BadParameter(f"{path} must be an array of lifetime actions")
    if len(doc) > 1:
        raise BadParameter(f"{path}: at most one action is allowed")
    return tuple(_parse_action(item, f"{path}[{i}]", months) for i, item in enumerate(doc))


def _parse_action(item: Any, path: str, months: int) -> LifetimeAction:
    if not isinstance(item, dict):
        raise BadParameter(f"{path} must be an object with a trigger and an action")
    action = item.get("action")
    kind = action.get("action_type") if isinstance(action, dict) else None
    canonical = _ACTION_OF.get(kind.lower()) if isinstance(kind, str) else None
    if canonical is None:
        raise BadParameter(
            f"{path}.action.action_type must be AutoRenew or EmailContacts, got {_show(kind)}"
        )
    trigger = item.get("trigger")
    if not isinstance(trigger, dict):
        raise BadParameter(
            f"{path}.trigger must be an object with lifetime_percentage or days_before_expiry"
        )
    percentage = trigger.get("lifetime_percentage")
    days = trigger.get("days_before_expiry")
    if (percentage is None) == (days is None):
        raise BadParameter(
            f"{path}.trigger must have exactly one of lifetime_percentage and days_before_expiry"
        )
    if percentage is not None:
        if not _is_int(percentage) or not 1 <= percentage <= 99:
            raise BadParameter(
                f"{path}.trigger.lifetime_percentage must be an integer from 1 to 99, "
                f"got {_show(percentage)}"
            )
        return LifetimeAction(canonical, lifetime_percentage=percentage)
    limit = months * DAYS_PER_MONTH_LIMIT
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= limit:
        raise BadParameter(
            f"{path}.trigger.days_before_expiry must be an integer from 1 to {limit} "
            f"(validity_months {months} x {DAYS_PER_MONTH_LIMIT}), got {_show(days)}"
        )
    return LifetimeAction(canonical, days_before_expiry=days)


def _parse_enabled(doc: Any, path: str) -> bool:
    return _flag(_obj(doc, path).get("enabled"), f"{path}.enabled", True)


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` over ``base``: objects merged member by member, anything else replaced,
    ``null`` members skipped."""
    out = dict(base)
    for name, value in patch.items():
        if value is None:
            continue
        current = out.get(name)
        if isinstance(value, dict) and isinstance(current, dict):
            out[name] = _merge(current, value)
        else:
            out[name] = value
    return out


def _reshape_key(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The current ``key_props`` without the ``key_size``/``crv`` a shape-changing patch
    makes stale (see :meth:`CertificatePolicy.merged`)."""
    kty = patch.get("kty")
    other_base = isinstance(kty, str) and kty.removesuffix("-HSM") != str(
        base.get("kty", "RSA")
    ).removesuffix("-HSM")
    if other_base or patch.get("key_size") is not None or patch.get("crv") is not None:
        return {k: v for k, v in base.items() if k not in ("key_size", "crv")}
    return base


# --- import -------------------------------------------------------------------------------------


def _key_of_certificate(cert: Certificate, given: KeyProps) -> KeyProps:
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


def _x509_of_certificate(cert: Certificate) -> X509Props:
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


# --- storage helpers ----------------------------------------------------------------------------


def _typed(value: Any, kind: type[Any]) -> Any:
    if kind is int:
        return _int(value)
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}")
    return value


def _int(value: Any) -> int:
    if not _is_int(value):
        raise TypeError("expected int")
    return int(value)


def _opt(value: Any, kind: type[Any]) -> Any:
    return None if value is None else _typed(value, kind)


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("expected object")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("expected array")
    return value


def _strings(value: Any) -> tuple[str, ...]:
    items = _list(value)
    if not all(isinstance(item, str) for item in items):
        raise TypeError("expected strings")
    return tuple(items)
