"""Each refusal carries a fixed reason code (the audit outcome and the metric label), also
when the refusal comes from the cache."""

from __future__ import annotations

from typing import Any

import pytest

from kvault.errors import AUTH_REASONS, Unauthenticated
from kvault.identity import jws
from kvault.identity.model import Principal
from kvault.identity.static import StaticTokens
from kvault.identity.tokenreview import TokenReviewAuthenticator
from kvault.identity.tokens import LEEWAY, AccessTokens
from tests.fixtures.kvault import FakeClock
from tests.identity.conftest import SA, FakeReviewer, sa_token


async def reason(authenticator: Any, token: str) -> str:
    with pytest.raises(Unauthenticated) as info:
        await authenticator.authenticate(token)
    assert info.value.reason in AUTH_REASONS
    return info.value.reason


async def test_kvault_token_refusals(tokens: AccessTokens, clock: FakeClock) -> None:
    issued = await tokens.mint(Principal(SA))
    claims = jws.claims_unverified(issued.token)
    key = tokens.keys.current.active if tokens.keys.current else None
    assert key is not None

    def signed(**changes: Any) -> str:
        return jws.sign(key.private, key.kid, claims | changes)

    assert await reason(tokens, "a.b") == "MalformedToken"
    assert await reason(tokens, signed(sub="")) == "MalformedToken"
    assert await reason(tokens, issued.token[:-4] + "AAAA") == "BadSignature"
    assert await reason(tokens, signed(iss="evil")) == "WrongIssuer"
    assert await reason(tokens, signed(aud="other")) == "WrongAudience"
    assert await reason(tokens, signed(nbf=clock.now + 600)) == "NotYetValid"
    clock.advance(3600 + LEEWAY)
    assert await reason(tokens, issued.token) == "ExpiredToken"
    assert await reason(tokens, issued.token) == "ExpiredToken"  # from the cache now


async def test_service_account_token_refusals(reviewer: FakeReviewer, clock: FakeClock) -> None:
    review = TokenReviewAuthenticator(reviewer, audiences=("kvault",), clock=clock)
    assert await reason(review, "has space") == "MalformedToken"
    assert await reason(review, sa_token(aud="not-kvault")) == "WrongAudience"
    assert await reason(review, sa_token(exp=int(clock.now) - 1)) == "ExpiredToken"
    revoked = sa_token(nonce="revoked")
    assert await reason(review, revoked) == "InvalidToken"
    assert await reason(review, revoked) == "InvalidToken"  # from the cache now


async def test_static_tokens_refuse_as_invalid() -> None:
    assert await reason(StaticTokens({"t": Principal("x")}), "wrong") == "InvalidToken"


def test_an_unknown_reason_is_invalid_token() -> None:
    assert Unauthenticated("m", "Whatever").reason == "InvalidToken"
    assert Unauthenticated("m").reason == "InvalidToken"
