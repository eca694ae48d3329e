"""A client's certificate policy, checked member by member: :class:`BadParameter` names the
field path at fault, and Azure's server-filled defaults come in where a member is missing.
Enumerations are read case-insensitively and returned in Azure's exact case.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from kvault.crypto import x509build as xb
from kvault.errors import BadParameter
from kvault.vault.certificates.policy_model import (
    ACTION_TYPES,
    CONTENT_TYPE_OF,
    CURVE_BITS,
    DAYS_PER_MONTH_LIMIT,
    DEFAULT_CURVE,
    DEFAULT_EKUS,
    DEFAULT_KEY_USAGE,
    DEFAULT_VALIDITY_MONTHS,
    KEY_USAGES,
    KTYS,
    MAX_CTY,
    MAX_VALIDITY_MONTHS,
    MAX_VALIDITY_SECONDS,
    PEM,
    PKCS12,
    RSA_SIZES,
    SAN_FIELDS,
    SELF,
    UNKNOWN,
    IssuerRef,
    KeyProps,
    LifetimeAction,
    SubjectAlternativeNames,
    X509Props,
    default_actions,
    is_int,
)
from kvault.vault.names import ITEM_NAME

_CURVE_OF_SIZE = {256: "P-256", 384: "P-384", 521: "P-521"}
_ACTION_OF = {a.lower(): a for a in ACTION_TYPES}
_USAGE_OF = {u.lower(): u for u in KEY_USAGES}
_ISSUER_OF = {SELF.lower(): SELF, UNKNOWN.lower(): UNKNOWN}
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")


def _show(value: Any) -> str:
    """A short repr of client input for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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


def parse_key(doc: Any, path: str) -> KeyProps:
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
    if size is not None and not is_int(size):
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


def parse_content_type(doc: Any, path: str, default: str = PKCS12) -> str:
    value = _obj(doc, path).get("contentType")
    if value is None:
        return default
    canonical = CONTENT_TYPE_OF.get(value.lower()) if isinstance(value, str) else None
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
    for wire, attr, what in SAN_FIELDS:
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


def parse_x509(doc: Any, path: str, validity_floor: int | None) -> X509Props:
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
    if not is_int(months) or not 1 <= months <= MAX_VALIDITY_MONTHS:
        raise BadParameter(
            f"{path}.validity_months must be an integer from 1 to "
            f"{MAX_VALIDITY_MONTHS}, got {_show(months)}"
        )
    seconds = _validity_seconds(xp.get("validity_seconds"), path, validity_floor)
    constraints = _obj(xp.get("basic_constraints"), f"{path}.basic_constraints")
    ca = _flag(constraints.get("ca"), f"{path}.basic_constraints.ca", False)
    if not subject and not sans:
        raise BadParameter(f"{path}: a subject or a subject alternative name is required")
    return X509Props(subject, sans, ekus, key_usage, months, ca, seconds)


def _validity_seconds(value: Any, path: str, floor: int | None) -> int | None:
    """The dev-only ``validity_seconds``: refused unless this process has a validity floor."""
    if value is None:
        return None
    if floor is None:
        raise BadParameter(
            f"{path}.validity_seconds is for tests and demos only: this kvault does not "
            "accept it (a dev validity floor is not set); use validity_months"
        )
    if not is_int(value) or not floor <= value <= MAX_VALIDITY_SECONDS:
        raise BadParameter(
            f"{path}.validity_seconds must be an integer from {floor} (this kvault's dev "
            f"validity floor) to {MAX_VALIDITY_SECONDS}, got {_show(value)}"
        )
    return int(value)


def parse_issuer(doc: Any, path: str, default: str) -> IssuerRef:
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


def parse_actions(
    doc: Any, path: str, issuer: IssuerRef, props: X509Props
) -> tuple[LifetimeAction, ...]:
    """``lifetime_actions``: Azure's default when absent; at most one action ("At most one
    action is allowed" is the real service's BadParameter)."""
    if doc is None:
        return default_actions(issuer)
    if not isinstance(doc, list):
        raise BadParameter(f"{path} must be an array of lifetime actions")
    if len(doc) > 1:
        raise BadParameter(f"{path}: at most one action is allowed")
    return tuple(_parse_action(item, f"{path}[{i}]", props) for i, item in enumerate(doc))


def _parse_action(item: Any, path: str, props: X509Props) -> LifetimeAction:
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
        if not is_int(percentage) or not 1 <= percentage <= 99:
            raise BadParameter(
                f"{path}.trigger.lifetime_percentage must be an integer from 1 to 99, "
                f"got {_show(percentage)}"
            )
        return LifetimeAction(canonical, lifetime_percentage=percentage)
    if props.validity_seconds is not None:
        raise BadParameter(
            f"{path}.trigger.days_before_expiry cannot time a certificate of validity_seconds "
            f"{props.validity_seconds}: use lifetime_percentage"
        )
    months = props.validity_months
    limit = months * DAYS_PER_MONTH_LIMIT
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= limit:
        raise BadParameter(
            f"{path}.trigger.days_before_expiry must be an integer from 1 to {limit} "
            f"(validity_months {months} x {DAYS_PER_MONTH_LIMIT}), got {_show(days)}"
        )
    return LifetimeAction(canonical, days_before_expiry=days)


def parse_enabled(doc: Any, path: str) -> bool:
    return _flag(_obj(doc, path).get("enabled"), f"{path}.enabled", True)


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` over ``base``: objects merged member by member, anything else replaced,
    ``null`` members skipped."""
    out = dict(base)
    for name, value in patch.items():
        if value is None:
            continue
        current = out.get(name)
        if isinstance(value, dict) and isinstance(current, dict):
            out[name] = merge(current, value)
        else:
            out[name] = value
    return out


def reshape_key(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The current ``key_props`` without the ``key_size``/``crv`` a shape-changing patch
    makes stale (see :meth:`CertificatePolicy.merged`)."""
    kty = patch.get("kty")
    other_base = isinstance(kty, str) and kty.removesuffix("-HSM") != str(
        base.get("kty", "RSA")
    ).removesuffix("-HSM")
    if other_base or patch.get("key_size") is not None or patch.get("crv") is not None:
        return {k: v for k, v in base.items() if k not in ("key_size", "crv")}
    return base


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
