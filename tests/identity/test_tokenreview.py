"""TokenReview authentication: the decision logic and its cache, with a fake Kubernetes API.

The real API server is exercised by e2e/tests/test_identity_cluster.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from kvault.errors import Unauthenticated, Unavailable
from kvault.identity.model import Principal
from kvault.identity.tokenreview import ReviewStatus, TokenReviewAuthenticator
from tests.fixtures.kvault import START, FakeClock
from tests.identity.conftest import SA, SA_GROUPS, FakeReviewer, sa_token


@pytest.fixture
def auth(reviewer: FakeReviewer, clock: FakeClock) -> TokenReviewAuthenticator:
    return TokenReviewAuthenticator(reviewer, clock=clock, max_ttl=3600)


async def refused(auth: TokenReviewAuthenticator, token: str) -> str:
    with pytest.raises(Unauthenticated) as info:
        await auth.authenticate(token)
    assert len(token) < 8 or token not in info.value.message
    return info.value.message


async def test_valid_token_becomes_a_principal(
    auth: TokenReviewAuthenticator, reviewer: FakeReviewer
) -> None:
    token = sa_token()
    reviewer.valid.add(token)
    p = await auth.authenticate(token)
    assert p == Principal(name=SA, groups=SA_GROUPS, uid="uid-1", expires=START + 3600)


async def test_success_is_cached_until_shortly_before_expiry(
    auth: TokenReviewAuthenticator, reviewer: FakeReviewer, clock: FakeClock
) -> None:
    token = sa_token()
    reviewer.valid.add(token)
    for _ in range(3):
        await auth.authenticate(token)
    assert reviewer.calls == 1
    clock.advance(3600 - 31)
    await auth.authenticate(token)
    assert reviewer.calls == 1
    clock.advance(1)  # 30 s before exp: ask again
    await auth.authenticate(token)
    assert reviewer.calls == 2
    assert all(len(k) == 32 for k in auth.cache._entries)  # digests, never tokens


async def test_max_ttl_bounds_long_lived_tokens(reviewer: FakeReviewer, clock: FakeClock) -> None:
    """A revoked token (pod deleted) stops working within max_ttl, however long it lives."""
    auth = TokenReviewAuthenticator(reviewer, clock=clock, max_ttl=300)
    token = sa_token(exp=None)
    reviewer.valid.add(token)
    assert (await auth.authenticate(token)).expires is None
    clock.advance(299)
    await auth.authenticate(token)
    assert reviewer.calls == 1
    reviewer.valid.clear()
    clock.advance(1)
    assert "invalid token" in await refused(auth, token)
    assert reviewer.calls == 2


async def test_failures_are_cached_briefly(
    auth: TokenReviewAuthenticator, reviewer: FakeReviewer, clock: FakeClock
) -> None:
    token = sa_token()
    for _ in range(10):
        assert "invalid bearer token" in await refused(auth, token)
    assert reviewer.calls == 1
    clock.advance(5)
    reviewer.valid.add(token)
    assert (await auth.authenticate(token)).name == SA
    assert reviewer.calls == 2


async def test_wrong_audience_and_expiry_are_refused_without_a_round_trip(
    auth: TokenReviewAuthenticator, reviewer: FakeReviewer
) -> None:
    other = sa_token(aud=("https://kubernetes.default.svc",))
    reviewer.valid.add(other)
    msg = await refused(auth, other)
    assert "wrong audience" in msg and "'kvault'" in msg
    assert "wrong audience" in await refused(auth, sa_token(aud="other"))
    assert "expired" in await refused(auth, sa_token(exp=START))
    assert reviewer.calls == 0


async def test_audience_must_be_confirmed_by_the_api_server(
    auth: TokenReviewAuthenticator, reviewer: FakeReviewer
) -> None:
    token = sa_token(aud=None)  # no aud claim: only the API server can say
    reviewer.valid.add(token)
    reviewer.audiences = ()
    assert "wrong audience" in await refused(auth, token)
    assert reviewer.calls == 1


async def test_malformed_tokens_never_reach_the_api(
    auth: TokenReviewAuthenticator, reviewer: FakeReviewer
) -> None:
    for bad in ("", "a b", "x" * 20000, "tök"):
        assert "malformed" in await refused(auth, bad)
    assert reviewer.calls == 0


async def test_non_jwt_tokens_are_reviewed(
    auth: TokenReviewAuthenticator, reviewer: FakeReviewer
) -> None:
    assert "invalid token" in await refused(auth, "abcdef.0123456789abcdef")
    assert reviewer.calls == 1


async def test_api_errors_are_scrubbed_of_the_token(
    auth: TokenReviewAuthenticator, reviewer: FakeReviewer
) -> None:
    token = sa_token()
    reviewer.error = f"token {token} is no good"
    msg = await refused(auth, token)
    assert "<token>" in msg


async def test_unreachable_api_is_unavailable_and_not_cached(
    auth: TokenReviewAuthenticator, reviewer: FakeReviewer
) -> None:
    token = sa_token()
    reviewer.valid.add(token)
    reviewer.unavailable = True
    with pytest.raises(Unavailable):
        await auth.authenticate(token)
    reviewer.unavailable = False
    assert (await auth.authenticate(token)).name == SA
    assert reviewer.calls == 2


async def test_concurrent_requests_share_one_review(clock: FakeClock) -> None:
    release = asyncio.Event()
    calls = 0

    async def slow(token: str, audiences: Sequence[str]) -> ReviewStatus:
        nonlocal calls
        calls += 1
        await release.wait()
        return ReviewStatus(True, username=SA, audiences=tuple(audiences))

    auth = TokenReviewAuthenticator(slow, clock=clock)
    token = sa_token()
    waiters = [asyncio.create_task(auth.authenticate(token)) for _ in range(20)]
    await asyncio.sleep(0)  # let them all start (a yield, not a timed wait)
    waiters[0].cancel()  # one caller giving up does not cancel the others' review
    release.set()
    results = await asyncio.gather(*waiters[1:])
    assert calls == 1 and {p.name for p in results} == {SA}


async def test_cache_is_bounded(reviewer: FakeReviewer, clock: FakeClock) -> None:
    auth = TokenReviewAuthenticator(reviewer, clock=clock, cache_size=10)
    for i in range(50):
        token = sa_token(nonce=str(i))
        reviewer.valid.add(token)
        await auth.authenticate(token)
        assert len(auth.cache) <= 10
