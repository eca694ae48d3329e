"""Fixed bearer tokens (the dev server's root token, tests): a dict lookup, nothing else."""

from __future__ import annotations

from collections.abc import Mapping

from kvault.errors import Unauthenticated
from kvault.identity.exchange import OAuthResponse, client_assertion, oauth_error
from kvault.identity.model import Principal
from kvault.identity.tokens import DEFAULT_LIFETIME


class StaticTokens:
    """Maps whole tokens to principals. For ``kvault server --dev`` and tests, where tokens are
    random strings handed out of band; production uses TokenReview and kvault-issued JWTs."""

    def __init__(self, tokens: Mapping[str, Principal]) -> None:
        self._tokens = dict(tokens)

    async def authenticate(self, token: str) -> Principal:
        principal = self._tokens.get(token)
        if principal is None:
            raise Unauthenticated("the bearer token is not valid for this kvault")
        return principal


class StaticExchange:
    """The token endpoint of a server with fixed tokens (``kvault server --dev``): the client
    assertion must be one of them, and the access token is that same token.

    It is the dev server's stand-in for the workload-identity exchange (a ServiceAccount
    token in, a kvault token out), so clients that sign in the Azure way work unchanged:
    ``az login --service-principal --federated-token "$KVAULT_TOKEN"``, or
    ``WorkloadIdentityCredential`` with the token in ``AZURE_FEDERATED_TOKEN_FILE``. The form
    is checked as :class:`~kvault.identity.exchange.TokenExchange` checks it; ``client_id``,
    ``scope`` and the tenant name no identity here either."""

    def __init__(self, tokens: StaticTokens, lifetime: int = DEFAULT_LIFETIME) -> None:
        self.tokens = tokens
        self.lifetime = lifetime

    async def exchange(self, form: Mapping[str, str]) -> OAuthResponse:
        assertion = client_assertion(form)
        if isinstance(assertion, OAuthResponse):
            return assertion
        try:
            await self.tokens.authenticate(assertion)
        except Unauthenticated as exc:
            return oauth_error(401, "invalid_client", f"client_assertion refused: {exc.message}")
        return OAuthResponse(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.lifetime,
                "ext_expires_in": self.lifetime,
                "access_token": assertion,
            },
        )
