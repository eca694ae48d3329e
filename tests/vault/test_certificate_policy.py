"""Certificate policies: validation with Azure's defaults, wire and storage forms, PATCH merging,
the import policy reflecting a certificate, key_ops and the lifetime-action schedule (a fake
clock: plain Unix seconds)."""

from __future__ import annotations

import calendar
import copy
import ipaddress
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kvault.errors import BadParameter, IntegrityError
from kvault.vault.certificates.policy import CertificatePolicy, due_actions, renewal_due
from kvault.vault.certificates.policy_model import (
    CONTENT_TYPES,
    UPN_OID,
    IssuerRef,
    KeyProps,
    LifetimeAction,
    SubjectAlternativeNames,
    X509Props,
)
from kvault.vault.certificates.policy_reflect import validity_months_between
from kvault.vault.certificates.policy_request import parse_subject

DAY = 86_400
NOW = 1_700_000_000
POLICY_ID = "https://v.kv.example/certificates/c1/policy"
SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
#: A certificate the real service issued (JS SDK recording): created - 600 s to created + 365 days.
REC_NBF, REC_EXP = 1613501816, 1645038416


def ts(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    return calendar.timegm((y, m, d, hh, mm, ss, 0, 0, 0))


def create(doc: Any, now: int = NOW, **kw: Any) -> CertificatePolicy:
    return CertificatePolicy.from_request(doc, now, **kw)


def body(policy: CertificatePolicy) -> dict[str, Any]:
    """A policy's wire form as a client would send it back (no id)."""
    out = policy.to_response(POLICY_ID)
    del out["id"]
    return out


def minimal(**x509: Any) -> dict[str, Any]:
    return {"x509_props": {"subject": "CN=a", **x509}}


# --- SDK-shaped bodies and the defaults the real service fills in --------------------------------

#: ``CertificatePolicy.get_default()`` as azure-keyvault-certificates sends it.
SDK_DEFAULT: dict[str, Any] = {
    "x509_props": {"subject": "CN=DefaultPolicy", "sans": {}},
    "issuer": {"name": "Self"},
}

#: The EC policy body the Python SDK sends (note §2.3).
SDK_EC: dict[str, Any] = {
    "key_props": {"exportable": True, "kty": "EC", "crv": "P-256"},
    "secret_props": {"contentType": "application/x-pem-file"},
    "x509_props": {
        "subject": "CN=a",
        "ekus": [SERVER_AUTH, CLIENT_AUTH],
        "sans": {"dns_names": ["a.example"]},
        "key_usage": ["digitalSignature"],
        "validity_months": 12,
    },
    "lifetime_actions": [
        {"trigger": {"days_before_expiry": 30}, "action": {"action_type": "AutoRenew"}}
    ],
    "issuer": {"name": "Self"},
}

#: A real-service answer (JS SDK recording, create with ``key_props: {}``, ``secret_props: {}``,
#: ``x509_props: {subject: "cn=MyCert", sans: {}}``, issuer Self).
RECORDED_CREATE: dict[str, Any] = {
    "id": POLICY_ID,
    "key_props": {"exportable": True, "kty": "RSA", "key_size": 2048, "reuse_key": False},
    "secret_props": {"contentType": "application/x-pkcs12"},
    "x509_props": {
        "subject": "cn=MyCert",
        "sans": {},
        "ekus": [SERVER_AUTH, CLIENT_AUTH],
        "key_usage": ["digitalSignature", "keyEncipherment"],
        "validity_months": 12,
        "basic_constraints": {"ca": False},
    },
    "lifetime_actions": [
        {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}
    ],
    "issuer": {"name": "Self"},
    "attributes": {"enabled": True, "created": NOW, "updated": NOW},
}


def test_defaults_match_the_recorded_real_service_body() -> None:
    sent = {
        "key_props": {},
        "secret_props": {},
        "x509_props": {"subject": "cn=MyCert", "sans": {}},
        "issuer": {"name": "Self"},
    }
    assert create(sent).to_response(POLICY_ID) == RECORDED_CREATE
    # The same with members left out instead of empty.
    assert create({"x509_props": {"subject": "cn=MyCert"}}).to_response(POLICY_ID) == (
        RECORDED_CREATE
    )


def test_sdk_default_policy() -> None:
    policy = create(SDK_DEFAULT)
    expected = copy.deepcopy(RECORDED_CREATE)
    expected["x509_props"]["subject"] = "CN=DefaultPolicy"
    assert policy.to_response(POLICY_ID) == expected
    assert policy.key == KeyProps(True, "RSA", 2048, False, None)
    assert policy.secret_content_type == "application/x-pkcs12"
    assert policy.x509 == X509Props(subject="CN=DefaultPolicy")
    assert policy.actions == (LifetimeAction("AutoRenew", lifetime_percentage=80),)
    assert policy.issuer == IssuerRef("Self")
    assert (policy.enabled, policy.created, policy.updated) == (True, NOW, NOW)


def test_sdk_ec_policy() -> None:
    policy = create(SDK_EC)
    assert policy.key == KeyProps(True, "EC", None, False, "P-256")
    assert policy.to_response(POLICY_ID) == {
        "id": POLICY_ID,
        "key_props": {"exportable": True, "kty": "EC", "reuse_key": False, "crv": "P-256"},
        "secret_props": {"contentType": "application/x-pem-file"},
        "x509_props": {
            "subject": "CN=a",
            "sans": {"dns_names": ["a.example"]},
            "ekus": [SERVER_AUTH, CLIENT_AUTH],
            "key_usage": ["digitalSignature"],
            "validity_months": 12,
            "basic_constraints": {"ca": False},
        },
        "lifetime_actions": [
            {"trigger": {"days_before_expiry": 30}, "action": {"action_type": "AutoRenew"}}
        ],
        "issuer": {"name": "Self"},
        "attributes": {"enabled": True, "created": NOW, "updated": NOW},
    }


FULL: dict[str, Any] = {
    "key_props": {"exportable": False, "kty": "RSA-HSM", "key_size": 4096, "reuse_key": True},
    "secret_props": {"contentType": "application/x-pem-file"},
    "x509_props": {
        "subject": "CN=web, O=Contoso, C=US",
        "sans": {
            "dns_names": ["web.example", "*.web.example"],
            "emails": ["ops@example.com"],
            "upns": ["svc@corp.example"],
            "uris": ["spiffe://cluster/ns/web"],
            "ipAddresses": ["10.0.0.1", "2001:db8::1"],
        },
        "ekus": [SERVER_AUTH],
        "key_usage": ["digitalSignature", "keyCertSign", "cRLSign"],
        "validity_months": 24,
        "basic_constraints": {"ca": True},
    },
    "lifetime_actions": [
        {"trigger": {"lifetime_percentage": 50}, "action": {"action_type": "EmailContacts"}}
    ],
    "issuer": {"name": "my-ca", "cty": "OV-SSL", "cert_transparency": False},
    "attributes": {"enabled": False},
}


@pytest.mark.parametrize(
    "doc",
    [SDK_DEFAULT, SDK_EC, FULL, {**minimal(), "issuer": {"name": "Unknown"}}],
    ids=["default", "ec", "full", "unknown"],
)
def test_to_response_round_trips(doc: dict[str, Any]) -> None:
    policy = create(doc)
    again = create(body(policy))
    assert again == policy
    assert again.to_response(POLICY_ID) == policy.to_response(POLICY_ID)
    # JSON-able as is.
    assert json.loads(json.dumps(policy.to_response(POLICY_ID))) == policy.to_response(POLICY_ID)


def test_full_policy_keeps_every_member() -> None:
    policy = create(FULL)
    assert policy.key == KeyProps(False, "RSA-HSM", 4096, True, None)
    assert policy.x509.sans == SubjectAlternativeNames(
        ("web.example", "*.web.example"),
        ("ops@example.com",),
        ("svc@corp.example",),
        ("spiffe://cluster/ns/web",),
        ("10.0.0.1", "2001:db8::1"),
    )
    assert policy.issuer == IssuerRef("my-ca", "OV-SSL", False)
    assert policy.enabled is False
    out = policy.to_response(POLICY_ID)
    assert out["x509_props"]["sans"] == FULL["x509_props"]["sans"]
    assert out["issuer"] == {"name": "my-ca", "cty": "OV-SSL", "cert_transparency": False}
    assert out["attributes"]["enabled"] is False


def test_unknown_issuer_defaults_to_email_contacts_and_named_to_auto_renew() -> None:
    unknown = create({**minimal(), "issuer": {"name": "Unknown"}})
    assert unknown.actions == (LifetimeAction("EmailContacts", lifetime_percentage=80),)
    named = create({**minimal(), "issuer": {"name": "digicert-1"}})
    assert named.actions == (LifetimeAction("AutoRenew", lifetime_percentage=80),)
    assert create(minimal()).issuer == IssuerRef("Self")


def test_enumerations_are_read_in_any_case_and_written_exactly() -> None:
    policy = create(
        {
            "secret_props": {"contentType": "APPLICATION/X-PEM-FILE"},
            "x509_props": {
                "subject": "CN=a",
                "key_usage": ["DIGITALSIGNATURE", "crlsign", "keyencipherment"],
            },
            "lifetime_actions": [
                {"trigger": {"lifetime_percentage": 10}, "action": {"action_type": "emailcontacts"}}
            ],
            "issuer": {"name": "unknown"},
        }
    )
    out = policy.to_response(POLICY_ID)
    assert out["secret_props"] == {"contentType": "application/x-pem-file"}
    assert out["x509_props"]["key_usage"] == ["digitalSignature", "cRLSign", "keyEncipherment"]
    assert out["lifetime_actions"][0]["action"] == {"action_type": "EmailContacts"}
    assert out["issuer"] == {"name": "Unknown"}
    auto = create({**minimal(), "lifetime_actions": [_action("AUTORENEW", days=5)]})
    assert auto.to_response(POLICY_ID)["lifetime_actions"][0]["action"]["action_type"] == (
        "AutoRenew"
    )
    assert create({**minimal(), "issuer": {"name": "SELF"}}).issuer.name == "Self"


def test_explicit_empty_lists_stay_empty_and_duplicates_go() -> None:
    policy = create(
        {
            "x509_props": {
                "subject": "CN=a",
                "ekus": [],
                "key_usage": [],
                "sans": {"dns_names": ["a.example", "a.example"]},
            },
            "lifetime_actions": [],
        }
    )
    assert policy.x509.ekus == ()
    assert policy.x509.key_usage == ()
    assert policy.actions == ()
    assert policy.x509.sans.dns_names == ("a.example",)
    out = policy.to_response(POLICY_ID)
    assert out["x509_props"]["ekus"] == []
    assert out["lifetime_actions"] == []
    assert create(body(policy)) == policy


def test_san_only_policy_has_no_subject_member() -> None:
    policy = create({"x509_props": {"sans": {"dns_names": ["only.example"]}}})
    assert policy.x509.subject == ""
    assert "subject" not in policy.to_response(POLICY_ID)["x509_props"]
    assert create({"x509_props": {"subject": "  ", "sans": {"upns": ["u@d"]}}}).x509.subject == ""


@pytest.mark.parametrize(
    ("key_props", "expected"),
    [
        ({"kty": "EC"}, KeyProps(True, "EC", None, False, "P-256")),
        ({"kty": "EC-HSM", "crv": "P-521"}, KeyProps(False, "EC-HSM", None, False, "P-521")),
        ({"kty": "EC", "key_size": 384}, KeyProps(True, "EC", 384, False, "P-384")),
        (
            {"kty": "EC", "crv": "P-256K", "key_size": 256},
            KeyProps(True, "EC", 256, False, "P-256K"),
        ),
        ({"kty": "RSA", "key_size": 3072}, KeyProps(True, "RSA", 3072, False, None)),
        ({"kty": "RSA", "crv": "P-256"}, KeyProps(True, "RSA", 2048, False, None)),
        ({"exportable": False, "reuse_key": True}, KeyProps(False, "RSA", 2048, True, None)),
    ],
)
def test_key_props(key_props: dict[str, Any], expected: KeyProps) -> None:
    assert create({**minimal(), "key_props": key_props}).key == expected


def test_ignores_read_only_and_unknown_members() -> None:
    policy = create(
        {
            **minimal(),
            "id": "https://elsewhere/policy",
            "attributes": {"enabled": True, "created": 1, "updated": 2},
            "surprise": {"x": 1},
        }
    )
    assert (policy.created, policy.updated) == (NOW, NOW)


def test_validity_months_bounds_and_the_dev_only_seconds() -> None:
    assert create(minimal(validity_months=1)).x509.validity_months == 1
    with pytest.raises(BadParameter, match=r"validity_months must be an integer from 1 to 1200"):
        create(minimal(validity_months=0))
    assert create(minimal(validity_months=1200)).x509.validity_months == 1200
    with pytest.raises(BadParameter, match=r"validity_seconds is for tests and demos only"):
        create(minimal(validity_seconds=120))
    with pytest.raises(BadParameter, match=r"validity_seconds must be an integer from 60 "):
        create(minimal(validity_seconds=59), validity_floor=60)
    with pytest.raises(BadParameter, match=r"to 86400"):
        create(minimal(validity_seconds=86_401), validity_floor=60)
    short = create(minimal(validity_seconds=120), validity_floor=60)
    assert short.validity_seconds() == 120
    assert short.to_response("p")["x509_props"]["validity_seconds"] == 120
    assert CertificatePolicy.from_doc(short.to_doc()) == short
    assert "validity_seconds" not in create(minimal()).to_response("p")["x509_props"]


# --- validation --------------------------------------------------------------------------------


def _action(kind: Any = "AutoRenew", *, pct: Any = None, days: Any = None) -> dict[str, Any]:
    trigger = {}
    if pct is not None:
        trigger["lifetime_percentage"] = pct
    if days is not None:
        trigger["days_before_expiry"] = days
    return {"trigger": trigger, "action": {"action_type": kind}}


def _with(path: str, value: Any) -> dict[str, Any]:
    """A valid policy with one member (``a.b.c``) replaced."""
    doc: dict[str, Any] = copy.deepcopy(FULL)
    doc["issuer"] = {"name": "Self"}
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return doc


LA0 = r"^policy\.lifetime_actions\[0\]"
BAD: list[tuple[Any, str]] = [
    ("not an object", r"^policy must be a JSON object"),
    (_with("key_props", []), r"^policy\.key_props must be an object"),
    (_with("key_props.exportable", "yes"), r"^policy\.key_props\.exportable must be true or false"),
    (
        _with("key_props.kty", "rsa"),
        r"^policy\.key_props\.kty must be one of RSA, RSA-HSM, EC, EC-HSM",
    ),
    (_with("key_props.kty", "oct"), r"^policy\.key_props\.kty must be one of"),
    (_with("key_props.key_size", 1024), r"^policy\.key_props\.key_size must be 2048, 3072 or 4096"),
    (_with("key_props.key_size", "2048"), r"^policy\.key_props\.key_size must be an integer"),
    (_with("key_props.key_size", True), r"^policy\.key_props\.key_size must be an integer"),
    (_with("key_props.reuse_key", 1), r"^policy\.key_props\.reuse_key must be true or false"),
    (
        {**minimal(), "key_props": {"kty": "EC", "crv": "p-256"}},
        r"^policy\.key_props\.crv must be one of P-256, P-384, P-521, P-256K",
    ),
    (
        {**minimal(), "key_props": {"kty": "EC", "crv": "P-384", "key_size": 256}},
        r"^policy\.key_props\.key_size must be 384 for curve P-384",
    ),
    (
        {**minimal(), "key_props": {"kty": "EC", "key_size": 2048}},
        r"^policy\.key_props\.key_size must be 256, 384 or 521 for EC keys",
    ),
    (_with("secret_props", "pem"), r"^policy\.secret_props must be an object"),
    (
        _with("secret_props.contentType", "text/plain"),
        r"^policy\.secret_props\.contentType must be application/x-pkcs12 or application/x-pem",
    ),
    (_with("x509_props", "CN=a"), r"^policy\.x509_props must be an object"),
    (
        {"x509_props": {}},
        r"^policy\.x509_props: a subject or a subject alternative name is required",
    ),
    ({}, r"^policy\.x509_props: a subject or a subject alternative name is required"),
    (
        {"x509_props": {"subject": "", "sans": {"dns_names": []}}},
        r"^policy\.x509_props: a subject or a subject",
    ),
    (_with("x509_props.subject", 5), r"^policy\.x509_props\.subject must be a string"),
    (
        _with("x509_props.subject", "MyCert"),
        r"^policy\.x509_props\.subject is not a valid X\.500 distinguished name",
    ),
    (
        _with("x509_props.subject", "XX=a"),
        r"^policy\.x509_props\.subject is not a valid .*unknown attribute 'XX'",
    ),
    (_with("x509_props.subject", "CN=a, C=USA"), r"^policy\.x509_props\.subject is not a valid"),
    (
        _with("x509_props.subject", "CN="),
        r"^policy\.x509_props\.subject is not a valid .*empty value",
    ),
    (_with("x509_props.sans", ["a"]), r"^policy\.x509_props\.sans must be an object"),
    (
        _with("x509_props.sans.dns_names", "a.example"),
        r"^policy\.x509_props\.sans\.dns_names must be an array",
    ),
    (
        _with("x509_props.sans.dns_names", ["ok.example", "bad name"]),
        r"^policy\.x509_props\.sans\.dns_names\[1\] must be a DNS name",
    ),
    (
        _with("x509_props.sans.dns_names", [""]),
        r"^policy\.x509_props\.sans\.dns_names\[0\] must be a DNS name",
    ),
    (
        _with("x509_props.sans.emails", ["nobody"]),
        r"^policy\.x509_props\.sans\.emails\[0\] must be an e-mail address",
    ),
    (
        _with("x509_props.sans.upns", [7]),
        r"^policy\.x509_props\.sans\.upns\[0\] must be a user principal name",
    ),
    (
        _with("x509_props.sans.uris", ["/relative"]),
        r"^policy\.x509_props\.sans\.uris\[0\] must be an absolute URI",
    ),
    (
        _with("x509_props.sans.ipAddresses", ["10.0.0.300"]),
        r"^policy\.x509_props\.sans\.ipAddresses\[0\] must be an IPv4 or IPv6 address",
    ),
    (_with("x509_props.ekus", "serverAuth"), r"^policy\.x509_props\.ekus must be an array"),
    (
        _with("x509_props.ekus", ["serverAuth"]),
        r"^policy\.x509_props\.ekus\[0\] must be a dotted-decimal OID",
    ),
    (
        _with("x509_props.ekus", [SERVER_AUTH, "1.3.06.1"]),
        r"^policy\.x509_props\.ekus\[1\] must be a dotted-decimal OID",
    ),
    (
        _with("x509_props.ekus", ["3.1.2"]),
        r"^policy\.x509_props\.ekus\[0\] must be a dotted-decimal OID",
    ),
    (
        _with("x509_props.key_usage", ["digitalSignature", "sign"]),
        r"^policy\.x509_props\.key_usage\[1\] must be one of digitalSignature, nonRepudiation",
    ),
    (
        _with("x509_props.key_usage", ["encipherOnly"]),
        r"^policy\.x509_props\.key_usage: encipherOnly and decipherOnly need keyAgreement",
    ),
    (
        _with("x509_props.validity_months", 0),
        r"^policy\.x509_props\.validity_months must be an integer from 1 to 1200",
    ),
    (
        _with("x509_props.validity_months", 1201),
        r"^policy\.x509_props\.validity_months must be an integer from 1 to 1200",
    ),
    (
        _with("x509_props.validity_months", 12.5),
        r"^policy\.x509_props\.validity_months must be an integer from 1 to 1200",
    ),
    (
        _with("x509_props.basic_constraints", True),
        r"^policy\.x509_props\.basic_constraints must be an object",
    ),
    (
        _with("x509_props.basic_constraints.ca", "no"),
        r"^policy\.x509_props\.basic_constraints\.ca must be true or false",
    ),
    (_with("lifetime_actions", {"trigger": {}}), r"^policy\.lifetime_actions must be an array"),
    (
        _with("lifetime_actions", [_action(pct=50), _action("EmailContacts", pct=40)]),
        r"^policy\.lifetime_actions: at most one action is allowed",
    ),
    (
        _with("lifetime_actions", ["AutoRenew"]),
        r"^policy\.lifetime_actions\[0\] must be an object with a trigger and an action",
    ),
    (
        _with("lifetime_actions", [_action("Renew", pct=50)]),
        r"^policy\.lifetime_actions\[0\]\.action\.action_type must be AutoRenew or EmailContacts",
    ),
    (
        _with("lifetime_actions", [{"trigger": {"lifetime_percentage": 5}}]),
        r"^policy\.lifetime_actions\[0\]\.action\.action_type must be",
    ),
    (
        _with("lifetime_actions", [{"action": {"action_type": "AutoRenew"}}]),
        r"^policy\.lifetime_actions\[0\]\.trigger must be an object",
    ),
    (
        _with("lifetime_actions", [_action()]),
        LA0 + r"\.trigger must have exactly one of lifetime_percentage and days_before_expiry",
    ),
    (
        _with("lifetime_actions", [_action(pct=50, days=10)]),
        r"^policy\.lifetime_actions\[0\]\.trigger must have exactly one",
    ),
    (
        _with("lifetime_actions", [_action(pct=0)]),
        LA0 + r"\.trigger\.lifetime_percentage must be an integer from 1 to 99",
    ),
    (
        _with("lifetime_actions", [_action(pct=100)]),
        LA0 + r"\.trigger\.lifetime_percentage must be an integer from 1 to 99",
    ),
    (
        _with("lifetime_actions", [_action(days=0)]),
        LA0 + r"\.trigger\.days_before_expiry must be an integer from 1 to 648",
    ),
    (
        _with("lifetime_actions", [_action(days=649)]),
        LA0 + r"\.trigger\.days_before_expiry must be an integer from 1 to 648 \(validity_mon",
    ),
    (_with("issuer", "Self"), r"^policy\.issuer must be an object"),
    (_with("issuer.name", ""), r"^policy\.issuer\.name must be Self, Unknown or an issuer name"),
    (
        _with("issuer.name", "my_ca"),
        r"^policy\.issuer\.name must be Self, Unknown or an issuer name",
    ),
    (
        _with("issuer.name", "a" * 128),
        r"^policy\.issuer\.name must be Self, Unknown or an issuer name",
    ),
    (_with("issuer.name", 1), r"^policy\.issuer\.name must be a string"),
    (_with("issuer.cty", 1), r"^policy\.issuer\.cty must be a string"),
    (
        _with("issuer.cert_transparency", "false"),
        r"^policy\.issuer\.cert_transparency must be true or false",
    ),
    (_with("attributes", []), r"^policy\.attributes must be an object"),
    (_with("attributes.enabled", "true"), r"^policy\.attributes\.enabled must be true or false"),
]


@pytest.mark.parametrize(("doc", "message"), BAD)
def test_validation_errors_name_the_field(doc: Any, message: str) -> None:
    with pytest.raises(BadParameter, match=message):
        create(doc)


def test_field_prefix_is_configurable() -> None:
    with pytest.raises(BadParameter, match=r"^parameters\.policy\.key_props\.kty must be"):
        create({**minimal(), "key_props": {"kty": "DSA"}}, field="parameters.policy")


def test_days_before_expiry_limit_follows_validity_months() -> None:
    ok = create({**minimal(validity_months=1), "lifetime_actions": [_action(days=27)]})
    assert ok.actions == (LifetimeAction("AutoRenew", days_before_expiry=27),)
    with pytest.raises(BadParameter, match=r"from 1 to 27 \(validity_months 1 x 27\), got 28"):
        create({**minimal(validity_months=1), "lifetime_actions": [_action(days=28)]})


# --- subjects ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rfc4514"),
    [
        ("cn=MyCert", "CN=MyCert"),
        ("CN=a, O=b, C=US", "CN=a,O=b,C=US"),
        ("CN=a;OU=b ; DC=example;DC=com", "CN=a,OU=b,DC=example,DC=com"),
        ('CN="Contoso, Inc.", O=x', "CN=Contoso\\, Inc.,O=x"),
        ("CN=Contoso\\, Inc.", "CN=Contoso\\, Inc."),
        ("CN=caf\\C3\\A9", "CN=café"),
        ("CN=a+OU=b", "CN=a+OU=b"),
        ("E=ops@example.com, CN=a", "1.2.840.113549.1.9.1=ops@example.com,CN=a"),
        ("OID.2.5.4.3=x, 2.5.4.10=y", "CN=x,O=y"),
        ("S=WA, L=Redmond, STREET=1 Way, SERIALNUMBER=7", "ST=WA,L=Redmond,STREET=1 Way,2.5.4.5=7"),
        ("CN=trailing\\ ", "CN=trailing\\ "),
    ],
)
def test_parse_subject(text: str, rfc4514: str) -> None:
    name = parse_subject(text)
    assert name.rfc4514_string() == rfc4514
    # What the service prints for a certificate reads back to the same name.
    assert parse_subject(name.rfc4514_string()) == name


