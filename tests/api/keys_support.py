"""Shared helpers for the keys tests: a ``kvault server --dev`` per HSM plugin (software, and
pkcs11 on a SoftHSM2 token of its own), SDK clients of it, and a request recorder that shows
which CryptographyClient operations ran locally and which went to the server.

The oct quirk (``/work/shared/notes/azure-keys-certs.md`` §0.5): for ``oct``/``oct-HSM``
keys the SDK builds a local AES key from random bytes (the server returns no ``k``), and then
performs ``A*CBCPAD`` encrypt and ``A*KW`` wrap locally with that wrong key whenever
``encrypt``/``wrapKey`` are in the JWK's ``key_ops``. Building the client from the key id string
does not help (its first GET returns the same JWK). :func:`remote_crypto` gives the client a
copy of the public JWK whose ``key_ops`` is empty: every local attempt then fails the SDK's
own ``key_ops`` check and falls back to the server, while the server still enforces the key's
real ``key_ops``. That is the only public-API way to make the SDK do everything remotely.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.pipeline import PipelineRequest
from azure.keyvault.keys import KeyClient, KeyVaultKey
from azure.keyvault.keys.aio import KeyClient as AsyncKeyClient
from azure.keyvault.keys.crypto import CryptographyClient
from azure.keyvault.keys.crypto.aio import CryptographyClient as AsyncCryptographyClient
from cryptography.hazmat.primitives import hashes

from tests.api.conftest import AsyncStaticCredential, StaticCredential
from tests.fixtures.devserver import _LINES, DevServer, start_server, stop
from tests.fixtures.softhsm import SoftHSMEnv, SoftHSMToken

KINDS = ("software", "pkcs11")
PIN_ENV = "KVT_TEST_PKCS11_PIN"
#: Public members of a JWK (what the server returns and the SDK keeps).
PUBLIC_MEMBERS = ("kid", "kty", "n", "e", "crv", "x", "y")

#: Digest per signing algorithm (sign and verify take a digest).
HASHES: dict[str, hashes.HashAlgorithm] = {
    "RS256": hashes.SHA256(),
    "RS384": hashes.SHA384(),
    "RS512": hashes.SHA512(),
    "PS256": hashes.SHA256(),
    "PS384": hashes.SHA384(),
    "PS512": hashes.SHA512(),
    "ES256": hashes.SHA256(),
    "ES256K": hashes.SHA256(),
    "ES384": hashes.SHA384(),
    "ES512": hashes.SHA512(),
}
ES_FOR_CURVE = {"P-256": "ES256", "P-256K": "ES256K", "P-384": "ES384", "P-521": "ES512"}
RSA_SIGN = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
RSA_CRYPT = ("RSA1_5", "RSA-OAEP", "RSA-OAEP-256")


def digest(alg: str, message: bytes = b"kvault keys test") -> bytes:
    h = hashes.Hash(HASHES[alg])
    h.update(message)
    return h.finalize()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# -- servers -----------------------------------------------------------------------------------


def pkcs11_args(token: SoftHSMToken) -> list[str]:
    return [
        "--hsm",
        "pkcs11",
        "--hsm-option",
        f"module={token.module}",
        "--hsm-option",
        f"token_label={token.label}",
        "--hsm-option",
        f"pin_env={PIN_ENV}",
    ]


def start_key_server(kind: str, data_dir: Path, token: SoftHSMToken | None = None) -> DevServer:
    """``kvault server --dev`` with the ``kind`` plugin (pkcs11 needs ``token``, and the
    ``softhsm`` fixture active so that ``SOFTHSM2_CONF`` is in our environment)."""
    args = ["server", "--dev", "--port", "0", "--data-dir", str(data_dir)]
    env: dict[str, str] = {}
    if kind == "pkcs11":
        assert token is not None and os.environ.get("SOFTHSM2_CONF")
        args += pkcs11_args(token)
        env = {PIN_ENV: token.pin, "SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"]}
    return start_server(args, data_dir, _LINES, env=env)


def settled_output(server: DevServer, timeout: float = 3.0) -> str:
    """What a stopped server printed, once the drain thread has read it all (the output
    stops growing)."""
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline and len(server.output) != seen:
        seen = len(server.output)
        time.sleep(0.2)
    return "".join(server.output)


@dataclass
class KeyServer:
    """A running dev server and the plugin it uses."""

    kind: str
    server: DevServer
    token: SoftHSMToken | None = None

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def env(self) -> dict[str, str]:
        return self.server.env


@pytest.fixture(scope="module", params=KINDS)
def key_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KeyServer]:
    """A dev server per HSM plugin, shared by one test module."""
    kind: str = request.param
    token = None
    if kind == "pkcs11":
        softhsm: SoftHSMEnv = request.getfixturevalue("softhsm")
        token = softhsm.init_token()  # only the server process opens it
    server = start_key_server(kind, tmp_path_factory.mktemp(f"keys-{kind}") / "data", token)
    yield KeyServer(kind, server, token)
    stop(server)


# -- clients -----------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Every request a client sent, as ``(METHOD, path)`` (the 401 challenge round included)."""

    seen: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, request: PipelineRequest[Any]) -> None:
        r = request.http_request
        self.seen.append((r.method, urlsplit(r.url).path))

    def clear(self) -> None:
        self.seen.clear()

    def ops(self) -> list[str]:
        """The last path segment of each POST (``encrypt``, ``sign``, ...), in order, once
        per request (the challenge round repeats the first request)."""
        out: list[str] = []
        for method, path in self.seen:
            if method == "POST":
                out.append(path.rsplit("/", 1)[-1])
        return out

    def sent(self, op: str) -> bool:
        return op in self.ops()


