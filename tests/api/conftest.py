"""Fixtures for the data-plane tests: SDK clients of the real dev server, and in-process
servers built from the domain (TLS or plain) for tests that need their own wiring."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets.aio import SecretClient as AsyncSecretClient

from kvault.api.app import build_app
from kvault.api.config import ApiConfig
from kvault.api.server import serve
from kvault.api.tls import CertificateAuthority, ServerTLS
from kvault.app.backends import open_kvault
from kvault.hsm.registry import load
from kvault.vault.service import Kvault
from tests.fixtures.devserver import DevServer


class StaticCredential:
    """The minimal TokenCredential of the API notes: always the same bearer token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    def close(self) -> None:
        return None


class AsyncStaticCredential(StaticCredential):
    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:  # type: ignore[override]
        return StaticCredential.get_token(self, *scopes)

    async def close(self) -> None:  # type: ignore[override]
        return None

    async def __aenter__(self) -> AsyncStaticCredential:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


def unique(prefix: str = "s") -> str:
    """The dev server is shared by the session: every test uses names of its own."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(dev_server: DevServer) -> Iterator[SecretClient]:
    env = dev_server.env
    with SecretClient(
        env["KVAULT_ENDPOINT"],
        StaticCredential(env["KVAULT_TOKEN"]),
        verify_challenge_resource=False,
        connection_verify=env["KVAULT_CA_FILE"],
    ) as c:
        yield c


@pytest.fixture
async def aclient(dev_server: DevServer) -> AsyncIterator[AsyncSecretClient]:
    env = dev_server.env
    async with AsyncSecretClient(
        env["KVAULT_ENDPOINT"],
        AsyncStaticCredential(env["KVAULT_TOKEN"]),
        verify_challenge_resource=False,
        connection_verify=env["KVAULT_CA_FILE"],
    ) as c:
        yield c


@pytest.fixture
async def domain(tmp_path: Path) -> AsyncIterator[Kvault]:
    """A kvault of this test's own (software HSM, audit log in ``tmp_path/data``)."""
    kv = await open_kvault(
        tmp_path / "data", load("software", {"key_file": str(tmp_path / "hsm.key")})
    )
    yield kv
    await kv.close()


@dataclass(frozen=True)
class LocalServer:
    url: str  # https://127.0.0.1:PORT
    ca_file: str
    ssl: ssl.SSLContext  # a client context trusting the CA


@pytest.fixture
async def local_server(tmp_path: Path) -> AsyncIterator[Any]:
    """``await local_server(config)``: serve ``config`` over TLS on a free port in this loop."""
    stops: list[asyncio.Event] = []
    tasks: list[asyncio.Task[None]] = []

    async def start(config: ApiConfig) -> LocalServer:
        tls = ServerTLS(CertificateAuthority.load_or_create(tmp_path / "tls"), tmp_path / "tls")
        bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        task = asyncio.create_task(
            serve(
                build_app(config),
                host="127.0.0.1",
                port=0,
                ssl_context=tls.context,
                on_ready=bound.set_result,
                stop=stop,
            )
        )
        stops.append(stop)
        tasks.append(task)
        port = await asyncio.wait_for(asyncio.shield(bound), 10)
        ca = str(tls.ca.cert_file)
        return LocalServer(f"https://127.0.0.1:{port}", ca, ssl.create_default_context(cafile=ca))

    yield start
    for stop in stops:
        stop.set()
    await asyncio.gather(*tasks)
