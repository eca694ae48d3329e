"""Kubernetes bearer tokens -> principals, by asking the API server (TokenReview).

The API server is the one authority on whether a ServiceAccount token is still valid (its
pod, secret or ServiceAccount may be gone), so kvault asks it rather than checking the
signature itself. Tokens must be bound to kvault's audience (``kvault`` by default): a pod
projects one with a ``serviceAccountToken`` volume source and ``audience: kvault``; tokens for
the API server itself (the default mounted token) are refused, so a token stolen from kvault
cannot be replayed against the Kubernetes API or vice versa.

Outcomes are cached by the token's SHA-256: successes until 30 s before the token expires
(at most ``max_ttl``, so a revoked token stops working within minutes), failures for a few
seconds; concurrent requests with the same token share one review. kvault's own credentials
need ``create`` on ``tokenreviews`` (ClusterRole ``system:auth-delegator``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kvault.errors import Unauthenticated, Unavailable
from kvault.identity import jws
from kvault.identity.cache import Outcome, OutcomeCache
from kvault.identity.model import Principal
from kvault.kube import tokens
from kvault.kube.client import KubeClient
from kvault.kube.errors import ApiError, Forbidden, Unauthorized

DEFAULT_AUDIENCE = "kvault"


@dataclass(frozen=True, slots=True)
class ReviewStatus:
    """The parts of a TokenReview's ``status`` kvault uses."""

    authenticated: bool
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    error: str = ""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)


class Reviewer(Protocol):
    async def __call__(self, token: str, audiences: Sequence[str]) -> ReviewStatus:
        """Ask whether ``token`` is valid for ``audiences``; raises :class:`Unavailable`."""
        ...


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


class KubeTokenReviewer:
    """A :class:`Reviewer` that POSTs a TokenReview to the Kubernetes API."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def __call__(self, token: str, audiences: Sequence[str]) -> ReviewStatus:
        try:
            status = await tokens.review(self.client, token, audiences)
        except (Unauthorized, Forbidden):
            raise Unavailable(
                "kvault may not create tokenreviews: grant its ServiceAccount the ClusterRole "
                "system:auth-delegator"
            ) from None
        except ApiError as exc:
            raise Unavailable(f"the Kubernetes API refused a TokenReview ({exc.status})") from None
        user = status.get("user") or {}
        extra = user.get("extra") or {}
        return ReviewStatus(
            authenticated=bool(status.get("authenticated")),
            username=str(user.get("username", "")),
            uid=str(user.get("uid", "")),
            groups=_strs(user.get("groups")),
            audiences=_strs(status.get("audiences")),
            error=str(status.get("error", "")),
            extra={str(k): _strs(v) for k, v in extra.items()} if isinstance(extra, dict) else {},
        )


def _scrub(message: str, token: str) -> str:
    """An API-server error, short and without the token (in case it ever echoed it)."""
    if token:
        message = message.replace(token, "<token>")
    return message[:200]


class TokenReviewAuthenticator:
    """An :class:`~kvault.identity.Authenticator` for Kubernetes tokens, via TokenReview."""

    def __init__(
        self,
        reviewer: Reviewer,
        *,
        audiences: Sequence[str] = (DEFAULT_AUDIENCE,),
        expiry_margin: float = 30.0,
        max_ttl: float = 300.0,
        negative_ttl: float = 5.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not audiences:
            raise ValueError("at least one audience is required")
        self.reviewer = reviewer
        self.audiences = tuple(audiences)
        self.expiry_margin = expiry_margin
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self.cache = OutcomeCache(cache_size)
        self._clock = clock
        self._inflight: dict[bytes, asyncio.Task[Principal]] = {}

    async def authenticate(self, token: str) -> Principal:
        key = jws.digest(token)
        now = self._clock()
        cached = self.cache.recall(key, now)
        if cached is not None:
            return cached
        task = self._inflight.get(key)
        if task is None:
            # One review per token however many requests carry it; it runs as its own task so
            # a cancelled request does not cancel the others' answer.
            task = asyncio.create_task(self._review(token, key))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        return await asyncio.shield(task)

    def _done(self, key: bytes, task: asyncio.Task[Principal]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # mark retrieved: every waiter may have gone

    async def _review(self, token: str, key: bytes) -> Principal:
        try:
            principal = await self._check(token)
        except Unauthenticated as exc:
            now = self._clock()
            self.cache.put(
                key, Outcome(None, exc.message, now + self.negative_ttl, exc.reason), now
            )
            raise
        now = self._clock()
        until = now + self.max_ttl
        if principal.expires is not None:
            until = min(until, principal.expires - self.expiry_margin)
        self.cache.put(key, Outcome(principal, until=until), now)
        return principal

    async def _check(self, token: str) -> Principal:
        if not token or len(token) > jws.MAX_TOKEN_LENGTH or not token.isascii():
            raise Unauthenticated("malformed token", "MalformedToken")
        if any(c.isspace() for c in token):
            raise Unauthenticated("malformed token: contains whitespace", "MalformedToken")
        # ServiceAccount tokens are JWTs: refuse the obvious cases without a round trip and
        # with a precise reason. Other token kinds go to the API server as they are.
        exp: int | None = None
        try:
            claims: dict[str, Any] | None = jws.claims_unverified(token)
        except Unauthenticated:
            claims = None
        if claims is not None:
            raw_exp = claims.get("exp")
            exp = raw_exp if isinstance(raw_exp, int) else None
            if exp is not None and self._clock() >= exp:
                raise Unauthenticated("expired: the Kubernetes token has expired", "ExpiredToken")
            aud = claims.get("aud")
            auds = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
            if "aud" in claims and not auds & set(self.audiences):
                raise Unauthenticated(
                    f"wrong audience: the token is not for {_names(self.audiences)}; project the "
                    f"ServiceAccount token with audience {self.audiences[0]!r}",
                    "WrongAudience",
                )
        status = await self.reviewer(token, self.audiences)
        if not status.authenticated:
            reason = _scrub(status.error, token) or "the token is invalid or revoked"
            raise Unauthenticated(f"invalid token: the Kubernetes API refused it ({reason})")
        if not set(status.audiences) & set(self.audiences):
            raise Unauthenticated(
                f"wrong audience: the token is not for {_names(self.audiences)}", "WrongAudience"
            )
        if not status.username:
            raise Unauthenticated("invalid token: the Kubernetes API named no user")
        return Principal(name=status.username, groups=status.groups, uid=status.uid, expires=exp)


def _names(audiences: Sequence[str]) -> str:
    return " or ".join(repr(a) for a in audiences)
