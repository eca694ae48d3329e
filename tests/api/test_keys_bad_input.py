"""Bad input to the keys API gets Azure's 400 ``{"error":{"code":"BadParameter","message":…}}``
naming the field, and changes nothing: no key version is created, no attribute or policy
changes. Raw HTTP, since the SDK would refuse most of these bodies itself."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.api.conftest import unique
from tests.fixtures.devserver import DevServer


def b64u(data: bytes | int) -> str:
    if isinstance(data, int):
        data = data.to_bytes((data.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Api:
    def __init__(self, server: DevServer) -> None:
        self.base = server.endpoint
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {server.env['KVAULT_TOKEN']}"
        self.ca = server.env["KVAULT_CA_FILE"]  # per request: REQUESTS_CA_BUNDLE would win

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        sep = "&" if "?" in path else "?"
        url = f"{self.base}{path}{sep}api-version=7.5"
        if raw is not None:
            headers = {"Content-Type": "application/json"}
            return self.s.request(
                method, url, data=raw, headers=headers, timeout=30, verify=self.ca
            )
        return self.s.request(method, url, json=body, timeout=30, verify=self.ca)

    def ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        r = self.call(method, path, body)
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    def versions(self, name: str) -> list[str]:
        doc = self.ok("GET", f"/keys/{name}/versions")
        return sorted(i["kid"] for i in doc["value"])

    def bad(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> str:
        """Assert Azure's 400 shape; return the message."""
        r = self.call(method, path, body, raw)
        assert r.status_code == 400, f"{method} {path} {body!r}: {r.status_code} {r.text}"
        error = r.json()["error"]
        assert error["code"] == "BadParameter", error
        assert isinstance(error["message"], str) and error["message"]
        message: str = error["message"]
        return message


@pytest.fixture(scope="module")
def api(dev_server: DevServer) -> Iterator[Api]:
    a = Api(dev_server)
    yield a
    a.s.close()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def rsa_jwk(**override: Any) -> dict[str, Any]:
    n = RSA_KEY.private_numbers()
    jwk = {
        "kty": "RSA",
        "n": b64u(n.public_numbers.n),
        "e": b64u(n.public_numbers.e),
        "d": b64u(n.d),
        "p": b64u(n.p),
        "q": b64u(n.q),
        "dp": b64u(n.dmp1),
        "dq": b64u(n.dmq1),
        "qi": b64u(n.iqmp),
    }
    jwk.update(override)
    return {k: v for k, v in jwk.items() if v is not None}


def ec_jwk(**override: Any) -> dict[str, Any]:
    n = EC_KEY.private_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64u(n.public_numbers.x.to_bytes(32, "big")),
        "y": b64u(n.public_numbers.y.to_bytes(32, "big")),
        "d": b64u(n.private_value.to_bytes(32, "big")),
    }
    jwk.update(override)
    return {k: v for k, v in jwk.items() if v is not None}


def _other_prime() -> int:
    return rsa.generate_private_key(65537, 2048).private_numbers().p


OTHER_P = _other_prime()
N = RSA_KEY.private_numbers()
EC_N = EC_KEY.private_numbers()
OTHER_EC_D = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value

