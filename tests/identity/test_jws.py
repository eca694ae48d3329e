"""Compact ES256 JWS (``kvault.identity.jws``): the wire format, and every refusal with its
exact message and reason code (the audit outcome and the metric label)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kvault.errors import Unauthenticated
from kvault.identity import jws

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())


def _refusal(call: object, *args: object) -> tuple[str, str]:
    with pytest.raises(Unauthenticated) as info:
        call(*args)  # type: ignore[operator]
    return info.value.message, info.value.reason


def test_the_header_segment_is_fixed_compact_json() -> None:
    segment = jws.encode_header("kid-1")
    assert jws.unb64url(segment) == b'{"alg":"ES256","kid":"kid-1","typ":"JWT"}'
    token = jws.sign(KEY, "kid-1", {"sub": "a", "n": 1})
    head, payload, sig = token.split(".")
    assert head == segment
    assert jws.unb64url(payload) == b'{"sub":"a","n":1}'  # compact: no spaces
    assert len(jws.unb64url(sig)) == 64  # r || s, 32 bytes each (not DER)
    assert jws.header(token) == {"alg": "ES256", "kid": "kid-1", "typ": "JWT"}
    assert jws.claims_unverified(token) == {"sub": "a", "n": 1}


def test_a_signature_verifies_with_its_key_only() -> None:
    token = jws.sign(KEY, "k", {"sub": "a"})
    jws.verify_signature(token, KEY.public_key())
    assert _refusal(jws.verify_signature, token, OTHER.public_key()) == (
        "bad signature",
        "BadSignature",
    )
    head, payload, sig = token.split(".")
    raw = jws.unb64url(sig)
    for swapped in (raw[32:] + raw[:32], raw[:31] + bytes([raw[31] ^ 1]) + raw[32:]):
        bad = f"{head}.{payload}.{jws.b64url(swapped)}"
        assert _refusal(jws.verify_signature, bad, KEY.public_key())[1] == "BadSignature"
    other_payload = jws.b64url(b'{"sub":"b"}')
    assert _refusal(jws.verify_signature, f"{head}.{other_payload}.{sig}", KEY.public_key()) == (
        "bad signature",
        "BadSignature",
    )


@pytest.mark.parametrize(
    ("sig", "message", "reason"),
    [
        ("", "bad signature: not an ES256 signature", "BadSignature"),
        (jws.b64url(b"x" * 63), "bad signature: not an ES256 signature", "BadSignature"),
        (jws.b64url(b"x" * 65), "bad signature: not an ES256 signature", "BadSignature"),
        ("a", "malformed token: signature is not base64url", "MalformedToken"),
        ("abcde", "malformed token: signature is not base64url", "MalformedToken"),
    ],
)
def test_a_signature_that_is_not_one_is_refused_precisely(
    sig: str, message: str, reason: str
) -> None:
    head, payload, _ = jws.sign(KEY, "k", {"sub": "a"}).split(".")
    assert _refusal(jws.verify_signature, f"{head}.{payload}.{sig}", KEY.public_key()) == (
        message,
        reason,
    )


def test_a_non_ascii_signing_input_is_a_bad_signature_not_a_crash() -> None:
    token = jws.sign(KEY, "k", {"sub": "a"})
    _, payload, sig = token.split(".")
    assert _refusal(jws.verify_signature, f"é.{payload}.{sig}", KEY.public_key()) == (
        "bad signature",
        "BadSignature",
    )


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("a.b", "malformed token: not a compact JWT (three dot-separated parts)"),
        ("a.b.c.d", "malformed token: not a compact JWT (three dot-separated parts)"),
        (".b.c", "malformed token: not a compact JWT (three dot-separated parts)"),
        ("a..c", "malformed token: not a compact JWT (three dot-separated parts)"),
        ("", "malformed token: not a compact JWT (three dot-separated parts)"),
        ("a" * (jws.MAX_TOKEN_LENGTH + 1), "malformed token: too long"),
    ],
)
def test_split_refuses_what_is_not_a_compact_jwt(token: str, message: str) -> None:
    assert _refusal(jws.split, token) == (message, "MalformedToken")


def test_split_takes_an_empty_signature_and_tokens_up_to_the_limit() -> None:
    assert jws.split("a.b.") == ("a", "b", "")  # the signature check refuses it, precisely
    head = jws.encode_header("k")
    longest = f"{head}.{'a' * (jws.MAX_TOKEN_LENGTH - len(head) - 2)}."
    assert len(longest) == jws.MAX_TOKEN_LENGTH
    assert jws.split(longest)[0] == head


@pytest.mark.parametrize(
    ("part", "message"),
    [
        ("!!", "is not base64url JSON"),
        (jws.b64url(b"not json"), "is not base64url JSON"),
        (jws.b64url(b"[1, 2]"), "is not a JSON object"),
        (jws.b64url(b'"text"'), "is not a JSON object"),
    ],
)
def test_header_and_payload_must_be_json_objects(part: str, message: str) -> None:
    good = jws.b64url(json.dumps({"a": 1}).encode())
    assert _refusal(jws.header, f"{part}.{good}.sig") == (
        f"malformed token: its header {message}",
        "MalformedToken",
    )
    assert _refusal(jws.claims_unverified, f"{good}.{part}.sig") == (
        f"malformed token: its payload {message}",
        "MalformedToken",
    )


def test_digest_and_thumbprint_are_stable() -> None:
    assert jws.digest("abc") == bytes.fromhex(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    public = KEY.public_key()
    assert jws.thumbprint(public) == jws.thumbprint(public) != jws.thumbprint(OTHER.public_key())
    jwk = jws.public_jwk(public)
    assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256") and "d" not in jwk