def test_parse_subject_orders_rdns_like_rfc4514() -> None:
    name = parse_subject("CN=a, O=b, C=US")
    assert [rdn.rfc4514_string() for rdn in name.rdns] == ["C=US", "O=b", "CN=a"]


@pytest.mark.parametrize(
    "text",
    [
        "CN",
        "CN=a,",
        'CN="open',
        'CN="a" x',
        "CN=a\\",
        "CN=\\FF",
        "=a",
        "Q=1",
        "CN=" + "x" * 65,
    ],
)
def test_parse_subject_refuses(text: str) -> None:
    with pytest.raises(BadParameter, match=r"^subj is not a valid X\.500 distinguished name"):
        parse_subject(text, "subj")


# --- merged (PATCH /policy) ---------------------------------------------------------------------


def test_merged_changes_only_given_members() -> None:
    policy = create(FULL, now=100)
    patched = policy.merged(
        {
            "x509_props": {"validity_months": 36, "sans": {"dns_names": ["new.example"]}},
            "issuer": {"cty": None},
        },
        now=200,
    )
    assert patched.x509.validity_months == 36
    assert patched.x509.sans.dns_names == ("new.example",)
    # Other SAN lists, other x509 members and everything else stay.
    assert patched.x509.sans.emails == ("ops@example.com",)
    assert patched.x509.sans.ip_addresses == ("10.0.0.1", "2001:db8::1")
    assert patched.x509.subject == "CN=web, O=Contoso, C=US"
    assert patched.x509.key_usage == policy.x509.key_usage
    assert patched.key == policy.key
    assert patched.issuer == policy.issuer
    assert patched.actions == policy.actions
    assert patched.enabled is False
    assert (patched.created, patched.updated) == (100, 200)


