"""Wires the identity pieces together, so the API server needs one call at start-up."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kvault.barrier.view import SealedView
from kvault.identity.chain import ChainAuthenticator
from kvault.identity.exchange import TokenExchange
from kvault.identity.signing import SigningKeys
from kvault.identity.tokenreview import (
    DEFAULT_AUDIENCE,
    KubeTokenReviewer,
    Reviewer,
    TokenReviewAuthenticator,
)
from kvault.identity.tokens import DEFAULT_ISSUER, DEFAULT_LIFETIME, AccessTokens
from kvault.kube.client import KubeClient


@dataclass(frozen=True, slots=True)
class Identity:
    #: For the data plane: ``await authenticator.authenticate(bearer_token) -> Principal``.
    authenticator: ChainAuthenticator
    #: For ``POST /{tenant}/oauth2/v2.0/token``: ``await exchange.exchange(form)``.
    exchange: TokenExchange
    tokens: AccessTokens
    reviews: TokenReviewAuthenticator


async def open_identity(
    store: SealedView,
    kube: KubeClient | Reviewer,
    *,
    audiences: Sequence[str] = (DEFAULT_AUDIENCE,),
    issuer: str = DEFAULT_ISSUER,
    lifetime: int = DEFAULT_LIFETIME,
    clock: Callable[[], float] = time.time,
) -> Identity:
    """Load (or create) the signing key and build the authenticators. ``store`` is the
    domain's sealed view (``Kvault.sealed``), whose barrier holds the system keyring."""
    reviewer = KubeTokenReviewer(kube) if isinstance(kube, KubeClient) else kube
    reviews = TokenReviewAuthenticator(reviewer, audiences=audiences, clock=clock)
    tokens = AccessTokens(
        SigningKeys(store, clock=clock),
        issuer=issuer,
        audience=audiences[0],
        lifetime=lifetime,
        clock=clock,
    )
    await tokens.start()
    return Identity(
        ChainAuthenticator(tokens, reviews), TokenExchange(reviews, tokens), tokens, reviews
    )