#: (id, import body, text the message must contain)
BAD_IMPORTS: list[tuple[str, Any, str]] = [
    ("no-key", {}, "key"),
    ("key-not-object", {"key": "RSA"}, "key"),
    ("no-kty", {"key": {k: v for k, v in rsa_jwk().items() if k != "kty"}}, "kty"),
    ("unknown-kty", {"key": rsa_jwk(kty="DSA")}, "kty"),
    ("kty-not-string", {"key": rsa_jwk(kty=7)}, "kty"),
    *(
        (f"rsa-missing-{m}", {"key": rsa_jwk(**{m: None})}, f"key.{m}")
        for m in ("n", "e", "d", "p", "q", "dp", "dq", "qi")
    ),
    ("rsa-n-not-base64url", {"key": rsa_jwk(n="not*base64url")}, "key.n"),
    ("rsa-e-standard-base64", {"key": rsa_jwk(e="AQ+B")}, "key.e"),
    ("rsa-d-not-string", {"key": rsa_jwk(d=12345)}, "key.d"),
    ("rsa-p-not-a-factor", {"key": rsa_jwk(p=b64u(OTHER_P))}, "key.p"),
    ("rsa-d-inconsistent", {"key": rsa_jwk(d=b64u(N.d + 2))}, "key.d"),
    ("rsa-dp-inconsistent", {"key": rsa_jwk(dp=b64u(N.dmp1 ^ 1))}, "key.dp"),
    ("rsa-qi-inconsistent", {"key": rsa_jwk(qi=b64u(N.iqmp ^ 1))}, "key.qi"),
    ("rsa-1024-bit", {"key": rsa_jwk(n=b64u(N.public_numbers.n >> 1024))}, "key.n"),
    ("rsa-hsm-bad-n", {"key": rsa_jwk(kty="RSA-HSM", n="%%%")}, "key.n"),
    ("ec-missing-crv", {"key": ec_jwk(crv=None)}, "key.crv"),
    ("ec-unknown-curve", {"key": ec_jwk(crv="P-192")}, "key.crv"),
    ("ec-curve-lowercase", {"key": ec_jwk(crv="p-256")}, "key.crv"),
    ("ec-missing-x", {"key": ec_jwk(x=None)}, "key.x"),
    ("ec-missing-d", {"key": ec_jwk(d=None)}, "key.d"),
    (
        "ec-point-off-curve",
        {"key": ec_jwk(y=b64u(((EC_N.public_numbers.y + 1) % 2**256).to_bytes(32, "big")))},
        "key.x",
    ),
    ("ec-x-too-long", {"key": ec_jwk(x=b64u(b"\1" * 33))}, "key.x"),
    ("ec-y-bad-base64url", {"key": ec_jwk(y="@@@@")}, "key.y"),
    ("ec-d-of-another-key", {"key": ec_jwk(d=b64u(OTHER_EC_D.to_bytes(32, "big")))}, "key.d"),
    ("ec-hsm-off-curve", {"key": ec_jwk(kty="EC-HSM", x=b64u(b"\0" * 32))}, "key.x"),
    ("oct-missing-k", {"key": {"kty": "oct"}}, "key.k"),
    ("oct-k-20-bytes", {"key": {"kty": "oct", "k": b64u(b"k" * 20)}}, "key.k"),
    ("oct-k-bad-base64url", {"key": {"kty": "oct", "k": "a b c"}}, "key.k"),
    ("oct-hsm-k-empty", {"key": {"kty": "oct-HSM", "k": ""}}, "key.k"),
    ("hsm-not-bool", {"key": ec_jwk(), "Hsm": "yes"}, "Hsm"),
    ("key-ops-unknown", {"key": ec_jwk(key_ops=["sign", "fly"])}, "key_ops"),
    ("key-ops-not-list", {"key": ec_jwk(key_ops="sign")}, "key_ops"),
    (
        "attributes-enabled",
        {"key": ec_jwk(), "attributes": {"enabled": "yes"}},
        "attributes.enabled",
    ),
    ("tags-not-strings", {"key": ec_jwk(), "tags": {"a": 1}}, "tags"),
]

#: (id, create body, text the message must contain)
BAD_CREATES: list[tuple[str, Any, str]] = [
    ("no-kty", {}, "kty"),
    ("unknown-kty", {"kty": "DSA"}, "kty"),
    ("kty-wrong-case", {"kty": "rsa"}, "kty"),
    ("rsa-1024", {"kty": "RSA", "key_size": 1024}, "key_size"),
    ("rsa-size-string", {"kty": "RSA", "key_size": "2048"}, "key_size"),
    ("rsa-with-crv", {"kty": "RSA", "crv": "P-256"}, "crv"),
    ("rsa-exponent-4", {"kty": "RSA", "public_exponent": 4}, "public_exponent"),
    ("rsa-hsm-1024", {"kty": "RSA-HSM", "key_size": 1024}, "key_size"),
    ("ec-unknown-curve", {"kty": "EC", "crv": "P-192"}, "crv"),
    ("ec-hsm-unknown-curve", {"kty": "EC-HSM", "crv": "secp256k1"}, "crv"),
    ("ec-with-size", {"kty": "EC", "key_size": 256}, "key_size"),
    ("oct-512", {"kty": "oct", "key_size": 512}, "key_size"),
    ("oct-hsm-64", {"kty": "oct-HSM", "key_size": 64}, "key_size"),
    ("key-ops-unknown", {"kty": "EC", "key_ops": ["sign", "launch"]}, "key_ops"),
    ("key-ops-not-list", {"kty": "EC", "key_ops": "sign"}, "key_ops"),
    ("attributes-exp", {"kty": "EC", "attributes": {"exp": "tomorrow"}}, "attributes.exp"),
    ("tags-not-object", {"kty": "EC", "tags": ["a"]}, "tags"),
]


