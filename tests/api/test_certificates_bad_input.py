"""Bad input to the certificates API gets Azure's 400 ``{"error":{"code":"BadParameter",
"message":…}}`` naming the field, and changes nothing: no certificate, pending operation,
policy, key or secret of that name afterwards (and an existing certificate keeps its versions
and policy). Raw HTTP, since the SDK would refuse or reshape most of these bodies itself."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.api.certs_support import PEM, TestCA, der_pem
from tests.api.conftest import unique
from tests.fixtures.devserver import DevServer


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Api:
    def __init__(self, server: DevServer) -> None:
        self.base = server.endpoint
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {server.env['KVAULT_TOKEN']}"
        self.ca = server.env["KVAULT_CA_FILE"]

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        sep = "&" if "?" in path else "?"
        url = f"{self.base}{path}{sep}api-version=7.5"
        return self.s.request(method, url, json=body, timeout=60, verify=self.ca)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        r = self.call(method, path, body)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def bad(self, method: str, path: str, body: Any, field: str) -> str:
        """Azure's 400 shape, with ``field`` named in the message; the message."""
        r = self.call(method, path, body)
        assert r.status_code == 400, f"{method} {path} {body!r}: {r.status_code} {r.text}"
        error = r.json()["error"]
        assert error["code"] == "BadParameter", error
        message: str = error["message"]
        assert isinstance(message, str) and field.lower() in message.lower(), (field, message)
        return message

    def status(self, path: str) -> int:
        return self.call("GET", path).status_code

    def nothing_named(self, name: str) -> None:
        """No trace of ``name``: certificate, operation, policy, key, secret, deleted ones."""
        for path in (
            f"/certificates/{name}/",
            f"/certificates/{name}/pending",
            f"/certificates/{name}/policy",
            f"/keys/{name}/",
            f"/secrets/{name}/",
            f"/deletedcertificates/{name}",
        ):
            assert self.status(path) == 404, path
        listed = self.ok("GET", "/certificates?maxresults=25")
        names = set()
        while True:
            names |= {i["id"].rsplit("/", 1)[-1] for i in listed["value"]}
            if not listed.get("nextLink"):
                break
            r = self.s.get(listed["nextLink"], timeout=60, verify=self.ca)
            listed = r.json()
        assert name not in names


@pytest.fixture(scope="module")
def api(dev_server: DevServer) -> Iterator[Api]:
    a = Api(dev_server)
    yield a
    a.s.close()


def good_policy(**x509: Any) -> dict[str, Any]:
    return {
        "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
        "secret_props": {"contentType": PEM},
        "x509_props": {"subject": "CN=bad-input", "validity_months": 12, **x509},
        "issuer": {"name": "Self"},
    }


def patched(path: str, value: Any) -> dict[str, Any]:
    """The good policy with ``path`` (dotted; ``-`` deletes) set to ``value``."""
    doc = copy.deepcopy(good_policy())
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    if value == "-":
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return doc


