"""kvault access tokens: mint, verify, refuse with a precise reason, cache, rotate."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kvault.errors import Unauthenticated
from kvault.identity import jws
from kvault.identity.chain import ChainAuthenticator
from kvault.identity.model import Principal
from kvault.identity.signing import SigningKeys
from kvault.identity.tokenreview import TokenReviewAuthenticator
from kvault.identity.tokens import LEEWAY, AccessTokens
from kvault.vault.service import Kvault
from tests.fixtures.kvault import START, FakeClock
from tests.identity.conftest import SA, SA_GROUPS, FakeReviewer, sa_token

ALICE = Principal(name=SA, groups=SA_GROUPS, uid="u-1")


async def refused(tokens: Any, token: str) -> str:
    """The refusal message, checked never to contain the token."""
    with pytest.raises(Unauthenticated) as info:
        await tokens.authenticate(token)
    assert len(token) < 8 or token not in info.value.message
    return info.value.message


def resign(tokens: AccessTokens, claims: dict[str, Any], **header: Any) -> str:
    """A token with arbitrary claims, correctly signed by the active key."""
    assert tokens.keys.current is not None
    key = tokens.keys.current.active
    return jws.sign(key.private, header.get("kid", key.kid), claims)


async def test_mint_then_verify_round_trips(tokens: AccessTokens) -> None:
    issued = await tokens.mint(ALICE, client_id="app-client")
    assert issued.expires_on == START + 3600 and issued.issued_at == START
    assert issued.token not in repr(issued)
    p = await tokens.authenticate(issued.token)
    assert p == Principal(name=SA, groups=SA_GROUPS, uid="u-1", expires=START + 3600)
    head = jws.header(issued.token)
    assert head == {"alg": "ES256", "kid": tokens.keys.by_kid[head["kid"]].kid, "typ": "JWT"}
    claims = jws.claims_unverified(issued.token)
    assert claims["iss"] == "kvault" and claims["aud"] == "kvault" and claims["azp"] == "app-client"
    assert claims["iat"] == claims["nbf"] == START and len(claims["jti"]) == 32


async def test_lifetime_never_outlives_the_exchanged_credential(tokens: AccessTokens) -> None:
    issued = await tokens.mint(ALICE, not_after=START + 600)
    assert issued.expires_on == START + 600
    with pytest.raises(Unauthenticated, match="expired"):
        await tokens.mint(ALICE, not_after=START)


async def test_tampered_payload_and_signature_are_refused(tokens: AccessTokens) -> None:
    token = (await tokens.mint(ALICE)).token
    head, payload, sig = token.split(".")
    claims = jws.claims_unverified(token)
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    forged = f"{head}.{jws.b64url(json.dumps(claims).encode())}.{sig}"
    assert "bad signature" in await refused(tokens, forged)
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    assert "bad signature" in await refused(tokens, f"{head}.{payload}.{flipped}")
    assert "bad signature" in await refused(tokens, f"{head}.{payload}.{jws.b64url(b'x' * 10)}")


async def test_expiry_and_not_before_with_leeway(tokens: AccessTokens, clock: FakeClock) -> None:
    token = (await tokens.mint(ALICE)).token
    await tokens.authenticate(token)  # cached now
    clock.advance(3600 + LEEWAY - 1)
    assert (await tokens.authenticate(token)).name == SA  # within the leeway
    clock.advance(1)
    assert "expired" in await refused(tokens, token)
    claims = jws.claims_unverified(token) | {"nbf": clock.now + 120, "exp": clock.now + 3600}
    assert "not yet valid" in await refused(tokens, resign(tokens, claims))


async def test_wrong_audience_issuer_and_algorithm(tokens: AccessTokens) -> None:
    good = jws.claims_unverified((await tokens.mint(ALICE)).token)
    msg = await refused(tokens, resign(tokens, good | {"aud": "https://kubernetes.default.svc"}))
    assert "wrong audience" in msg
    assert "wrong issuer" in await refused(tokens, resign(tokens, good | {"iss": "evil"}))
    other = AccessTokens(tokens.keys, audience="other", clock=tokens._clock)
    assert "wrong audience" in await refused(other, (await tokens.mint(ALICE)).token)
    none_alg = jws.b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{none_alg}.{jws.b64url(json.dumps(good).encode())}.x"
    assert "algorithm must be ES256" in await refused(tokens, unsigned)


async def test_malformed_tokens(tokens: AccessTokens) -> None:
    for bad in ("", "abc", "a.b", "a.b.c.d", "!!!.e30.x", "bm90LWpzb24.e30.x", "W10.e30.x"):
        assert "malformed" in await refused(tokens, bad)
    good = jws.claims_unverified((await tokens.mint(ALICE)).token)
    assert "malformed" in await refused(tokens, resign(tokens, good | {"exp": "soon"}))
    assert "malformed" in await refused(tokens, resign(tokens, good | {"sub": ""}))
    assert "malformed" in await refused(tokens, resign(tokens, good | {"groups": [1]}))
    assert "malformed" in await refused(tokens, "x" * 20000)


async def test_foreign_key_is_refused(
    tokens: AccessTokens, soft_kv: Kvault, clock: FakeClock
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    claims = jws.claims_unverified((await tokens.mint(ALICE)).token)
    # A key we never had, under its own kid: unknown key. Under our kid: bad signature.
    assert "unknown key" in await refused(tokens, jws.sign(stranger, "not-ours", claims))
    assert tokens.keys.current is not None
    ours = tokens.keys.current.active.kid
    assert "bad signature" in await refused(tokens, jws.sign(stranger, ours, claims))


async def test_verified_tokens_are_cached_by_digest(
    tokens: AccessTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = jws.verify_signature

    def counting(token: str, key: ec.EllipticCurvePublicKey) -> None:
        nonlocal calls
        calls += 1
        real(token, key)

    monkeypatch.setattr(jws, "verify_signature", counting)
    token = (await tokens.mint(ALICE)).token
    await tokens.authenticate(token)
    assert calls == 0  # minted here: known good without a signature check
    tokens.cache.clear()  # as on another replica
    for _ in range(5):
        await tokens.authenticate(token)
    assert calls == 1
    bad = token[:-4] + "AAAA"
    for _ in range(3):
        await refused(tokens, bad)
    assert calls == 2  # the refusal is cached briefly too
    assert all(len(k) == 32 for k in tokens.cache._entries)  # digests, never tokens


# What a cached verification costs (the data plane's 20 µs budget) is a figure of
# `python -m bench identity`, not an assertion here: a timing fails on a busy machine.


async def test_rotation_keeps_old_tokens_valid_and_reaches_other_replicas(
    tokens: AccessTokens, soft_kv: Kvault, clock: FakeClock
) -> None:
    old = (await tokens.mint(ALICE)).token
    replica = AccessTokens(SigningKeys(soft_kv.sealed, clock=clock), clock=clock)
    await replica.start()
    new_kid = await tokens.keys.rotate()
    new = (await tokens.mint(ALICE)).token
    assert jws.header(new)["kid"] == new_kid != jws.header(old)["kid"]
    tokens.cache.clear()
    assert (await tokens.authenticate(old)).name == SA
    # The replica has not seen the rotation: the unknown kid makes it re-read the keys once.
    assert replica.is_ours(new)
    assert (await replica.authenticate(new)).name == SA
    for _ in range(3):
        await tokens.keys.rotate(keep=2)
    tokens.cache.clear()
    assert "unknown key" in await refused(tokens, old)


async def test_chain_routes_by_issuer(tokens: AccessTokens, reviewer: FakeReviewer) -> None:
    chain = ChainAuthenticator(tokens, TokenReviewAuthenticator(reviewer, clock=tokens._clock))
    sa = sa_token()
    reviewer.valid.add(sa)
    assert (await chain.authenticate(sa)).name == SA and reviewer.calls == 1
    ours = (await tokens.mint(ALICE)).token
    assert (await chain.authenticate(ours)).name == SA and reviewer.calls == 1
    # A forged token claiming our issuer fails locally; it is never sent to Kubernetes.
    forged = jws.sign(ec.generate_private_key(ec.SECP256R1()), "x", jws.claims_unverified(ours))
    with pytest.raises(Unauthenticated, match="unknown key"):
        await chain.authenticate(forged)
    assert reviewer.calls == 1
    with pytest.raises(Unauthenticated):
        await chain.authenticate("not-a-jwt")
    assert reviewer.calls == 2