def test_merged_empty_patch_is_the_same_policy() -> None:
    for doc in (SDK_DEFAULT, SDK_EC, FULL):
        policy = create(doc, now=100)
        assert policy.merged({}, now=100) == policy


def test_merged_replaces_arrays_whole() -> None:
    policy = create(FULL)
    patched = policy.merged(
        {
            "x509_props": {"ekus": [CLIENT_AUTH, "1.3.6.1.5.5.7.3.4"]},
            "lifetime_actions": [_action("EmailContacts", days=10)],
        },
        NOW,
    )
    assert patched.x509.ekus == (CLIENT_AUTH, "1.3.6.1.5.5.7.3.4")
    assert patched.actions == (LifetimeAction("EmailContacts", days_before_expiry=10),)


def test_merged_enabled_and_content_type() -> None:
    policy = create(SDK_DEFAULT)
    patched = policy.merged(
        {
            "attributes": {"enabled": False},
            "secret_props": {"contentType": "application/x-pem-file"},
        },
        NOW + 1,
    )
    assert patched.enabled is False
    assert patched.secret_content_type == "application/x-pem-file"
    assert patched.key == policy.key


@pytest.mark.parametrize(
    ("start", "key_patch", "expected"),
    [
        ({}, {"kty": "EC"}, KeyProps(True, "EC", None, False, "P-256")),
        (
            {},
            {"kty": "RSA-HSM", "exportable": False},
            KeyProps(False, "RSA-HSM", 2048, False, None),
        ),
        ({}, {"key_size": 4096}, KeyProps(True, "RSA", 4096, False, None)),
        (
            {"kty": "EC", "key_size": 256},
            {"crv": "P-384"},
            KeyProps(True, "EC", None, False, "P-384"),
        ),
        (
            {"kty": "EC", "crv": "P-521"},
            {"key_size": 384},
            KeyProps(True, "EC", 384, False, "P-384"),
        ),
        ({"kty": "EC", "crv": "P-521"}, {"kty": "RSA"}, KeyProps(True, "RSA", 2048, False, None)),
        (
            {"kty": "EC", "crv": "P-521"},
            {"exportable": False},
            KeyProps(False, "EC", None, False, "P-521"),
        ),
    ],
)
def test_merged_key_shape(
    start: dict[str, Any], key_patch: dict[str, Any], expected: KeyProps
) -> None:
    policy = create({**minimal(), "key_props": start})
    assert policy.merged({"key_props": key_patch}, NOW).key == expected