@pytest.fixture(scope="module")
def target(api: Api) -> str:
    """A key with one version, which every bad request below tries to add to."""
    name = unique("bad")
    api.ok("POST", f"/keys/{name}/create", {"kty": "EC"})
    return name


@pytest.mark.parametrize(("case", "body", "names"), BAD_IMPORTS, ids=[c[0] for c in BAD_IMPORTS])
def test_import_refuses_malformed_jwk(
    api: Api, target: str, case: str, body: Any, names: str
) -> None:
    before = api.versions(target)
    message = api.bad("PUT", f"/keys/{target}", body)
    assert names in message, f"{case}: {message!r} does not name {names}"
    assert api.versions(target) == before  # no version created
    for secret in ("d", "p", "q", "dp", "dq", "qi", "k"):  # errors never echo key material
        value = (body.get("key") or {}).get(secret) if isinstance(body.get("key"), dict) else None
        if isinstance(value, str) and len(value) > 8:
            assert value not in message
    fresh = unique("bad")
    api.bad("PUT", f"/keys/{fresh}", body)
    assert api.call("GET", f"/keys/{fresh}/").status_code == 404


@pytest.mark.parametrize(("case", "body", "names"), BAD_CREATES, ids=[c[0] for c in BAD_CREATES])
def test_create_refuses_bad_parameters(
    api: Api, target: str, case: str, body: Any, names: str
) -> None:
    before = api.versions(target)
    message = api.bad("POST", f"/keys/{target}/create", body)
    assert names in message, f"{case}: {message!r} does not name {names}"
    assert api.versions(target) == before


def test_malformed_bodies(api: Api, target: str) -> None:
    before = api.versions(target)
    for raw, names in ((b"{not json", "JSON"), (b"[1]", "object"), (b"", "body")):
        assert names in api.bad("POST", f"/keys/{target}/create", raw=raw)
        assert names in api.bad("PUT", f"/keys/{target}", raw=raw)
        assert names in api.bad("POST", f"/keys/{target}//sign", raw=raw)
    assert api.versions(target) == before


# -- cryptographic operations ------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(api: Api) -> dict[str, str]:
    """An RSA 2048, an EC P-256 and an oct 256 key (software), by type."""
    out = {}
    for kty, body in (("RSA", {"kty": "RSA"}), ("EC", {"kty": "EC"}), ("oct", {"kty": "oct"})):
        name = unique(f"badop-{kty.lower()}")
        api.ok("POST", f"/keys/{name}/create", body)
        out[kty] = name
    return out


