"""The data plane's authenticator: kvault tokens locally, everything else by TokenReview."""

from __future__ import annotations

from kvault.identity.model import Authenticator, Principal
from kvault.identity.tokens import AccessTokens


class ChainAuthenticator:
    """Tokens that claim to be kvault's (known ``kid`` or our ``iss``) are verified here with
    no round trip, and fail here if forged; the rest (ServiceAccount tokens used directly as
    bearer tokens) go to ``fallback``, normally a TokenReviewAuthenticator."""

    def __init__(self, local: AccessTokens, fallback: Authenticator) -> None:
        self.local = local
        self.fallback = fallback

    async def authenticate(self, token: str) -> Principal:
        if self.local.is_ours(token):
            return await self.local.authenticate(token)
        return await self.fallback.authenticate(token)
