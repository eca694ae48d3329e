"""The edges of kvault access-token verification (``kvault.identity.tokens``): each refusal's
exact message and reason, the leeway on ``exp`` and ``nbf`` to the second, audiences, claims
left out, what is cached and for how long, and when the signing keys are read again."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kvault.errors import Unauthenticated
from kvault.identity import jws
from kvault.identity.model import Principal
from kvault.identity.signing import SigningKeys
from kvault.identity.tokens import (
    KEY_MAX_AGE,
    LEEWAY,
    UNKNOWN_KID_REFRESH,
    AccessTokens,
)
from kvault.vault.service import Kvault
from tests.fixtures.kvault import START, FakeClock
from tests.identity.conftest import SA, SA_GROUPS

ALICE = Principal(name=SA, groups=SA_GROUPS, uid="u-1")


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {
        "iss": "kvault",
        "sub": SA,
        "aud": "kvault",
        "groups": list(SA_GROUPS),
        "uid": "u-1",
        "iat": START,
        "nbf": START,
        "exp": START + 3600,
        "jti": "j",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not ...}


def _signed(tokens: AccessTokens, **changes: Any) -> str:
    assert tokens.keys.current is not None
    key = tokens.keys.current.active
    return jws.sign(key.private, key.kid, _claims(**changes))


async def _refusal(tokens: AccessTokens, token: str) -> tuple[str, str]:
    tokens.cache.clear()
    with pytest.raises(Unauthenticated) as info:
        await tokens.authenticate(token)
    return info.value.message, info.value.reason


async def _accepted(tokens: AccessTokens, token: str) -> Principal:
    tokens.cache.clear()
    return await tokens.authenticate(token)


def _counting(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    calls: list[int] = []
    real: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


MALFORMED = "MalformedToken"


@pytest.mark.parametrize(
    ("changes", "message", "reason"),
    [
        ({"iss": "evil"}, "wrong issuer: the token was not issued by this kvault", "WrongIssuer"),
        ({"aud": "other"}, "wrong audience: the token is not for 'kvault'", "WrongAudience"),
        ({"exp": "soon"}, "malformed token: exp and nbf must be integers", MALFORMED),
        ({"exp": ...}, "malformed token: exp and nbf must be integers", MALFORMED),
        ({"nbf": 1.5}, "malformed token: exp and nbf must be integers", MALFORMED),
        ({"sub": ""}, "malformed token: no subject", MALFORMED),
        ({"sub": ...}, "malformed token: no subject", MALFORMED),
        ({"sub": 7}, "malformed token: no subject", MALFORMED),
        ({"groups": "team"}, "malformed token: groups must be a list of strings", MALFORMED),
        ({"groups": ["a", 1]}, "malformed token: groups must be a list of strings", MALFORMED),
        ({"exp": START - LEEWAY}, "expired: the access token has expired", "ExpiredToken"),
        (
            {"nbf": START + LEEWAY + 1},
            "not yet valid: the access token's nbf is in the future",
            "NotYetValid",
        ),
    ],
)
async def test_each_refusal_says_exactly_why(
    tokens: AccessTokens, changes: dict[str, Any], message: str, reason: str
) -> None:
    assert await _refusal(tokens, _signed(tokens, **changes)) == (message, reason)
    # Refused again from the cache: the same message and reason.
    with pytest.raises(Unauthenticated) as again:
        await tokens.authenticate(_signed(tokens, **changes))
    assert (again.value.message, again.value.reason) == (message, reason)


async def test_a_foreign_algorithm_or_key_is_a_bad_signature(tokens: AccessTokens) -> None:
    assert tokens.keys.current is not None
    kid = tokens.keys.current.active.kid
    payload = jws.b64url(json.dumps(_claims()).encode())
    for alg in ("HS256", "none", "RS256"):
        head = jws.b64url(json.dumps({"alg": alg, "kid": kid}).encode())
        assert await _refusal(tokens, f"{head}.{payload}.{jws.b64url(b'x' * 64)}") == (
            "bad signature: algorithm must be ES256",
            "BadSignature",
        )
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert await _refusal(tokens, jws.sign(stranger, "unknown-kid", _claims())) == (
        "bad signature: the token is signed by an unknown key",
        "BadSignature",
    )
    # Not a string: never a dictionary lookup that could fail on an unhashable kid.
    for kid_value in ([kid], {"k": 1}, 5, None):
        head = jws.b64url(json.dumps({"alg": "ES256", "kid": kid_value}).encode())
        assert await _refusal(tokens, f"{head}.{payload}.{jws.b64url(b'x' * 64)}") == (
            "bad signature: the token is signed by an unknown key",
            "BadSignature",
        )


async def test_a_credential_that_expires_now_gets_no_token(
    tokens: AccessTokens, clock: FakeClock
) -> None:
    with pytest.raises(Unauthenticated) as info:
        await tokens.mint(ALICE, not_after=clock.now)
    assert (info.value.message, info.value.reason) == (
        "expired: the credential expires before a token could be issued",
        "ExpiredToken",
    )
    assert (await tokens.mint(ALICE, not_after=clock.now + 1)).expires_on == clock.now + 1


@pytest.mark.parametrize(
    ("aud", "accepted"),
    [
        ("kvault", True),
        (["other", "kvault"], True),
        (["kvault"], True),
        ("kvault-other", False),  # contains the audience: still another one
        ("kvaul", False),
        (["kvault-other"], False),
        (["other"], False),
        ([], False),
        (None, False),
        ({"kvault": 1}, False),
    ],
)
async def test_the_audience_must_be_kvault_or_list_it(
    tokens: AccessTokens, aud: Any, accepted: bool
) -> None:
    token = _signed(tokens, aud=aud)
    if accepted:
        assert (await _accepted(tokens, token)).name == SA
    else:
        assert (await _refusal(tokens, token))[1] == "WrongAudience"


async def test_exp_and_nbf_hold_to_the_second_with_the_leeway(
    tokens: AccessTokens, clock: FakeClock
) -> None:
    exp_token = _signed(tokens, exp=START + 100)
    clock.now = START + 100 + LEEWAY - 1
    assert (await _accepted(tokens, exp_token)).expires == START + 100
    clock.now = START + 100 + LEEWAY
    assert (await _refusal(tokens, exp_token))[1] == "ExpiredToken"

    nbf_token = _signed(tokens, nbf=START + 100)
    clock.now = START + 100 - LEEWAY
    assert (await _accepted(tokens, nbf_token)).name == SA
    clock.now = START + 100 - LEEWAY - 1
    assert (await _refusal(tokens, nbf_token))[1] == "NotYetValid"


async def test_claims_left_out_take_their_defaults(tokens: AccessTokens) -> None:
    bare = await _accepted(tokens, _signed(tokens, nbf=..., groups=..., uid=..., iat=..., jti=...))
    assert bare == Principal(name=SA, groups=(), uid="", expires=START + 3600)
    assert (await _accepted(tokens, _signed(tokens, uid=5))).uid == ""  # not a string: none
    assert (await _accepted(tokens, _signed(tokens, uid="u-9"))).uid == "u-9"


async def test_a_token_minted_without_a_client_has_no_azp(tokens: AccessTokens) -> None:
    claims = jws.claims_unverified((await tokens.mint(ALICE)).token)
    assert "azp" not in claims
    assert claims["uid"] == "u-1"
    claims = jws.claims_unverified((await tokens.mint(Principal(SA))).token)
    assert "uid" not in claims


async def test_a_verified_token_is_not_verified_again_while_it_is_valid(
    tokens: AccessTokens, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified = _counting(monkeypatch, jws, "verify_signature")
    minted = (await tokens.mint(ALICE)).token  # this replica minted it: known good
    seen = _signed(tokens, jti="other")
    await tokens.authenticate(minted)
    await tokens.authenticate(seen)
    assert len(verified) == 1
    clock.now = START + 3600 + LEEWAY - 1  # the last second of the leeway
    assert (await tokens.authenticate(minted)).name == SA
    assert (await tokens.authenticate(seen)).name == SA
    assert len(verified) == 1  # both still from the cache
    clock.advance(1)
    with pytest.raises(Unauthenticated):
        await tokens.authenticate(minted)


async def test_a_refusal_is_remembered_for_five_seconds(
    tokens: AccessTokens, clock: FakeClock
) -> None:
    early = _signed(tokens, nbf=START + LEEWAY + 3)  # valid from START + 3
    with pytest.raises(Unauthenticated, match="not yet valid"):
        await tokens.authenticate(early)
    clock.advance(4)  # valid now, but the refusal is still remembered
    with pytest.raises(Unauthenticated, match="not yet valid"):
        await tokens.authenticate(early)
    clock.advance(1)
    assert (await tokens.authenticate(early)).name == SA


async def test_unknown_kids_read_the_keys_again_at_most_every_ten_seconds(
    tokens: AccessTokens, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    refreshed = _counting(monkeypatch, tokens.keys, "refresh")
    ensured = _counting(monkeypatch, tokens.keys, "ensure")
    stranger = ec.generate_private_key(ec.SECP256R1())

    async def forged(n: int) -> None:
        with pytest.raises(Unauthenticated, match="unknown key"):
            await tokens.authenticate(jws.sign(stranger, f"kid-{n}", _claims()))

    await forged(1)
    assert len(refreshed) == 1
    clock.advance(int(UNKNOWN_KID_REFRESH) - 1)
    await forged(2)
    assert len(refreshed) == 1
    clock.advance(1)
    await forged(3)
    assert len(refreshed) == 2
    await forged(4)
    assert len(refreshed) == 2
    await tokens.mint(ALICE)  # the keys were just read: minting does not read them again
    assert (len(refreshed), len(ensured)) == (2, 0)


async def test_a_key_rotated_elsewhere_is_found_by_its_kid(
    tokens: AccessTokens, soft_kv: Kvault, clock: FakeClock
) -> None:
    replica = AccessTokens(SigningKeys(soft_kv.sealed, clock=clock), clock=clock)
    await replica.start()
    await replica.keys.rotate()
    token = (await replica.mint(ALICE)).token
    assert (await tokens.authenticate(token)).name == SA  # an unknown kid: keys read again
    clock.advance(1)
    await replica.keys.rotate()
    newer = (await replica.mint(ALICE)).token
    with pytest.raises(Unauthenticated, match="unknown key"):  # read 1 s ago: not again yet
        await tokens.authenticate(newer)


async def test_verifying_and_minting_read_the_keys_only_when_due(
    tokens: AccessTokens, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensured = _counting(monkeypatch, tokens.keys, "ensure")
    refreshed = _counting(monkeypatch, tokens.keys, "refresh")
    for n in range(3):
        await _accepted(tokens, _signed(tokens, jti=str(n)))
    await tokens.mint(ALICE)
    clock.now = START + int(KEY_MAX_AGE)
    await tokens.mint(ALICE)
    assert (len(ensured), len(refreshed)) == (0, 0)
    clock.advance(1)  # the key row is older than KEY_MAX_AGE: read it again, once
    await tokens.mint(ALICE)
    await tokens.mint(ALICE)
    assert (len(ensured), len(refreshed)) == (0, 1)


async def test_a_replica_that_was_not_started_loads_the_keys_once(
    soft_kv: Kvault, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = AccessTokens(SigningKeys(soft_kv.sealed, clock=clock), clock=clock)
    ensured = _counting(monkeypatch, tokens.keys, "ensure")
    refreshed = _counting(monkeypatch, tokens.keys, "refresh")
    await tokens.mint(ALICE)
    await tokens.mint(ALICE)
    assert (len(ensured), len(refreshed)) == (1, 0)
    other = AccessTokens(SigningKeys(soft_kv.sealed, clock=clock), clock=clock)
    other_ensured = _counting(monkeypatch, other.keys, "ensure")
    token = (await tokens.mint(Principal("someone"))).token
    assert (await other.authenticate(token)).name == "someone"  # verifying loads them too
    assert len(other_ensured) == 1


async def test_our_own_tokens_are_recognised_without_decoding(
    tokens: AccessTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = (await tokens.mint(ALICE)).token

    def no_decoding(_: str) -> dict[str, Any]:
        raise AssertionError("decoded a token the header string identifies")

    monkeypatch.setattr(jws, "header", no_decoding)
    assert tokens.is_ours(token)


async def test_what_counts_as_ours(tokens: AccessTokens) -> None:
    assert tokens.keys.current is not None
    key = tokens.keys.current.active
    payload = jws.b64url(json.dumps(_claims(iss="someone-else")).encode())
    sig = jws.b64url(b"x" * 64)

    def token(head: dict[str, Any], body: str = payload) -> str:
        return f"{jws.b64url(json.dumps(head).encode())}.{body}.{sig}"

    # Our kid in a header of another spelling, whatever the issuer: ours (and refused here
    # if forged, never handed to TokenReview).
    assert tokens.is_ours(token({"kid": key.kid, "alg": "ES256"}))
    ours_by_issuer = jws.b64url(json.dumps(_claims()).encode())
    assert tokens.is_ours(token({"alg": "ES256", "kid": "unknown"}, ours_by_issuer))
    assert not tokens.is_ours(token({"alg": "ES256", "kid": "unknown"}))
    assert not tokens.is_ours(token({"alg": "RS256", "kid": key.kid}))
    assert not tokens.is_ours("not-a-token")
    assert not tokens.is_ours(token({"alg": "ES256"}, "!!"))