D32, D48 = b64u(os.urandom(32)), b64u(os.urandom(48))
IV16 = b64u(os.urandom(16))
#: (id, key type, operation, body, text the message must contain)
BAD_OPS: list[tuple[str, str, str, Any, str]] = [
    ("no-alg", "RSA", "encrypt", {"value": "AAAA"}, "alg"),
    ("alg-not-string", "RSA", "encrypt", {"alg": 5, "value": "AAAA"}, "alg"),
    ("unknown-alg", "RSA", "encrypt", {"alg": "ROT13", "value": "AAAA"}, "alg"),
    ("sign-alg-for-encrypt", "RSA", "encrypt", {"alg": "RS256", "value": "AAAA"}, "alg"),
    ("ec-alg-on-rsa", "RSA", "sign", {"alg": "ES256", "value": D32}, "alg"),
    ("aes-alg-on-rsa", "RSA", "encrypt", {"alg": "A256GCM", "value": "AAAA"}, "alg"),
    ("rs256-on-ec", "EC", "verify", {"alg": "RS256", "digest": D32, "value": D32}, "alg"),
    ("rsa-oaep-sign-on-ec", "EC", "sign", {"alg": "RSA-OAEP", "value": D32}, "alg"),
    ("es256-verify-on-rsa", "RSA", "verify", {"alg": "ES256", "digest": D32, "value": D32}, "alg"),
    ("rsa-unwrap-on-oct", "oct", "unwrapkey", {"alg": "RSA-OAEP", "value": D32}, "alg"),
    ("wrap-alg-for-encrypt", "oct", "encrypt", {"alg": "A256KW", "value": D32}, "alg"),
    ("es384-on-p256", "EC", "sign", {"alg": "ES384", "value": D48}, "alg"),
    ("es256k-on-p256", "EC", "sign", {"alg": "ES256K", "value": D32}, "alg"),
    ("rsa-alg-on-oct", "oct", "encrypt", {"alg": "RSA-OAEP", "value": "AAAA"}, "alg"),
    ("a128gcm-on-256-bit-key", "oct", "encrypt", {"alg": "A128GCM", "value": "AAAA"}, "alg"),
    ("a192kw-on-256-bit-key", "oct", "wrapkey", {"alg": "A192KW", "value": D32}, "alg"),
    (
        "oaep-oversize",
        "RSA",
        "encrypt",
        {"alg": "RSA-OAEP", "value": b64u(b"x" * 215)},
        "value",
    ),
    (
        "oaep256-oversize",
        "RSA",
        "encrypt",
        {"alg": "RSA-OAEP-256", "value": b64u(b"x" * 191)},
        "value",
    ),
    ("rsa15-oversize", "RSA", "encrypt", {"alg": "RSA1_5", "value": b64u(b"x" * 246)}, "value"),
    ("wrap-oversize", "RSA", "wrapkey", {"alg": "RSA-OAEP", "value": b64u(b"x" * 215)}, "value"),
    ("value-not-base64url", "RSA", "encrypt", {"alg": "RSA-OAEP", "value": "a+b/c="}, "value"),
    ("value-missing", "RSA", "decrypt", {"alg": "RSA-OAEP"}, "value"),
    ("value-not-string", "RSA", "decrypt", {"alg": "RSA-OAEP", "value": 42}, "value"),
    ("decrypt-garbage", "RSA", "decrypt", {"alg": "RSA-OAEP", "value": b64u(b"\1" * 256)}, "value"),
    ("rs256-digest-31", "RSA", "sign", {"alg": "RS256", "value": b64u(b"d" * 31)}, "32"),
    ("ps512-digest-32", "RSA", "sign", {"alg": "PS512", "value": D32}, "64"),
    ("es256-digest-48", "EC", "sign", {"alg": "ES256", "value": D48}, "32"),
    ("sign-digest-not-base64url", "EC", "sign", {"alg": "ES256", "value": "!!"}, "value"),
    (
        "verify-digest-33",
        "EC",
        "verify",
        {"alg": "ES256", "digest": b64u(b"d" * 33), "value": D32},
        "digest",
    ),
    ("verify-no-digest", "RSA", "verify", {"alg": "RS256", "value": D32}, "digest"),
    (
        "verify-bad-signature-b64",
        "RSA",
        "verify",
        {"alg": "RS256", "digest": D32, "value": "?"},
        "value",
    ),
    ("cbc-without-iv", "oct", "encrypt", {"alg": "A256CBC", "value": b64u(b"b" * 16)}, "iv"),
    (
        "cbc-iv-8-bytes",
        "oct",
        "encrypt",
        {"alg": "A256CBC", "value": b64u(b"b" * 16), "iv": b64u(b"i" * 8)},
        "iv",
    ),
    (
        "cbc-iv-not-base64url",
        "oct",
        "encrypt",
        {"alg": "A256CBC", "value": b64u(b"b" * 16), "iv": "***"},
        "iv",
    ),
    (
        "cbc-partial-block",
        "oct",
        "encrypt",
        {"alg": "A256CBC", "value": b64u(b"b" * 15), "iv": IV16},
        "value",
    ),
    (
        "cbc-with-aad",
        "oct",
        "encrypt",
        {"alg": "A256CBCPAD", "value": "AAAA", "iv": IV16, "aad": "AAAA"},
        "aad",
    ),
    (
        "gcm-decrypt-without-tag",
        "oct",
        "decrypt",
        {"alg": "A256GCM", "value": "AAAA", "iv": b64u(b"n" * 12)},
        "tag",
    ),
    (
        "gcm-decrypt-without-iv",
        "oct",
        "decrypt",
        {"alg": "A256GCM", "value": "AAAA", "tag": b64u(b"t" * 16)},
        "iv",
    ),
    (
        "gcm-tag-short",
        "oct",
        "decrypt",
        {"alg": "A256GCM", "value": "AAAA", "iv": b64u(b"n" * 12), "tag": b64u(b"t" * 4)},
        "tag",
    ),
    ("kw-key-15-bytes", "oct", "wrapkey", {"alg": "A256KW", "value": b64u(b"k" * 15)}, "value"),
    (
        "ckm-wrap-12-bytes",
        "oct",
        "wrapkey",
        {"alg": "CKM_AES_KEY_WRAP", "value": b64u(b"k" * 12)},
        "value",
    ),
    ("unwrap-garbage", "oct", "unwrapkey", {"alg": "A256KW", "value": b64u(b"w" * 40)}, "value"),
]