#: (id, policy, field the message must name)
BAD_POLICIES: list[tuple[str, Any, str]] = [
    ("validity-0", patched("x509_props.validity_months", 0), "validity_months"),
    ("validity-negative", patched("x509_props.validity_months", -3), "validity_months"),
    ("validity-huge", patched("x509_props.validity_months", 100000), "validity_months"),
    ("validity-string", patched("x509_props.validity_months", "12"), "validity_months"),
    ("eku-malformed-oid", patched("x509_props.ekus", ["1.3.6.1.5.5.7.3.x"]), "ekus"),
    ("eku-name-not-oid", patched("x509_props.ekus", ["serverAuth"]), "ekus"),
    ("eku-not-array", patched("x509_props.ekus", "1.3.6.1.5.5.7.3.1"), "ekus"),
    ("eku-bad-arc", patched("x509_props.ekus", ["3.1.2"]), "ekus"),
    ("san-dns-not-a-name", patched("x509_props.sans", {"dns_names": ["not a dns name!"]}), "dns"),
    ("san-dns-empty-label", patched("x509_props.sans", {"dns_names": ["a..example"]}), "dns"),
    ("san-dns-not-string", patched("x509_props.sans", {"dns_names": [7]}), "dns"),
    ("san-email", patched("x509_props.sans", {"emails": ["no-at-sign"]}), "emails"),
    ("san-upn", patched("x509_props.sans", {"upns": ["no-domain"]}), "upns"),
    ("san-ip", patched("x509_props.sans", {"ipAddresses": ["999.1.1.1"]}), "ipAddresses"),
    ("sans-not-object", patched("x509_props.sans", ["a.example"]), "sans"),
    ("subject-not-dn", patched("x509_props.subject", "just words"), "subject"),
    ("subject-unknown-attr", patched("x509_props.subject", "XX=1"), "subject"),
    ("no-subject-no-sans", patched("x509_props.subject", "-"), "subject"),
    ("key-usage-unknown", patched("x509_props.key_usage", ["signing"]), "key_usage"),
    (
        "key-usage-encipher-only",
        patched("x509_props.key_usage", ["encipherOnly"]),
        "key_usage",
    ),
    ("ca-not-bool", patched("x509_props.basic_constraints", {"ca": "yes"}), "ca"),
    ("issuer-unknown-name", patched("issuer.name", "no-such-issuer"), "issuer"),
    ("issuer-bad-name", patched("issuer.name", "bad name!"), "issuer.name"),
    ("content-type-json", patched("secret_props.contentType", "application/json"), "contentType"),
    ("content-type-not-string", patched("secret_props.contentType", 12), "contentType"),
    ("kty-unknown", patched("key_props.kty", "DSA"), "kty"),
    ("kty-oct", patched("key_props.kty", "oct"), "kty"),
    ("key-size-1024", {**good_policy(), "key_props": {"kty": "RSA", "key_size": 1024}}, "key_size"),
    ("crv-unknown", patched("key_props.crv", "P-192"), "crv"),
    (
        "crv-size-mismatch",
        {**good_policy(), "key_props": {"kty": "EC", "crv": "P-256", "key_size": 384}},
        "key_size",
    ),
    ("exportable-not-bool", patched("key_props.exportable", "true"), "exportable"),
    (
        "hsm-key-exportable",
        {**good_policy(), "key_props": {"kty": "RSA-HSM", "exportable": True}},
        "exportable",
    ),
    (
        "lifetime-percentage-100",
        patched(
            "lifetime_actions",
            [{"trigger": {"lifetime_percentage": 100}, "action": {"action_type": "AutoRenew"}}],
        ),
        "lifetime_percentage",
    ),
    (
        "lifetime-two-triggers",
        patched(
            "lifetime_actions",
            [
                {
                    "trigger": {"lifetime_percentage": 50, "days_before_expiry": 5},
                    "action": {"action_type": "AutoRenew"},
                }
            ],
        ),
        "trigger",
    ),
    (
        "lifetime-unknown-action",
        patched(
            "lifetime_actions",
            [{"trigger": {"lifetime_percentage": 50}, "action": {"action_type": "Renew"}}],
        ),
        "action_type",
    ),
    (
        "lifetime-days-too-many",
        patched(
            "lifetime_actions",
            [{"trigger": {"days_before_expiry": 400}, "action": {"action_type": "AutoRenew"}}],
        ),
        "days_before_expiry",
    ),
    ("policy-not-object", ["Self"], "policy"),
    ("policy-missing", None, "policy"),
]


@pytest.mark.parametrize(
    "policy, field", [(p, f) for _, p, f in BAD_POLICIES], ids=[i for i, _, _ in BAD_POLICIES]
)
def test_bad_create_policy_changes_nothing(api: Api, policy: Any, field: str) -> None:
    name = unique("bad")
    body = {} if policy is None else {"policy": policy}
    api.bad("POST", f"/certificates/{name}/create", body, field)
    api.nothing_named(name)


