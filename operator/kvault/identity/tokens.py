"""kvault-issued access tokens: short-lived ES256 JWTs that the data plane verifies locally.

The token exchange (:mod:`kvault.identity.exchange`) mints one after a TokenReview; after
that, each request costs a SHA-256 and a dictionary lookup (verified tokens are cached by
digest until they expire), and a first sight costs one ECDSA verification -- no round trip.

Claims: ``iss`` (the configured issuer), ``sub`` (the principal's name), ``groups``, ``uid``,
``aud`` (``kvault``), ``iat``/``nbf``/``exp``, ``jti``, and ``azp`` (the OAuth ``client_id``)
when one was given. ``exp`` is ``iat`` + lifetime (1 h by default) but never later than the
Kubernetes credential it was exchanged for, so a kvault token cannot outlive a revoked pod.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kvault.errors import Unauthenticated
from kvault.identity import jws
from kvault.identity.cache import Outcome, OutcomeCache
from kvault.identity.model import Principal
from kvault.identity.signing import SigningKey, SigningKeys

DEFAULT_ISSUER = "kvault"
DEFAULT_AUDIENCE = "kvault"
DEFAULT_LIFETIME = 3600
#: Clock skew tolerated on ``nbf`` and ``exp`` (replicas' clocks differ a little).
LEEWAY = 30
#: A replica that mints re-reads the key row this often, so a rotation elsewhere reaches it.
KEY_MAX_AGE = 300.0
#: An unknown ``kid`` re-reads the key row at most this often (blunts floods of forged kids).
UNKNOWN_KID_REFRESH = 10.0


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    issued_at: int
    expires_on: int

    def __repr__(self) -> str:  # never show the token itself
        return f"IssuedToken(issued_at={self.issued_at}, expires_on={self.expires_on})"


class AccessTokens:
    """Mints and verifies kvault access tokens (an :class:`~kvault.identity.Authenticator`)."""

    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        lifetime: int = DEFAULT_LIFETIME,
        leeway: int = LEEWAY,
        negative_ttl: float = 5.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        self.leeway = leeway
        self.negative_ttl = negative_ttl
        self.cache = OutcomeCache(cache_size)
        self._clock = clock
        self._loaded_at: float | None = None
        self._last_unknown_refresh = float("-inf")

    async def start(self) -> None:
        """Load (or create) the signing keys before the first request."""
        await self.keys.ensure()
        self._loaded_at = self._clock()

    # -- minting ----------------------------------------------------------------------------

    async def _signing_key(self) -> SigningKey:
        now = self._clock()
        if self._loaded_at is None:
            await self.keys.ensure()
            self._loaded_at = now
        elif now - self._loaded_at > KEY_MAX_AGE:
            await self.keys.refresh()
            self._loaded_at = now
        assert self.keys.current is not None
        return self.keys.current.active

    async def mint(
        self, principal: Principal, *, not_after: int | None = None, client_id: str = ""
    ) -> IssuedToken:
        """An access token for ``principal``, expiring after the lifetime or at ``not_after``
        (the exchanged credential's own expiry), whichever comes first."""
        key = await self._signing_key()
        now = int(self._clock())
        exp = now + self.lifetime
        if not_after is not None:
            exp = min(exp, not_after)
        if exp <= now:
            raise Unauthenticated(
                "expired: the credential expires before a token could be issued", "ExpiredToken"
            )
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": principal.name,
            "aud": self.audience,
            "groups": list(principal.groups),
            "iat": now,
            "nbf": now,
            "exp": exp,
            "jti": secrets.token_hex(16),
        }
        if principal.uid:
            claims["uid"] = principal.uid
        if client_id:
            claims["azp"] = client_id
        token = jws.sign(key.private, key.kid, claims)
        # This replica knows the token is good: its first use here skips the ECDSA check.
        minted = Principal(principal.name, principal.groups, principal.uid, expires=exp)
        self.cache.put(jws.digest(token), Outcome(minted, until=exp + self.leeway), now)
        return IssuedToken(token, now, exp)

    # -- verifying --------------------------------------------------------------------------

    def is_ours(self, token: str) -> bool:
        """Whether ``token`` claims to be a kvault token (known key or our issuer). Cheap for
        our own tokens (a string match on the header); anything else costs two small decodes."""
        head = token.partition(".")[0]
        if head in self.keys.by_header:
            return True
        try:
            h = jws.header(token)
            if h.get("alg") != jws.ALG:
                return False
            if h.get("kid") in self.keys.by_kid:
                return True
            return jws.claims_unverified(token).get("iss") == self.issuer
        except Unauthenticated:
            return False

    async def authenticate(self, token: str) -> Principal:
        """The principal named by a valid kvault token; :class:`Unauthenticated` says why not."""
        key = jws.digest(token)
        now = self._clock()
        cached = self.cache.recall(key, now)
        if cached is not None:
            return cached
        try:
            principal = await self._verify(token, now)
        except Unauthenticated as exc:
            self.cache.put(
                key, Outcome(None, exc.message, now + self.negative_ttl, exc.reason), now
            )
            raise
        assert principal.expires is not None
        self.cache.put(key, Outcome(principal, until=principal.expires + self.leeway), now)
        return principal

    async def _key_for(self, kid: Any) -> SigningKey:
        if self.keys.current is None:
            await self.keys.ensure()
        key = self.keys.by_kid.get(kid) if isinstance(kid, str) else None
        if key is None and isinstance(kid, str):
            now = self._clock()
            if now - self._last_unknown_refresh >= UNKNOWN_KID_REFRESH:
                self._last_unknown_refresh = now
                await self.keys.refresh()
                self._loaded_at = now
                key = self.keys.by_kid.get(kid)
        if key is None:
            raise Unauthenticated(
                "bad signature: the token is signed by an unknown key", "BadSignature"
            )
        return key

    async def _verify(self, token: str, now: float) -> Principal:
        h = jws.header(token)
        if h.get("alg") != jws.ALG:
            raise Unauthenticated(f"bad signature: algorithm must be {jws.ALG}", "BadSignature")
        jws.verify_signature(token, (await self._key_for(h.get("kid"))).public)
        c = jws.claims_unverified(token)
        if c.get("iss") != self.issuer:
            raise Unauthenticated(
                "wrong issuer: the token was not issued by this kvault", "WrongIssuer"
            )
        aud = c.get("aud")
        if not (aud == self.audience or (isinstance(aud, list) and self.audience in aud)):
            raise Unauthenticated(
                f"wrong audience: the token is not for {self.audience!r}", "WrongAudience"
            )
        exp, nbf, sub, groups = c.get("exp"), c.get("nbf", 0), c.get("sub"), c.get("groups", [])
        if not isinstance(exp, int) or not isinstance(nbf, int):
            raise Unauthenticated("malformed token: exp and nbf must be integers", "MalformedToken")
        if not isinstance(sub, str) or not sub:
            raise Unauthenticated("malformed token: no subject", "MalformedToken")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise Unauthenticated(
                "malformed token: groups must be a list of strings", "MalformedToken"
            )
        if now >= exp + self.leeway:
            raise Unauthenticated("expired: the access token has expired", "ExpiredToken")
        if now < nbf - self.leeway:
            raise Unauthenticated(
                "not yet valid: the access token's nbf is in the future", "NotYetValid"
            )
        uid = c.get("uid", "")
        return Principal(
            name=sub, groups=tuple(groups), uid=uid if isinstance(uid, str) else "", expires=exp
        )
