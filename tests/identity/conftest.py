"""Identity fixtures: a real kvault (SQLite + software HSM) holding the signing keys, a fake
Kubernetes reviewer for the pure logic, and ServiceAccount-shaped JWTs."""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from kvault.app.backends import open_kvault
from kvault.crypto import certs, pem
from kvault.errors import Unavailable
from kvault.hsm.registry import load
from kvault.identity import jws
from kvault.identity.signing import SigningKeys
from kvault.identity.tokenreview import ReviewStatus
from kvault.identity.tokens import AccessTokens
from kvault.vault.service import Kvault
from tests.fixtures.kvault import START, FakeClock
from tests.fixtures.softhsm import HSMFactory

SA = "system:serviceaccount:team-a:app"
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated")


def sa_token(
    *, aud: Any = ("kvault",), exp: int | None = START + 3600, sub: str = SA, nonce: str = ""
) -> str:
    """A ServiceAccount-shaped JWT (unsigned: the fake reviewer decides whether it is valid)."""
    claims: dict[str, Any] = {"iss": "https://kubernetes.default.svc", "sub": sub}
    if aud is not None:
        claims["aud"] = list(aud) if isinstance(aud, tuple) else aud
    if exp is not None:
        claims["exp"] = exp
    if nonce:
        claims["jti"] = nonce
    head = jws.b64url(json.dumps({"alg": "RS256", "kid": "cluster"}).encode())
    return f"{head}.{jws.b64url(json.dumps(claims).encode())}.{jws.b64url(b'sig' * 20)}"


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, written for ssl to load."""
    cert, key = certs.self_signed_ca(
        "kvault-test", datetime.timedelta(hours=1), names=("127.0.0.1",)
    )
    cert_path, key_path = tmp / "tls.crt", tmp / "tls.key"
    cert_path.write_bytes(pem.cert_pem(cert))
    pem.write_private(key_path, pem.private_pem(key))
    return cert_path, key_path


class FakeReviewer:
    """Stands in for the Kubernetes API in pure-logic tests: valid means listed in ``valid``."""

    def __init__(self) -> None:
        self.calls = 0
        self.valid: set[str] = set()
        self.error = "invalid bearer token"
        self.unavailable = False
        self.audiences: tuple[str, ...] | None = None  # None: echo the requested ones

    async def __call__(self, token: str, audiences: Sequence[str]) -> ReviewStatus:
        self.calls += 1
        if self.unavailable:
            raise Unavailable("the Kubernetes API is unreachable")
        if token not in self.valid:
            return ReviewStatus(authenticated=False, error=self.error)
        return ReviewStatus(
            authenticated=True,
            username=jws.claims_unverified(token)["sub"],
            uid="uid-1",
            groups=SA_GROUPS,
            audiences=tuple(audiences) if self.audiences is None else self.audiences,
        )


@pytest.fixture
def reviewer() -> FakeReviewer:
    return FakeReviewer()


@pytest.fixture
async def soft_kv(
    hsm_factory: HSMFactory, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Kvault]:
    """A kvault over real SQLite and the software HSM (the pure-logic tests need one plugin)."""
    kv = await open_kvault(
        tmp_path / "data", load("software", hsm_factory.options("software", tmp_path)), clock=clock
    )
    yield kv
    await kv.close()


@pytest.fixture
async def tokens(soft_kv: Kvault, clock: FakeClock) -> AccessTokens:
    t = AccessTokens(SigningKeys(soft_kv.sealed, clock=clock), clock=clock)
    await t.start()
    return t
