"""The unmodified azure-identity WorkloadIdentityCredential against kvault's token exchange.

A minimal HTTPS route stands in for the data-plane server (its real route lives in api/)
so that the official client's request and response parsing are checked here, where the
exchange is written. The TokenReview side is the fake reviewer; the cluster test covers it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import WorkloadIdentityCredential

from kvault.identity.chain import ChainAuthenticator
from kvault.identity.exchange import TokenExchange
from kvault.identity.tokenreview import TokenReviewAuthenticator
from kvault.identity.tokens import AccessTokens
from tests.fixtures.kvault import FakeClock
from tests.identity.conftest import SA, FakeReviewer, sa_token, self_signed

TENANT = "00000000-0000-0000-0000-0000000000aa"


@pytest.fixture
async def authority(
    tmp_path: Path, reviewer: FakeReviewer, tokens: AccessTokens, clock: FakeClock
) -> AsyncIterator[tuple[str, Path, TokenReviewAuthenticator]]:
    """``https://127.0.0.1:PORT`` serving ``POST /{tenant}/oauth2/v2.0/token``; its CA file."""
    reviews = TokenReviewAuthenticator(reviewer, clock=clock)
    exchange = TokenExchange(reviews, tokens)

    async def token(request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        resp = await exchange.exchange(form)
        return web.json_response(resp.body, status=resp.status, headers=resp.headers)

    app = web.Application()
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token)
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1]
    yield f"https://127.0.0.1:{port}", cert, reviews
    await runner.cleanup()


async def test_workload_identity_credential_gets_a_kvault_token(
    authority: tuple[str, Path, TokenReviewAuthenticator],
    reviewer: FakeReviewer,
    tokens: AccessTokens,
    tmp_path: Path,
) -> None:
    url, ca, reviews = authority
    # What the kubelet projects into AZURE_FEDERATED_TOKEN_FILE (audience kvault).
    assertion = sa_token(exp=2_000_000_000)
    reviewer.valid.add(assertion)
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(assertion)
    credential = WorkloadIdentityCredential(
        tenant_id=TENANT,
        client_id="app-client-id",
        token_file_path=str(token_file),
        authority=url,
        connection_verify=str(ca),
    )
    async with credential:
        got = await credential.get_token(
            "https://v1.kvault.example/.default", tenant_id=TENANT, enable_cae=True
        )
    assert got.token.count(".") == 2
    calls = reviewer.calls
    p = await ChainAuthenticator(tokens, reviews).authenticate(got.token)
    assert p.name == SA and reviewer.calls == calls


async def test_refused_assertion_raises_client_authentication_error(
    authority: tuple[str, Path, TokenReviewAuthenticator], tmp_path: Path
) -> None:
    url, ca, _ = authority
    token_file = tmp_path / "azure-identity-token"
    assertion = sa_token(aud=("api://AzureADTokenExchange",))
    token_file.write_text(assertion)
    credential = WorkloadIdentityCredential(
        tenant_id=TENANT,
        client_id="app-client-id",
        token_file_path=str(token_file),
        authority=url,
        connection_verify=str(ca),
    )
    async with credential:
        with pytest.raises(ClientAuthenticationError) as info:
            await credential.get_token("https://v1.kvault.example/.default")
    assert "invalid_client" in str(info.value) and "wrong audience" in str(info.value)
    assert assertion not in str(info.value)