def test_merged_validates_the_whole_policy() -> None:
    policy = create({**minimal(), "lifetime_actions": [_action(days=300)]})
    with pytest.raises(
        BadParameter, match=r"^policy\.lifetime_actions\[0\]\.trigger\.days_before_expiry"
    ):
        policy.merged({"x509_props": {"validity_months": 6}}, NOW)
    with pytest.raises(BadParameter, match=r"^policy\.x509_props: a subject or a subject"):
        policy.merged({"x509_props": {"subject": ""}}, NOW)
    with pytest.raises(BadParameter, match=r"^policy\.key_props\.key_size must be 2048"):
        policy.merged({"key_props": {"key_size": 1024}}, NOW)
    with pytest.raises(BadParameter, match=r"^policy must be a JSON object"):
        policy.merged([], NOW)


# --- import --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_cert(
    key: Any,
    *,
    subject: x509.Name | None = None,
    not_before: int = REC_NBF,
    not_after: int = REC_EXP,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    name = subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MyCert")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.fromtimestamp(not_before, UTC))
        .not_valid_after(datetime.fromtimestamp(not_after, UTC))
    )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def _upn(text: str) -> x509.OtherName:
    raw = text.encode()
    return x509.OtherName(UPN_OID, bytes((0x0C, len(raw))) + raw)