@pytest.mark.parametrize(
    ("case", "kty", "op", "body", "names"), BAD_OPS, ids=[c[0] for c in BAD_OPS]
)
def test_crypto_operation_refuses_bad_input(
    api: Api, keys: dict[str, str], case: str, kty: str, op: str, body: Any, names: str
) -> None:
    name = keys[kty]
    before = api.versions(name)
    latest = api.ok("GET", f"/keys/{name}/")
    message = api.bad("POST", f"/keys/{name}//{op}", body)
    assert names in message, f"{case}: {message!r} does not name {names}"
    assert api.versions(name) == before
    assert api.ok("GET", f"/keys/{name}/") == latest  # attributes untouched
    # The same through the versioned path.
    version = latest["key"]["kid"].rsplit("/", 1)[-1]
    assert names in api.bad("POST", f"/keys/{name}/{version}/{op}", body)


# -- update, rotation policy, rng, restore, paths ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"key_ops": ["sign", "fly"]}, "key_ops"),
        ({"key_ops": "sign"}, "key_ops"),
        ({"attributes": {"exp": "soon"}}, "attributes.exp"),
        ({"attributes": {"enabled": 1}}, "attributes.enabled"),
        ({"attributes": []}, "attributes"),
        ({"tags": {"a": 1}}, "tags"),
    ],
)
def test_update_refuses_bad_body(api: Api, keys: dict[str, str], body: Any, names: str) -> None:
    name = keys["EC"]
    latest = api.ok("GET", f"/keys/{name}/")
    assert names in api.bad("PATCH", f"/keys/{name}/", body)
    assert api.ok("GET", f"/keys/{name}/") == latest


GOOD_POLICY = {
    "lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}}],
    "attributes": {"expiryTime": "P2Y"},
}


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"lifetimeActions": "rotate"}, "lifetimeActions"),
        (
            {
                "lifetimeActions": [
                    {"trigger": {"timeAfterCreate": "90 days"}, "action": {"type": "Rotate"}}
                ]
            },
            "timeAfterCreate",
        ),
        (
            {
                "lifetimeActions": [
                    {"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Explode"}}
                ]
            },
            "type",
        ),
        (
            {
                "lifetimeActions": [
                    {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}}
                ],
                "attributes": {"expiryTime": "P1D"},
            },
            "expiryTime",
        ),
        ({"lifetimeActions": [], "attributes": {"expiryTime": 90}}, "expiryTime"),
    ],
)
def test_rotation_policy_refuses_bad_body(
    api: Api, keys: dict[str, str], body: Any, names: str
) -> None:
    name = keys["RSA"]
    api.ok("PUT", f"/keys/{name}/rotationpolicy", GOOD_POLICY)
    before = api.ok("GET", f"/keys/{name}/rotationpolicy")
    assert names in api.bad("PUT", f"/keys/{name}/rotationpolicy", body)
    assert api.ok("GET", f"/keys/{name}/rotationpolicy") == before


@pytest.mark.parametrize(
    "body", [{}, {"count": 0}, {"count": 129}, {"count": "8"}, {"count": True}]
)
def test_random_bytes_refuses_bad_count(api: Api, body: Any) -> None:
    assert "count" in api.bad("POST", "/rng", body)


def test_restore_refuses_garbage(api: Api) -> None:
    for value in ("not base64 !", "AAAA", b64u(os.urandom(300))):
        assert "value" in api.bad("POST", "/keys/restore", {"value": value})
    assert "value" in api.bad("POST", "/keys/restore", {})


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/keys?maxresults=26", "maxresults"),
        ("/keys?maxresults=abc", "maxresults"),
        ("/keys/x/versions?maxresults=0", "maxresults"),
        ("/deletedkeys?$skiptoken=%%%", "continuation token"),
        ("/keys/x/not-a-version", "version"),
    ],
)
def test_bad_query_and_path(api: Api, path: str, names: str) -> None:
    assert names in api.bad("GET", path)