def test_bad_create_leaves_an_existing_certificate_alone(api: Api) -> None:
    name = unique("kept")
    api.ok("POST", f"/certificates/{name}/create", {"policy": good_policy()}, 202)
    before = api.ok("GET", f"/certificates/{name}/")
    for _, policy, field in BAD_POLICIES[:6] + BAD_POLICIES[20:24]:
        api.bad("POST", f"/certificates/{name}/create", {"policy": policy}, field)
    after = api.ok("GET", f"/certificates/{name}/")
    assert after == before  # same version, same policy
    assert len(api.ok("GET", f"/certificates/{name}/versions")["value"]) == 1
    assert len(api.ok("GET", f"/keys/{name}/versions")["value"]) == 1
    assert len(api.ok("GET", f"/secrets/{name}/versions")["value"]) == 1
    assert api.ok("GET", f"/certificates/{name}/pending")["status"] == "completed"

    # A bad PATCH of the policy changes nothing either.
    policy = api.ok("GET", f"/certificates/{name}/policy")
    for patch, field in (
        ({"x509_props": {"validity_months": 0}}, "validity_months"),
        ({"secret_props": {"contentType": "text/plain"}}, "contentType"),
        ({"x509_props": {"ekus": ["nope"]}}, "ekus"),
        ({"key_props": {"kty": "DSA"}}, "kty"),
    ):
        api.bad("PATCH", f"/certificates/{name}/policy", patch, field)
    assert api.ok("GET", f"/certificates/{name}/policy") == policy

    # Bad attributes in a create body.
    api.bad(
        "POST",
        f"/certificates/{name}/create",
        {"policy": good_policy(), "attributes": {"enabled": "yes"}},
        "enabled",
    )
    assert len(api.ok("GET", f"/certificates/{name}/versions")["value"]) == 1


# -- import ------------------------------------------------------------------------------------

CA = TestCA.make("bad input CA")
KEY, LEAF = CA.leaf("import.bad.example", key=ec.generate_private_key(ec.SECP256R1()))
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def _pfx(password: bytes | None, key: Any = KEY) -> bytes:
    enc = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(b"x", key, LEAF, [CA.cert], enc)