def test_import_reflects_an_rsa_certificate(rsa_key: rsa.RSAPrivateKey) -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso, Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, "web"),
        ]
    )
    sans = x509.SubjectAlternativeName(
        [
            x509.DNSName("web.example"),
            x509.RFC822Name("ops@example.com"),
            _upn("svc@corp.example"),
            x509.OtherName(x509.ObjectIdentifier("1.2.3.4"), b"\x0c\x01x"),
            x509.UniformResourceIdentifier("spiffe://cluster/web"),
            x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
            x509.IPAddress(ipaddress.ip_address("2001:db8::2")),
        ]
    )
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    ekus = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    cert = make_cert(
        rsa_key,
        subject=subject,
        extensions=[
            (sans, False),
            (usage, True),
            (ekus, False),
            (x509.BasicConstraints(ca=False, path_length=None), True),
        ],
    )
    policy = CertificatePolicy.for_import(None, cert, NOW, content_type_hint=None)
    assert policy.key == KeyProps(True, "RSA", 2048, False, None)
    assert policy.secret_content_type == "application/x-pkcs12"
    assert policy.x509 == X509Props(
        subject='CN=web, O="Contoso, Inc.", C=US',  # as Azure writes an imported subject
        sans=SubjectAlternativeNames(
            ("web.example",),
            ("ops@example.com",),
            ("svc@corp.example",),
            ("spiffe://cluster/web",),
            ("10.1.2.3", "2001:db8::2"),
        ),
        ekus=(SERVER_AUTH, CLIENT_AUTH),
        key_usage=("digitalSignature", "keyEncipherment"),
        validity_months=13,
        ca=False,
    )
    assert policy.issuer == IssuerRef("Unknown")
    assert policy.actions == (LifetimeAction("EmailContacts", lifetime_percentage=80),)
    assert (policy.created, policy.updated) == (NOW, NOW)
    # The imported policy parses back (a later PATCH validates it as a whole).
    assert create(body(policy)) == policy
    assert policy.merged({}, NOW) == policy


