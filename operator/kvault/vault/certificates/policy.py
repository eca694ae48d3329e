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

Short-lived certificates: ``validity_months`` is whole months, from 1, as in Azure. For tests
and demos of renewal on real time, a process started with a dev validity floor (``kvault
operator``/``kvault server --dev-certificate-validity-floor SECONDS``; Helm
``dev.certificateValidityFloorSeconds``; never set by default) also takes kvault's own
``x509_props.validity_seconds`` (from the floor to one day), timed by ``lifetime_percentage``
triggers only. Without the floor that member is refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from cryptography.x509 import Certificate

from kvault.errors import BadParameter, IntegrityError
from kvault.vault.certificates import policy_request as rq
from kvault.vault.certificates.policy_model import (
    ACTION_TYPES,
    AUTO_RENEW,
    CONTENT_TYPE_OF,
    CONTENT_TYPES,
    EMAIL_CONTACTS,
    KEY_USAGES,
    KTYS,
    PKCS12,
    SAN_FIELDS,
    SELF,
    UNKNOWN,
    IssuerRef,
    KeyProps,
    LifetimeAction,
    SubjectAlternativeNames,
    X509Props,
    is_int,
)
from kvault.vault.certificates.policy_reflect import key_of_certificate, x509_of_certificate
from kvault.vault.model import DAY

#: Contacts hear about a version before a renewal replaces it.
_ORDER = {EMAIL_CONTACTS: 0, AUTO_RENEW: 1}

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
        cls, doc: Any, now: int, *, field: str = "policy", validity_floor: int | None = None
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
        key = rq.parse_key(doc.get("key_props"), f"{field}.key_props")
        content_type = rq.parse_content_type(doc.get("secret_props"), f"{field}.secret_props")
        props = rq.parse_x509(doc.get("x509_props"), f"{field}.x509_props", validity_floor)
        issuer = rq.parse_issuer(doc.get("issuer"), f"{field}.issuer", SELF)
        actions = rq.parse_actions(
            doc.get("lifetime_actions"),
            f"{field}.lifetime_actions",
            issuer,
            props,
        )
        enabled = rq.parse_enabled(doc.get("attributes"), f"{field}.attributes")
        return cls(key, content_type, props, actions, issuer, enabled, now, now)

    def merged(
        self, patch: Any, now: int, *, validity_floor: int | None = None
    ) -> CertificatePolicy:
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
            base["key_props"] = rq.reshape_key(base["key_props"], key_patch)
        built = CertificatePolicy.from_request(
            rq.merge(base, patch), now, validity_floor=validity_floor
        )
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
        key = key_of_certificate(cert, rq.parse_key(given.get("key_props"), "policy.key_props"))
        default_type = PKCS12
        if content_type_hint is not None:
            canonical = CONTENT_TYPE_OF.get(content_type_hint.lower())
            if canonical is None:
                raise ValueError(f"content_type_hint {content_type_hint!r} is not a content type")
            default_type = canonical
        content_type = rq.parse_content_type(
            given.get("secret_props"), "policy.secret_props", default_type
        )
        props = x509_of_certificate(cert)
        issuer = rq.parse_issuer(given.get("issuer"), "policy.issuer", UNKNOWN)
        actions = rq.parse_actions(
            given.get("lifetime_actions"),
            "policy.lifetime_actions",
            issuer,
            props,
        )
        enabled = rq.parse_enabled(given.get("attributes"), "policy.attributes")
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
            for wire, attr, _ in SAN_FIELDS
            if getattr(x.sans, attr)
        }
        props["ekus"] = list(x.ekus)
        props["key_usage"] = list(x.key_usage)
        props["validity_months"] = x.validity_months
        if x.validity_seconds is not None:
            props["validity_seconds"] = x.validity_seconds
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
                "validitySeconds": x.validity_seconds,
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
            validity_seconds=_opt_int(x.get("validitySeconds")),
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
        if self.x509.validity_seconds is not None:
            return self.x509.validity_seconds
        return (self.x509.validity_months * 365 + 6) // 12 * DAY


# --- schedule ---------------------------------------------------------------------------------


def due_times(policy: CertificatePolicy, not_before: int, not_after: int) -> dict[str, int]:
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
    times = due_times(policy, not_before, not_after)
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
    times = due_times(policy, not_before, not_after)
    due = [action for action, at in times.items() if at <= now and action not in done]
    return sorted(due, key=lambda action: _ORDER.get(action, 2))


# --- storage helpers ----------------------------------------------------------------------------


def _typed(value: Any, kind: type[Any]) -> Any:
    if kind is int:
        return _int(value)
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}")
    return value


def _int(value: Any) -> int:
    if not is_int(value):
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
