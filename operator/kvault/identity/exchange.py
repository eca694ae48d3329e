"""The token endpoint: a ServiceAccount token in, a kvault access token out (OAuth2).

``POST /{tenant}/oauth2/v2.0/token`` speaks the client-credentials grant with a JWT client
assertion, exactly as azure-identity's ``WorkloadIdentityCredential`` sends it::

    grant_type=client_credentials
    client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
    client_assertion=<the pod's projected ServiceAccount token>   (AZURE_FEDERATED_TOKEN_FILE)
    client_id=<AZURE_CLIENT_ID>   scope=https://<vault>/.default   [claims=... (ignored)]

so an unmodified Azure SDK app in a pod authenticates with its ServiceAccount. The pod must
project its token with ``audience: kvault`` (the configured audience); the assertion is
checked by TokenReview. ``client_id``, ``scope`` and the tenant are not identities here: the
ServiceAccount is. ``client_id`` is recorded in the token (``azp``) for the audit trail.

The reply is what MSAL and azure-identity read (``token_type``, ``expires_in``,
``ext_expires_in``, ``access_token``); errors are OAuth error JSON (RFC 6749 section 5.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kvault.errors import Unauthenticated, Unavailable
from kvault.identity.tokenreview import TokenReviewAuthenticator
from kvault.identity.tokens import AccessTokens

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: RFC 6749 section 5.1: token responses must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True, slots=True)
class OAuthResponse:
    """What the HTTP layer sends: ``status``, JSON ``body`` and ``headers``."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=lambda: dict(NO_STORE))

    def __repr__(self) -> str:  # the body may hold a token
        return f"OAuthResponse(status={self.status}, error={self.body.get('error')!r})"


def oauth_error(status: int, error: str, description: str) -> OAuthResponse:
    return OAuthResponse(status, {"error": error, "error_description": description})


def client_assertion(form: Mapping[str, str]) -> str | OAuthResponse:
    """The assertion of a client-credentials request with a JWT-bearer client assertion, or
    the OAuth error that says what the form lacks."""
    grant = form.get("grant_type", "")
    if grant != GRANT_TYPE:
        if not grant:
            return oauth_error(400, "invalid_request", "grant_type is required")
        return oauth_error(
            400,
            "unsupported_grant_type",
            f"only grant_type={GRANT_TYPE} (with a ServiceAccount token assertion) is supported",
        )
    if "client_secret" in form:
        return oauth_error(
            401,
            "invalid_client",
            "client secrets are not accepted: authenticate with a ServiceAccount token "
            "as client_assertion",
        )
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        return oauth_error(
            400, "invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}"
        )
    assertion = form.get("client_assertion", "")
    if not assertion:
        return oauth_error(400, "invalid_request", "client_assertion is required")
    return assertion


class TokenExchange:
    """Reviews a ServiceAccount assertion and mints a kvault access token for it."""

    def __init__(self, reviewer: TokenReviewAuthenticator, tokens: AccessTokens) -> None:
        self.reviewer = reviewer
        self.tokens = tokens

    async def exchange(self, form: Mapping[str, str]) -> OAuthResponse:
        """Answer one token request (``form`` is the decoded urlencoded body)."""
        assertion = client_assertion(form)
        if isinstance(assertion, OAuthResponse):
            return assertion
        try:
            principal = await self.reviewer.authenticate(assertion)
            issued = await self.tokens.mint(
                principal, not_after=principal.expires, client_id=form.get("client_id", "")[:256]
            )
        except Unauthenticated as exc:
            return oauth_error(401, "invalid_client", f"client_assertion refused: {exc.message}")
        except Unavailable as exc:
            return oauth_error(503, "temporarily_unavailable", exc.message)
        expires_in = issued.expires_on - issued.issued_at
        return OAuthResponse(
            200,
            {
                "token_type": "Bearer",
                "expires_in": expires_in,
                "ext_expires_in": expires_in,
                "access_token": issued.token,
            },
        )