def test_import_response_matches_the_recorded_real_service_body(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    """JS SDK recording: a certificate Azure issued itself (365 days + the 10 minute
    back-dating) imported back with no policy. The one difference: kvault always writes
    ``sans`` (here ``{}``) where the service left it out."""
    usage = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
    ekus = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    cert = make_cert(
        rsa_key,
        extensions=[
            (usage, True),
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (ekus, False),
        ],
    )
    policy = CertificatePolicy.for_import(None, cert, 1613502419, content_type_hint=None)
    recorded = {
        "id": POLICY_ID,
        "key_props": {"exportable": True, "kty": "RSA", "key_size": 2048, "reuse_key": False},
        "secret_props": {"contentType": "application/x-pkcs12"},
        "x509_props": {
            "subject": "CN=MyCert",
            "ekus": [SERVER_AUTH, CLIENT_AUTH],
            "key_usage": ["digitalSignature", "keyEncipherment"],
            "validity_months": 13,
            "basic_constraints": {"ca": False},
        },
        "lifetime_actions": [
            {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}
        ],
        "issuer": {"name": "Unknown"},
        "attributes": {"enabled": True, "created": 1613502419, "updated": 1613502419},
    }
    out = policy.to_response(POLICY_ID)
    assert out["x509_props"].pop("sans") == {}
    assert out == recorded


@pytest.mark.parametrize(
    ("curve", "crv"),
    [
        (ec.SECP256R1(), "P-256"),
        (ec.SECP384R1(), "P-384"),
        (ec.SECP521R1(), "P-521"),
        (ec.SECP256K1(), "P-256K"),
    ],
)
def test_import_reflects_an_ec_certificate_without_extensions(
    curve: ec.EllipticCurve, crv: str
) -> None:
    cert = make_cert(
        ec.generate_private_key(curve),
        not_before=ts(2015, 4, 29, 21, 53, 41),
        not_after=ts(2039, 12, 31, 23, 59, 59),
    )
    given = {
        "key_props": {"exportable": False, "kty": "EC-HSM", "crv": "P-256", "reuse_key": True},
        "secret_props": {"contentType": "application/x-pem-file"},
        "x509_props": {"subject": "CN=ignored", "validity_months": 1},
    }
    policy = CertificatePolicy.for_import(given, cert, NOW, content_type_hint=None)
    assert policy.key == KeyProps(False, "EC-HSM", None, True, crv)
    assert policy.secret_content_type == "application/x-pem-file"
    # No extensions: empty lists, as in the REST spec's ImportCertificate example (297 months).
    assert policy.x509 == X509Props(
        subject="CN=MyCert", ekus=(), key_usage=(), validity_months=297, ca=False
    )
    out = policy.to_response(POLICY_ID)["x509_props"]
    assert (out["ekus"], out["key_usage"], out["validity_months"]) == ([], [], 297)
    assert policy.key_ops() == ("sign", "verify")


def test_import_content_type_hint_and_given_policy(rsa_key: rsa.RSAPrivateKey) -> None:
    cert = make_cert(rsa_key)
    pem = CertificatePolicy.for_import({}, cert, NOW, content_type_hint="application/x-pem-file")
    assert pem.secret_content_type == "application/x-pem-file"
    given = {"secret_props": {"contentType": "application/x-pkcs12"}}
    pfx = CertificatePolicy.for_import(given, cert, NOW, content_type_hint="application/x-pem-file")
    assert pfx.secret_content_type == "application/x-pkcs12"
    # A given issuer and lifetime actions are kept (Azure keeps them), defaults follow the issuer.
    own = CertificatePolicy.for_import(
        {
            "issuer": {"name": "Self"},
            "lifetime_actions": [_action("EmailContacts", days=30)],
            "attributes": {"enabled": False},
        },
        cert,
        NOW,
        content_type_hint=None,
    )
    assert own.issuer == IssuerRef("Self")
    assert own.actions == (LifetimeAction("EmailContacts", days_before_expiry=30),)
    assert own.enabled is False
    renew = CertificatePolicy.for_import(
        {"issuer": {"name": "Self"}}, cert, NOW, content_type_hint=None
    )
    assert renew.actions == (LifetimeAction("AutoRenew", lifetime_percentage=80),)
    # days_before_expiry is checked against the certificate's months (13 x 27 = 351).
    with pytest.raises(BadParameter, match=r"days_before_expiry must be an integer from 1 to 351"):
        CertificatePolicy.for_import(
            {"lifetime_actions": [_action("EmailContacts", days=352)]},
            cert,
            NOW,
            content_type_hint=None,
        )
    with pytest.raises(BadParameter, match=r"^policy\.key_props\.kty must be one of"):
        CertificatePolicy.for_import(
            {"key_props": {"kty": "oct"}}, cert, NOW, content_type_hint=None
        )
    with pytest.raises(BadParameter, match=r"^policy must be a JSON object"):
        CertificatePolicy.for_import("x", cert, NOW, content_type_hint=None)


def test_import_ca_and_all_key_usages() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(True, True, True, True, True, True, True, True, True)
    cert = make_cert(
        key, extensions=[(usage, True), (x509.BasicConstraints(ca=True, path_length=0), True)]
    )
    policy = CertificatePolicy.for_import(None, cert, NOW, content_type_hint=None)
    assert policy.x509.ca is True
    assert policy.x509.key_usage == (
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
    assert policy.to_response(POLICY_ID)["x509_props"]["basic_constraints"] == {"ca": True}


def test_import_refuses_unsupported_keys() -> None:
    small = make_cert(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(BadParameter, match=r"RSA key has 1024 bits"):
        CertificatePolicy.for_import(None, small, NOW, content_type_hint=None)
    curve = make_cert(ec.generate_private_key(ec.SECP224R1()))
    with pytest.raises(BadParameter, match=r"curve secp224r1 is not supported"):
        CertificatePolicy.for_import(None, curve, NOW, content_type_hint=None)
    edwards = make_cert(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(BadParameter, match=r"must be an RSA or EC key"):
        CertificatePolicy.for_import(None, edwards, NOW, content_type_hint=None)


@pytest.mark.parametrize(
    ("not_before", "not_after", "months"),
    [
        (ts(2021, 2, 16, 18, 56, 56), ts(2022, 2, 16, 19, 6, 56), 13),  # recorded: 365 d + 10 min
        (ts(2015, 4, 29, 21, 53, 41), ts(2039, 12, 31, 23, 59, 59), 297),  # REST spec example
        (ts(2024, 1, 1), ts(2025, 1, 1), 12),
        (ts(2024, 1, 1), ts(2024, 12, 31, 23, 59, 59), 12),
        (ts(2024, 1, 31), ts(2024, 2, 29), 1),  # the day clamps to the month's end
        (ts(2024, 1, 31), ts(2024, 3, 1), 2),
        (ts(2024, 1, 1), ts(2024, 1, 1, 0, 0, 1), 1),
        (ts(2024, 1, 1), ts(2024, 1, 1), 1),
        (ts(2000, 1, 1), ts(9999, 12, 31, 23, 59, 59), 1200),
    ],
)
def test_validity_months_between(not_before: int, not_after: int, months: int) -> None:
    assert validity_months_between(not_before, not_after) == months


# --- key_ops and validity -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "ops"),
    [
        (["digitalSignature"], ("sign", "verify")),
        (["nonRepudiation"], ("sign", "verify")),
        (["keyCertSign"], ("sign", "verify")),
        (["cRLSign"], ("sign", "verify")),
        (["keyEncipherment"], ("wrapKey", "unwrapKey")),
        (["dataEncipherment"], ("encrypt", "decrypt")),
        (["keyAgreement", "encipherOnly"], ("encrypt",)),
        (["keyAgreement", "decipherOnly"], ("decrypt",)),
        (["keyAgreement"], ()),
        (["keyEncipherment", "digitalSignature"], ("sign", "verify", "wrapKey", "unwrapKey")),
        (
            ["dataEncipherment", "keyEncipherment", "cRLSign"],
            ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"),
        ),
        ([], ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey")),
    ],
)
def test_key_ops_from_key_usage(usage: list[str], ops: tuple[str, ...]) -> None:
    assert create(minimal(key_usage=usage)).key_ops() == ops


def test_key_ops_default_and_ec() -> None:
    assert create(SDK_DEFAULT).key_ops() == ("sign", "verify", "wrapKey", "unwrapKey")
    ec_policy = {**minimal(), "key_props": {"kty": "EC-HSM"}}
    assert create(ec_policy).key_ops() == ("sign", "verify")
    with_data = {**minimal(key_usage=["dataEncipherment"]), "key_props": {"kty": "EC"}}
    assert create(with_data).key_ops() == ()
    assert create({**minimal(key_usage=[]), "key_props": {"kty": "EC"}}).key_ops() == (
        "sign",
        "verify",
    )


@pytest.mark.parametrize(
    ("months", "days"), [(12, 365), (1, 30), (6, 183), (24, 730), (3, 91), (1200, 36500)]
)
def test_validity_seconds(months: int, days: int) -> None:
    assert create(minimal(validity_months=months)).validity_seconds() == days * DAY


# --- schedule -------------------------------------------------------------------------------------

NBF = ts(2024, 1, 1)
EXP = NBF + 100 * DAY


def policy_with(*actions: LifetimeAction, enabled: bool = True) -> CertificatePolicy:
    return CertificatePolicy(
        KeyProps(), "application/x-pkcs12", X509Props(subject="CN=a"), actions, IssuerRef(), enabled
    )


def test_renewal_due_percentage_and_days() -> None:
    assert renewal_due(
        policy_with(LifetimeAction("AutoRenew", lifetime_percentage=80)), NBF, EXP
    ) == (
        "AutoRenew",
        NBF + 80 * DAY,
    )
    assert renewal_due(
        policy_with(LifetimeAction("EmailContacts", days_before_expiry=7)), NBF, EXP
    ) == (
        "EmailContacts",
        EXP - 7 * DAY,
    )
    # Rounded down to the second.
    assert renewal_due(policy_with(LifetimeAction("AutoRenew", lifetime_percentage=1)), 0, 199) == (
        "AutoRenew",
        1,
    )


def test_renewal_due_earliest_then_email_first_on_a_tie() -> None:
    early_renew = policy_with(
        LifetimeAction("EmailContacts", days_before_expiry=10),
        LifetimeAction("AutoRenew", lifetime_percentage=50),
    )
    assert renewal_due(early_renew, NBF, EXP) == ("AutoRenew", NBF + 50 * DAY)
    tie = policy_with(
        LifetimeAction("AutoRenew", lifetime_percentage=90),
        LifetimeAction("EmailContacts", days_before_expiry=10),
    )
    assert renewal_due(tie, NBF, EXP) == ("EmailContacts", NBF + 90 * DAY)


def test_renewal_due_none_without_actions_or_when_disabled() -> None:
    assert renewal_due(policy_with(), NBF, EXP) is None
    disabled = policy_with(LifetimeAction("AutoRenew", lifetime_percentage=80), enabled=False)
    assert renewal_due(disabled, NBF, EXP) is None
    assert due_actions(disabled, NBF, EXP, EXP, done=frozenset()) == []


def test_due_actions_with_a_fake_clock() -> None:
    policy = policy_with(
        LifetimeAction("AutoRenew", lifetime_percentage=50),
        LifetimeAction("EmailContacts", days_before_expiry=10),
    )
    none: frozenset[str] = frozenset()
    assert due_actions(policy, NBF, EXP, NBF + 50 * DAY - 1, done=none) == []
    assert due_actions(policy, NBF, EXP, NBF + 50 * DAY, done=none) == ["AutoRenew"]
    # Both due: EmailContacts first although AutoRenew was due earlier.
    assert due_actions(policy, NBF, EXP, EXP - 10 * DAY, done=none) == [
        "EmailContacts",
        "AutoRenew",
    ]
    # Done for this version: not again.
    assert due_actions(policy, NBF, EXP, EXP, done=frozenset({"AutoRenew"})) == ["EmailContacts"]
    assert due_actions(policy, NBF, EXP, EXP, done=frozenset({"AutoRenew", "EmailContacts"})) == []
    # A new version (renewed) starts over.
    nbf2, exp2 = EXP - 5 * DAY, EXP + 95 * DAY
    assert due_actions(policy, nbf2, exp2, EXP, done=none) == []
    assert renewal_due(policy, nbf2, exp2) == ("AutoRenew", nbf2 + 50 * DAY)


def test_schedule_of_a_requested_policy() -> None:
    """A one-month policy renewing at 50 %: what the e2e test drives with its clock."""
    policy = create({**minimal(validity_months=1), "lifetime_actions": [_action(pct=50)]})
    nbf = NOW - 600
    exp = NOW + policy.validity_seconds()
    due = renewal_due(policy, nbf, exp)
    assert due == ("AutoRenew", nbf + (exp - nbf) // 2)
    assert due_actions(policy, nbf, exp, due[1], done=frozenset()) == ["AutoRenew"]


# --- storage --------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", [SDK_DEFAULT, SDK_EC, FULL], ids=["default", "ec", "full"])
def test_doc_round_trip(doc: dict[str, Any]) -> None:
    policy = create(doc)
    stored = json.loads(json.dumps(policy.to_doc()))
    assert CertificatePolicy.from_doc(stored) == policy


def test_doc_round_trip_of_an_import(rsa_key: rsa.RSAPrivateKey) -> None:
    cert = make_cert(rsa_key, extensions=[(x509.SubjectAlternativeName([_upn("a@b")]), False)])
    policy = CertificatePolicy.for_import(None, cert, NOW, content_type_hint=None)
    assert CertificatePolicy.from_doc(json.loads(json.dumps(policy.to_doc()))) == policy


def _broken(path: str, value: Any) -> dict[str, Any]:
    doc = create(FULL).to_doc()
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        {},
        _broken("key", KeyError),
        _broken("key.kty", "oct"),
        _broken("key.keySize", "2048"),
        _broken("key.exportable", 1),
        _broken("contentType", "text/plain"),
        _broken("x509.sans", []),
        _broken("x509.sans.dnsNames", [1]),
        _broken("x509.keyUsage", ["sign"]),
        _broken("x509.validityMonths", True),
        _broken("actions", {}),
        _broken("actions.0.action", "Renew"),
        _broken("actions.0.lifetimePercentage", None),
        _broken("actions.0.daysBeforeExpiry", 5),
        _broken("issuer.name", None),
        _broken("enabled", "yes"),
        _broken("created", 1.5),
    ],
)
def test_from_doc_refuses_malformed(doc: Any) -> None:
    with pytest.raises(IntegrityError, match="stored certificate policy is malformed"):
        CertificatePolicy.from_doc(doc)


def test_content_types_constant() -> None:
    assert CONTENT_TYPES == ("application/x-pkcs12", "application/x-pem-file")