def _key_pem(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


BAD_IMPORTS: list[tuple[str, dict[str, Any], str]] = [
    ("pfx-wrong-password", {"value": b64(_pfx(b"right")), "pwd": "wrong"}, "password"),
    ("pfx-password-missing", {"value": b64(_pfx(b"right"))}, "password"),
    ("pem-without-key", {"value": b64(der_pem(LEAF) + der_pem(CA.cert))}, "private key"),
    (
        "pem-key-of-another-cert",
        {"value": b64(_key_pem(OTHER_KEY) + der_pem(LEAF))},
        "does not match",
    ),
    ("pem-without-certificate", {"value": b64(_key_pem(KEY))}, "certificate"),
    ("value-not-base64", {"value": "%%% not base64 %%%"}, "value"),
    ("value-garbage", {"value": b64(b"\x00\x01 neither PEM nor PKCS#12")}, "value"),
    ("value-missing", {}, "value"),
    (
        "policy-bad-content-type",
        {"value": b64(_pfx(None)), "policy": {"secret_props": {"contentType": "text/x"}}},
        "contentType",
    ),
]


@pytest.mark.parametrize(
    "body, field", [(b, f) for _, b, f in BAD_IMPORTS], ids=[i for i, _, _ in BAD_IMPORTS]
)
def test_bad_import_changes_nothing(api: Api, body: dict[str, Any], field: str) -> None:
    name = unique("badimp")
    api.bad("POST", f"/certificates/{name}/import", body, field)
    api.nothing_named(name)


def test_good_imports_for_contrast(api: Api) -> None:
    """The same material imports fine with the right password, and without one."""
    for body in ({"value": b64(_pfx(b"right")), "pwd": "right"}, {"value": b64(_pfx(None))}):
        name = unique("goodimp")
        doc = api.ok("POST", f"/certificates/{name}/import", body)
        assert base64.b64decode(doc["cer"]) == LEAF.public_bytes(serialization.Encoding.DER)


# -- merge and the pending operation -----------------------------------------------------------


def _pending(api: Api) -> tuple[str, Any]:
    """A name with an Unknown-issuer operation waiting, and its CSR."""
    from cryptography import x509

    name = unique("pend")
    policy = patched("issuer.name", "Unknown")
    op = api.ok("POST", f"/certificates/{name}/create", {"policy": policy}, 202)
    assert op["status"] == "inProgress" and op["csr"]
    return name, x509.load_der_x509_csr(base64.b64decode(op["csr"]))


def _still_pending(api: Api, name: str) -> None:
    op = api.ok("GET", f"/certificates/{name}/pending")
    assert op["status"] == "inProgress"
    for path in (f"/keys/{name}/", f"/secrets/{name}/"):
        assert api.status(path) == 404, path
    got = api.call("GET", f"/certificates/{name}/")  # 404, or the pending version: no cer
    assert got.status_code == 404 or "cer" not in got.json(), got.text
    versions = api.call("GET", f"/certificates/{name}/versions")
    assert versions.status_code == 404 or all("x5t" not in v for v in versions.json()["value"])


def test_merge_with_a_chain_for_another_key(api: Api) -> None:
    name, _ = _pending(api)
    other = CA.leaf("someone else")[1].public_bytes(serialization.Encoding.DER)
    api.bad("POST", f"/certificates/{name}/pending/merge", {"x5c": [b64(other)]}, "x5c")
    _still_pending(api, name)
    # A certificate made for another CSR of the same subject fails the same way.
    _, other_csr = _pending(api)
    wrong = CA.sign_csr(other_csr).public_bytes(serialization.Encoding.DER)
    api.bad("POST", f"/certificates/{name}/pending/merge", {"x5c": [b64(wrong)]}, "x5c")
    _still_pending(api, name)


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "x5c"),
        ({"x5c": []}, "x5c"),
        ({"x5c": "MIIB"}, "x5c"),
        ({"x5c": [123]}, "x5c[0]"),
        ({"x5c": ["!!! not base64 !!!"]}, "x5c[0]"),
        ({"x5c": [b64(b"not a certificate")]}, "x5c[0]"),
    ],
    ids=["missing", "empty", "not-array", "not-string", "not-base64", "not-a-certificate"],
)
def test_malformed_merge(api: Api, body: dict[str, Any], field: str) -> None:
    name, _ = _pending(api)
    api.bad("POST", f"/certificates/{name}/pending/merge", body, field)
    _still_pending(api, name)


def test_merge_without_a_pending_operation_is_404(api: Api) -> None:
    leaf = LEAF.public_bytes(serialization.Encoding.DER)
    for name in (unique("nopend"),):
        r = api.call("POST", f"/certificates/{name}/pending/merge", {"x5c": [b64(leaf)]})
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] and r.json()["error"]["message"]
        api.nothing_named(name)
    # A Self certificate's operation is completed: nothing to merge into either.
    name = unique("selfdone")
    api.ok("POST", f"/certificates/{name}/create", {"policy": good_policy()}, 202)
    before = api.ok("GET", f"/certificates/{name}/")
    r = api.call("POST", f"/certificates/{name}/pending/merge", {"x5c": [b64(leaf)]})
    assert r.status_code == 404, r.text
    assert api.ok("GET", f"/certificates/{name}/") == before


def test_bad_cancel_and_missing_operations(api: Api) -> None:
    name, _ = _pending(api)
    for body in ({"cancellation_requested": False}, {}, {"cancellation_requested": "true"}):
        api.bad("PATCH", f"/certificates/{name}/pending", body, "cancellation_requested")
    _still_pending(api, name)
    assert api.ok("GET", f"/certificates/{name}/pending")["cancellation_requested"] is False
    missing = unique("noop")
    for method, body in (
        ("GET", None),
        ("PATCH", {"cancellation_requested": True}),
        ("DELETE", None),
    ):
        r = api.call(method, f"/certificates/{missing}/pending", body)
        assert r.status_code == 404, (method, r.text)
    api.nothing_named(missing)


