"""The OAuth2 token endpoint, as WorkloadIdentityCredential calls it."""

from __future__ import annotations

import pytest

from kvault.identity import jws
from kvault.identity.chain import ChainAuthenticator
from kvault.identity.exchange import ASSERTION_TYPE, TokenExchange
from kvault.identity.service import open_identity
from kvault.identity.tokenreview import TokenReviewAuthenticator
from kvault.identity.tokens import AccessTokens
from kvault.vault.service import Kvault
from tests.fixtures.kvault import START, FakeClock
from tests.identity.conftest import SA, SA_GROUPS, FakeReviewer, sa_token


@pytest.fixture
def reviews(reviewer: FakeReviewer, clock: FakeClock) -> TokenReviewAuthenticator:
    return TokenReviewAuthenticator(reviewer, clock=clock)


@pytest.fixture
def exchange(reviews: TokenReviewAuthenticator, tokens: AccessTokens) -> TokenExchange:
    return TokenExchange(reviews, tokens)


def form(assertion: str, **extra: str) -> dict[str, str]:
    """The body WorkloadIdentityCredential posts (azure-identity 1.x)."""
    return {
        "client_assertion": assertion,
        "client_assertion_type": ASSERTION_TYPE,
        "client_id": "00000000-0000-0000-0000-000000000001",
        "grant_type": "client_credentials",
        "scope": "https://v1.kvault.example/.default",
        "claims": '{"access_token": {"xms_cc": {"values": ["CP1"]}}}',
        **extra,
    }


async def test_exchange_returns_what_msal_reads_and_the_token_verifies_locally(
    exchange: TokenExchange,
    reviewer: FakeReviewer,
    reviews: TokenReviewAuthenticator,
    tokens: AccessTokens,
) -> None:
    assertion = sa_token(exp=START + 7200)
    reviewer.valid.add(assertion)
    resp = await exchange.exchange(form(assertion))
    assert resp.status == 200
    assert resp.headers == {"Cache-Control": "no-store", "Pragma": "no-cache"}
    assert set(resp.body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert resp.body["token_type"] == "Bearer"
    assert resp.body["expires_in"] == resp.body["ext_expires_in"] == 3600
    access = resp.body["access_token"]
    assert access not in repr(resp)
    assert jws.claims_unverified(access)["azp"] == "00000000-0000-0000-0000-000000000001"
    calls = reviewer.calls
    p = await ChainAuthenticator(tokens, reviews).authenticate(access)
    assert (p.name, p.groups) == (SA, SA_GROUPS)
    assert reviewer.calls == calls  # verified locally, no TokenReview
    tokens.cache.clear()  # as on a replica that did not mint it: checks the signature
    assert await ChainAuthenticator(tokens, reviews).authenticate(access) == p
    assert reviewer.calls == calls


async def test_access_token_ends_with_the_assertion(
    exchange: TokenExchange, reviewer: FakeReviewer
) -> None:
    assertion = sa_token(exp=START + 900)
    reviewer.valid.add(assertion)
    resp = await exchange.exchange(form(assertion))
    assert resp.body["expires_in"] == 900
    assert jws.claims_unverified(resp.body["access_token"])["exp"] == START + 900


@pytest.mark.parametrize(
    ("change", "status", "error", "text"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type", "client_credentials"),
        ({"grant_type": ""}, 400, "invalid_request", "grant_type is required"),
        ({"client_assertion_type": "x"}, 400, "invalid_request", "client_assertion_type"),
        ({"client_assertion": ""}, 400, "invalid_request", "client_assertion is required"),
        ({"client_secret": "s3cret"}, 401, "invalid_client", "client secrets"),
    ],
)
async def test_malformed_requests(
    exchange: TokenExchange,
    reviewer: FakeReviewer,
    change: dict[str, str],
    status: int,
    error: str,
    text: str,
) -> None:
    assertion = sa_token()
    reviewer.valid.add(assertion)
    resp = await exchange.exchange(form(assertion, **change))
    assert (resp.status, resp.body["error"]) == (status, error)
    assert text in resp.body["error_description"]
    assert "s3cret" not in resp.body["error_description"]


async def test_refused_assertions_are_invalid_client(
    exchange: TokenExchange, reviewer: FakeReviewer
) -> None:
    for assertion, reason in (
        (sa_token(), "invalid token"),
        (sa_token(aud=("other",)), "wrong audience"),
        (sa_token(exp=START - 1), "expired"),
    ):
        resp = await exchange.exchange(form(assertion))
        assert (resp.status, resp.body["error"]) == (401, "invalid_client")
        assert reason in resp.body["error_description"]
        assert assertion not in resp.body["error_description"]


async def test_unreachable_kubernetes_is_503(
    exchange: TokenExchange, reviewer: FakeReviewer
) -> None:
    reviewer.unavailable = True
    resp = await exchange.exchange(form(sa_token()))
    assert (resp.status, resp.body["error"]) == (503, "temporarily_unavailable")


async def test_open_identity_wires_everything(
    soft_kv: Kvault, reviewer: FakeReviewer, clock: FakeClock
) -> None:
    identity = await open_identity(
        soft_kv.sealed, reviewer, issuer="https://kvault.example", clock=clock
    )
    assertion = sa_token()
    reviewer.valid.add(assertion)
    resp = await identity.exchange.exchange(form(assertion))
    access = resp.body["access_token"]
    assert jws.claims_unverified(access)["iss"] == "https://kvault.example"
    assert (await identity.authenticator.authenticate(access)).name == SA
    assert (await identity.authenticator.authenticate(assertion)).name == SA
    assert reviewer.calls == 1  # the assertion's review was cached by the exchange
