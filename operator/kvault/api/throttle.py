"""Request rate limits per vault and per principal, as Azure Key Vault throttles: token buckets,
and a 429 ``Throttled`` with ``Retry-After`` when one is empty.

A limit ``Rate(count, seconds)`` admits a burst of ``count`` requests and refills at
``count / seconds`` per second (Azure publishes its limits as "N transactions per 10 seconds per
vault"). A request is admitted only if both its vault's bucket and its principal's have a token;
then it takes one from each. A refused request takes nothing (Azure: "failed requests that
return a 429 do not count towards the throttle limits"). ``Retry-After`` is the whole seconds
until both buckets hold a token again, at least 1, so a client that honours it (the Azure
SDKs' retry policy does, for any method) is admitted when it comes back, unless others took
the tokens meanwhile.

Buckets live in the process: each replica of the operator limits on its own.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from kvault.api import metrics
from kvault.errors import Throttled

#: Azure's reason when a vault's limit is reached (its 429 message names it).
VAULT_LIMIT = "VaultRequestTypeLimitReached"
PRINCIPAL_LIMIT = "CallerRequestLimitReached"
#: Buckets kept per kind; the least recently used is forgotten beyond (it starts full again).
MAX_BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` requests per ``seconds`` (the burst is ``count``)."""

    count: int
    seconds: float

    def __post_init__(self) -> None:
        if self.count < 1 or not self.seconds > 0:
            raise ValueError("a rate needs a count of at least 1 per a positive number of seconds")

    @classmethod
    def parse(cls, spec: str) -> Rate | None:
        """``COUNT/SECONDS`` (``4000/10``, ``4000/10s``), or ``COUNT`` per second; ``0`` or
        ``off``: no limit (``None``). Raises :class:`ValueError` saying what is wrong."""
        text = spec.strip().lower()
        if text in ("0", "off", "none"):
            return None
        count, sep, seconds = text.partition("/")
        seconds = seconds.removesuffix("s") if sep else "1"
        try:
            rate = cls(int(count), float(seconds))
        except ValueError:
            raise ValueError(
                f"a rate limit is COUNT/SECONDS (e.g. 4000/10) or 0 for none, got {spec!r}"
            ) from None
        if not math.isfinite(rate.seconds):
            raise ValueError(f"a rate limit needs a finite number of seconds, got {spec!r}")
        return rate

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    def __str__(self) -> str:
        return f"{self.count} requests per {self.seconds:g} s"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The data plane's limits; ``None``: that limit is off."""

    vault: Rate | None = None
    principal: Rate | None = None


class Buckets:
    """One token bucket per key, all of one :class:`Rate`."""

    def __init__(self, rate: Rate, max_keys: int = MAX_BUCKETS) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key``'s bucket holds a token (0: it holds one now)."""
        tokens = self._tokens(key, now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate.per_second

    def take(self, key: str, now: float) -> None:
        self._state[key] = (self._tokens(key, now) - 1, now)
        self._state.move_to_end(key)
        if len(self._state) > self.max_keys:
            self._state.popitem(last=False)

    def _tokens(self, key: str, now: float) -> float:
        state = self._state.get(key)
        if state is None:
            return float(self.rate.count)
        tokens, at = state
        return min(float(self.rate.count), tokens + max(0.0, now - at) * self.rate.per_second)


class Throttle:
    """Admits a request for a vault from a principal, or raises :class:`Throttled`."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._vaults = Buckets(limits.vault) if limits.vault else None
        self._principals = Buckets(limits.principal) if limits.principal else None

    def admit(self, vault: str, principal: str) -> None:
        now = self._clock()
        by_vault = self._vaults.wait(vault, now) if self._vaults else 0.0
        by_principal = self._principals.wait(principal, now) if self._principals else 0.0
        if by_vault or by_principal:
            limit, reason, rate = (
                ("vault", VAULT_LIMIT, self.limits.vault)
                if by_vault >= by_principal
                else ("principal", PRINCIPAL_LIMIT, self.limits.principal)
            )
            metrics.THROTTLED.labels(limit).inc()
            retry = max(1, math.ceil(max(by_vault, by_principal)))
            raise Throttled(
                "Request was not processed because too many requests were received. "
                f"Reason: {reason} (a {limit} is allowed {rate}); retry after {retry} s.",
                reason,
                retry,
            )
        if self._vaults:
            self._vaults.take(vault, now)
        if self._principals:
            self._principals.take(principal, now)


THROTTLE = web.AppKey("kvault.throttle", Throttle)