# -- issuers, contacts, restore ----------------------------------------------------------------


def test_bad_issuers(api: Api) -> None:
    name = unique("badiss")
    for body, field in (
        ({}, "provider"),
        ({"provider": 7}, "provider"),
        ({"provider": "kvault-ca", "credentials": "acct"}, "credentials"),
        ({"provider": "kvault-ca", "credentials": {"account_id": 5}}, "account_id"),
        ({"provider": "kvault-ca", "attributes": {"enabled": "no"}}, "enabled"),
        ({"provider": "x", "org_details": {"admin_details": "me"}}, "admin_details"),
    ):
        api.bad("PUT", f"/certificates/issuers/{name}", body, field)
    assert api.status(f"/certificates/issuers/{name}") == 404
    r = api.call("PATCH", f"/certificates/issuers/{name}", {"provider": "x"})
    assert r.status_code == 404, r.text
    api.bad("PUT", "/certificates/issuers/bad name!", {"provider": "x"}, "name")


def test_bad_issuer_updates_change_nothing(api: Api) -> None:
    """A PATCH with one bad member is refused whole: the members beside it (even valid
    clearing ones) are not applied either."""
    name = unique("patchiss")
    made = {
        "provider": "DigiCert",
        "credentials": {"account_id": "acct", "pwd": "pw"},
        "org_details": {"id": "org", "admin_details": [{"email": "a@contoso.com"}]},
    }
    before = api.ok("PUT", f"/certificates/issuers/{name}", made)
    for body, field in (
        ({"provider": ""}, "provider"),
        ({"provider": 7}, "provider"),
        ({"credentials": "acct", "org_details": {}}, "credentials"),
        ({"credentials": {"account_id": 5}, "org_details": {}}, "credentials.account_id"),
        ({"credentials": {}, "org_details": {"id": ["org"]}}, "org_details.id"),
        ({"credentials": {"pwd": False}}, "credentials.pwd"),
        ({"org_details": []}, "org_details"),
        ({"org_details": {"admin_details": {"email": "b@c.d"}}}, "org_details.admin_details"),
        ({"org_details": {"admin_details": ["b@c.d"]}}, "org_details.admin_details[0]"),
        (
            {"credentials": {}, "org_details": {"admin_details": [{"phone": 5}]}},
            "org_details.admin_details[0].phone",
        ),
        ({"attributes": {"enabled": "no"}, "credentials": {}}, "attributes.enabled"),
        ({"attributes": []}, "attributes"),
    ):
        api.bad("PATCH", f"/certificates/issuers/{name}", body, field)
    assert api.ok("GET", f"/certificates/issuers/{name}") == before


def test_bad_include_pending(api: Api) -> None:
    for path in ("/certificates", "/certificates/", "/deletedcertificates"):
        for value in ("yes", "1", "tru"):
            api.bad("GET", f"{path}?includePending={value}", None, "includePending")
    for value in ("true", "FALSE", "True", ""):
        api.ok("GET", f"/certificates?includePending={value}")


def test_bad_contacts(api: Api) -> None:
    before = api.call("GET", "/certificates/contacts")
    for body, field in (
        ({}, "contacts"),
        ({"contacts": "a@b.c"}, "contacts"),
        ({"contacts": ["a@b.c"]}, "contacts[0]"),
        ({"contacts": [{"email": "no-at-sign"}]}, "email"),
        ({"contacts": [{"email": "a@b.c", "name": 5}]}, "name"),
    ):
        api.bad("PUT", "/certificates/contacts", body, field)
    after = api.call("GET", "/certificates/contacts")
    assert (after.status_code, after.text) == (before.status_code, before.text)


def test_bad_restore(api: Api) -> None:
    for body in ({"value": "not-a-backup"}, {"value": "AAAA"}, {}):
        api.bad("POST", "/certificates/restore", body, "value")
