"""Throttling as Azure Key Vault does it (issue 12, acceptance 5): a burst above a limit gets
429 ``Throttled`` with ``Retry-After``, and the official SDKs, unchanged, back off and succeed."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets.aio import SecretClient as AsyncSecretClient

from kvault.api.throttle import PRINCIPAL_LIMIT, VAULT_LIMIT, Rate, RateLimits, Throttle
from kvault.errors import Throttled
from tests.api.conftest import AsyncStaticCredential, StaticCredential, unique
from tests.fixtures.devserver import ROOT, DevServer, start_dev_server, stop

LIMIT = 5  # requests per second per vault on the throttled server


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("spec", "rate"),
    [
        ("4000/10", Rate(4000, 10)),
        ("4000/10s", Rate(4000, 10)),
        (" 300/0.5 ", Rate(300, 0.5)),
        ("50", Rate(50, 1)),
        ("0", None),
        ("off", None),
    ],
)
def test_rate_parse(spec: str, rate: Rate | None) -> None:
    assert Rate.parse(spec) == rate


@pytest.mark.parametrize("spec", ["", "x/10", "10/0", "-5/10", "0/10", "10/-1", "10/inf", "1/nan"])
def test_rate_parse_refuses(spec: str) -> None:
    with pytest.raises(ValueError, match=r"COUNT/SECONDS|finite"):
        Rate.parse(spec)


def test_a_bucket_admits_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    throttle = Throttle(RateLimits(vault=Rate(10, 10)), clock)  # 1 per second, burst 10
    for _ in range(10):
        throttle.admit("v1.team", "alice")
    with pytest.raises(Throttled) as err:
        throttle.admit("v1.team", "bob")
    assert (err.value.reason, err.value.retry_after) == (VAULT_LIMIT, 1)
    for _ in range(5):  # refused requests take nothing: still exactly one token after 1 s
        with pytest.raises(Throttled):
            throttle.admit("v1.team", "bob")
    throttle.admit("other.team", "bob")  # another vault has its own bucket
    clock.now += 1.0
    throttle.admit("v1.team", "bob")
    with pytest.raises(Throttled):
        throttle.admit("v1.team", "bob")
    clock.now += 100
    for _ in range(10):  # full again, never above the burst
        throttle.admit("v1.team", "bob")
    with pytest.raises(Throttled):
        throttle.admit("v1.team", "bob")


def test_a_principal_is_limited_across_vaults() -> None:
    clock = Clock()
    throttle = Throttle(RateLimits(vault=Rate(100, 10), principal=Rate(3, 30)), clock)
    for vault in ("a.ns", "b.ns", "c.ns"):
        throttle.admit(vault, "alice")
    with pytest.raises(Throttled) as err:
        throttle.admit("d.ns", "alice")
    assert (err.value.reason, err.value.retry_after) == (PRINCIPAL_LIMIT, 10)
    throttle.admit("a.ns", "bob")
    clock.now += 10
    throttle.admit("d.ns", "alice")


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A real ``kvault server --dev`` with a small vault limit."""
    server = start_dev_server(
        tmp_path_factory.mktemp("throttled") / "data",
        "--vault-rate-limit",
        f"{LIMIT}/1",
        "--principal-rate-limit",
        "0",
    )
    yield server
    stop(server)


def _sync_client(server: DevServer, **kwargs: Any) -> SecretClient:
    env = server.env
    return SecretClient(
        env["KVAULT_ENDPOINT"],
        StaticCredential(env["KVAULT_TOKEN"]),
        verify_challenge_resource=False,
        connection_verify=env["KVAULT_CA_FILE"],
        **kwargs,
    )


async def test_a_burst_gets_429_throttled_with_retry_after(throttled: DevServer) -> None:
    env = throttled.env
    ctx = ssl.create_default_context(cafile=env["KVAULT_CA_FILE"])
    headers = {"Authorization": f"Bearer {env['KVAULT_TOKEN']}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:

        async def get() -> tuple[int, dict[str, str], bytes]:
            async with http.get(f"{throttled.endpoint}/secrets", headers=headers) as r:
                return r.status, dict(r.headers), await r.read()

        answers = await asyncio.gather(*(get() for _ in range(4 * LIMIT)))
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) == {200, 429} and statuses[200] >= LIMIT, statuses
    for status, response_headers, body in answers:
        if status != 429:
            continue
        assert response_headers["Retry-After"].isdigit()
        assert 1 <= int(response_headers["Retry-After"]) <= 2
        assert response_headers["Content-Type"].startswith("application/json")
        assert len(response_headers["x-ms-request-id"]) == 36
        error = json.loads(body)["error"]
        assert error["code"] == "Throttled"
        assert VAULT_LIMIT in error["message"]


def test_the_sdk_backs_off_and_succeeds(throttled: DevServer) -> None:
    """Writes and reads well above the limit, one after another, with the SDK's default retry
    policy: every call succeeds, and the server did throttle some of them."""
    seen: Counter[int] = Counter()

    def count(response: Any) -> None:  # observes every attempt, retries included
        seen[response.http_response.status_code] += 1

    name = unique()
    with _sync_client(throttled, raw_response_hook=count) as client:
        for n in range(3 * LIMIT):
            client.set_secret(name, f"value-{n}")
            assert client.get_secret(name).value == f"value-{n}"
    assert seen[429] >= 1, seen
    assert seen[200] == 2 * 3 * LIMIT


async def test_the_async_sdk_backs_off_under_a_concurrent_burst(throttled: DevServer) -> None:
    env = throttled.env
    name = unique()
    with _sync_client(throttled) as client:
        client.set_secret(name, "shared")
    async with AsyncSecretClient(
        env["KVAULT_ENDPOINT"],
        AsyncStaticCredential(env["KVAULT_TOKEN"]),
        verify_challenge_resource=False,
        connection_verify=env["KVAULT_CA_FILE"],
    ) as aclient:
        values = await asyncio.gather(*(aclient.get_secret(name) for _ in range(2 * LIMIT)))
    assert [s.value for s in values] == ["shared"] * (2 * LIMIT)


@pytest.mark.parametrize(
    "args", [["server", "--dev"], ["server", "--data-dir", "D"], ["operator", "--data-dir", "D"]]
)
@pytest.mark.parametrize("flag", ["--vault-rate-limit", "--principal-rate-limit"])
def test_limits_are_flags_with_usage_errors(args: list[str], flag: str, tmp_path: Path) -> None:
    argv = [str(tmp_path) if a == "D" else a for a in args]
    run = subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", *argv, flag, "lots"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "COUNT/SECONDS" in run.stderr and "lots" in run.stderr