def client_kwargs(
    server: KeyServer | DevServer, recorder: Recorder | None = None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "verify_challenge_resource": False,
        "connection_verify": server.env["KVAULT_CA_FILE"],
        "retry_total": 0,  # a server error must fail the test now, not after back-off
    }
    if recorder is not None:
        kwargs["raw_request_hook"] = recorder
    return kwargs


def key_client(server: KeyServer | DevServer, recorder: Recorder | None = None) -> KeyClient:
    cred = StaticCredential(server.env["KVAULT_TOKEN"])
    return KeyClient(server.env["KVAULT_ENDPOINT"], cred, **client_kwargs(server, recorder))


def async_key_client(
    server: KeyServer | DevServer, recorder: Recorder | None = None
) -> AsyncKeyClient:
    cred = AsyncStaticCredential(server.env["KVAULT_TOKEN"])
    return AsyncKeyClient(server.env["KVAULT_ENDPOINT"], cred, **client_kwargs(server, recorder))


def crypto_client(
    server: KeyServer | DevServer, key: KeyVaultKey | str, recorder: Recorder | None = None
) -> CryptographyClient:
    """The SDK's ordinary client: local public-key operations when it holds the JWK."""
    cred = StaticCredential(server.env["KVAULT_TOKEN"])
    return CryptographyClient(key, cred, **client_kwargs(server, recorder))


def async_crypto_client(
    server: KeyServer | DevServer, key: KeyVaultKey | str, recorder: Recorder | None = None
) -> AsyncCryptographyClient:
    cred = AsyncStaticCredential(server.env["KVAULT_TOKEN"])
    return AsyncCryptographyClient(key, cred, **client_kwargs(server, recorder))


def remote_view(key: KeyVaultKey) -> KeyVaultKey:
    """``key`` as the SDK would see it with no usable ``key_ops``: every local attempt fails
    the SDK's own check and the operation goes to the server (see the module docstring)."""
    jwk: dict[str, Any] = {m: getattr(key.key, m, None) for m in PUBLIC_MEMBERS}
    jwk["key_ops"] = []
    assert key.id is not None
    return KeyVaultKey(key.id, jwk=jwk)


def remote_crypto(
    server: KeyServer | DevServer, key: KeyVaultKey, recorder: Recorder | None = None
) -> CryptographyClient:
    return crypto_client(server, remote_view(key), recorder)


def async_remote_crypto(
    server: KeyServer | DevServer, key: KeyVaultKey, recorder: Recorder | None = None
) -> AsyncCryptographyClient:
    return async_crypto_client(server, remote_view(key), recorder)


@contextlib.contextmanager
def closing_all(*clients: Any) -> Iterator[None]:
    try:
        yield
    finally:
        for c in clients:
            c.close()


@contextlib.asynccontextmanager
async def aclosing_all(*clients: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for c in clients:
            await c.close()


# -- key specs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    kty: str  # RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM
    size: int | None = None
    crv: str | None = None

    @property
    def base(self) -> str:
        return self.kty.removesuffix("-HSM")

    @property
    def hsm(self) -> bool:
        return self.kty.endswith("-HSM")

    @property
    def id(self) -> str:
        return f"{self.kty}-{self.crv or self.size}"


SPECS = (
    Spec("RSA", 2048),
    Spec("RSA", 3072),
    Spec("RSA-HSM", 2048),
    Spec("RSA-HSM", 3072),
    *(Spec(kty, crv=crv) for kty in ("EC", "EC-HSM") for crv in ES_FOR_CURVE),
    *(Spec(kty, size) for kty in ("oct", "oct-HSM") for size in (128, 192, 256)),
)
