"""Fixed bearer tokens (the dev server's root token, tests): a dict lookup, nothing else."""

from __future__ import annotations

from collections.abc import Mapping

from kvault.errors import Unauthenticated
from kvault.identity.model import Principal


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
