"""Identity benchmark: what authenticating a request costs the data plane.

``python -m bench identity`` reports, in microseconds per call on this machine:

- ``cached_authentication_us``: a kvault access token seen before, through the data plane's
  authenticator (ChainAuthenticator: kvault tokens locally, the rest by TokenReview), the
  verification outcome recalled from the cache. Every request with a warm token pays this;
  the data-plane budget is ``cached_budget_us`` (20 µs), ``within_budget`` says whether it
  held. (This was an assertion in tests/identity/test_tokens.py; a timing is a figure of a
  benchmark, not a test that fails on a slow or busy machine.)
- ``uncached_verification_us``: the same token with the cache emptied before each call: the
  ES256 signature check and the claims.
- ``mint_us``: issuing a token (the workload-identity exchange's own cost).
- ``tokenreview_cached_us``: a ServiceAccount token used directly, its TokenReview outcome
  recalled from the cache (no round trip to the API server in the figure).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.timing import aops_per_second
from kvault.app.backends import open_kvault
from kvault.hsm.registry import load
from kvault.identity import jws
from kvault.identity.chain import ChainAuthenticator
from kvault.identity.model import Principal
from kvault.identity.signing import SigningKeys
from kvault.identity.tokenreview import ReviewStatus, TokenReviewAuthenticator
from kvault.identity.tokens import AccessTokens

#: What a cached authentication may cost per request (the data plane's budget).
CACHED_BUDGET_US = 20.0
SA = "system:serviceaccount:team-a:app"
GROUPS = ("system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated")


class _Reviewer:
    """Stands in for the API server's TokenReview: every ServiceAccount token is valid."""

    async def __call__(self, token: str, audiences: Sequence[str]) -> ReviewStatus:
        return ReviewStatus(
            authenticated=True, username=SA, uid="u-1", groups=GROUPS, audiences=tuple(audiences)
        )


def _sa_token() -> str:
    claims = {"iss": "https://kubernetes.default.svc", "sub": SA, "aud": ["kvault"]}
    claims["exp"] = int(time.time()) + 3600
    head = jws.b64url(json.dumps({"alg": "RS256", "kid": "cluster"}).encode())
    return f"{head}.{jws.b64url(json.dumps(claims).encode())}.{jws.b64url(b'sig' * 20)}"


def _us(ops_per_second: float) -> float:
    return round(1e6 / ops_per_second, 2)


async def run(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kvault-bench-") as tmp:
        work = Path(tmp)
        kv = await open_kvault(work / "data", load("software", {"key_file": str(work / "k")}))
        try:
            tokens = AccessTokens(SigningKeys(kv.sealed))
            await tokens.start()
            chain = ChainAuthenticator(tokens, TokenReviewAuthenticator(_Reviewer()))
            alice = Principal(name=SA, groups=GROUPS, uid="u-1")
            token = (await tokens.mint(alice)).token
            sa_token = _sa_token()
            await chain.authenticate(token)
            await chain.authenticate(sa_token)
            cached = _us(await aops_per_second(lambda: chain.authenticate(token), seconds))

            async def uncached() -> Principal:
                tokens.cache.clear()
                return await chain.authenticate(token)

            return {
                "cached_authentication_us": cached,
                "cached_budget_us": CACHED_BUDGET_US,
                "within_budget": cached <= CACHED_BUDGET_US,
                "uncached_verification_us": _us(await aops_per_second(uncached, seconds)),
                "mint_us": _us(await aops_per_second(lambda: tokens.mint(alice), seconds)),
                "tokenreview_cached_us": _us(
                    await aops_per_second(lambda: chain.authenticate(sa_token), seconds)
                ),
            }
        finally:
            await kv.close()
