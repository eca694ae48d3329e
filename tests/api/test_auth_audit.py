"""Refused authentication is audited (issue 12, finding 6): one line at once, a flood folded
into one line with a count when its window closes, never the token, and a metric by reason."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import requests

from kvault.api import metrics
from kvault.api.config import ApiConfig
from kvault.audit import verify
from kvault.identity.model import Principal
from kvault.identity.static import StaticTokens
from kvault.vault.service import Kvault
from tests.fixtures.devserver import DevServer, start_dev_server, stop
from tests.vault.test_authfail import Timers

ROOT = Principal("kvault:root", superuser=True)
GOOD = "good-" + secrets.token_urlsafe(16)


def _lines(audit: Path) -> list[dict[str, Any]]:
    return [
        line
        for line in map(json.loads, audit.read_text().splitlines())
        if line["operation"] == "Authenticate"
    ]


def _refused(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("kvault_auth_failures_total", {"reason": reason}) or 0


async def test_a_flood_of_wrong_tokens_is_two_audit_lines(
    domain: Kvault, local_server: Any, tmp_path: Path
) -> None:
    await domain.vaults.create("v1.team", retention_days=7)
    timers = Timers()  # the window closes when the test says
    domain.auth_failures.schedule = timers
    server = await local_server(ApiConfig(domain, StaticTokens({GOOD: ROOT})))
    port = server.url.rpartition(":")[2]
    audit = tmp_path / "data" / "audit.log"
    wrong = "kvr." + secrets.token_urlsafe(32)
    before = _refused("InvalidToken")
    headers = {"Host": f"v1.team.svc:{port}", "Authorization": f"Bearer {wrong}"}

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=server.ssl)) as http:

        async def attempt() -> str:
            async with http.get(f"{server.url}/secrets", headers=headers) as r:
                assert r.status == 401
                assert wrong not in await r.text()
                return r.headers["x-ms-request-id"]

        request_ids = await asyncio.gather(*(attempt() for _ in range(300)))

    (first,) = _lines(audit)  # the first refusal is written at once, the rest only counted
    assert first["outcome"] == "InvalidToken"
    assert (first["source"], first["vault"], first["count"]) == ("127.0.0.1", "v1.team", 1)
    assert first["principal"] == "" and first["request_id"] in request_ids

    timers.close_windows()
    assert len(_lines(audit)) == 2
    folded = _lines(audit)[1]
    assert (folded["count"], folded["request_id"], folded["source"]) == (299, "", "127.0.0.1")
    assert _refused("InvalidToken") - before == 300

    text = audit.read_text()
    assert wrong not in text and "Bearer" not in text
    assert verify(audit).ok


async def test_each_reason_has_its_line_and_its_metric(
    domain: Kvault, local_server: Any, tmp_path: Path
) -> None:
    await domain.vaults.create("v1.team", retention_days=7)
    server = await local_server(ApiConfig(domain, StaticTokens({GOOD: ROOT})))
    port = server.url.rpartition(":")[2]
    missing, invalid = _refused("MissingToken"), _refused("InvalidToken")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=server.ssl)) as http:
        # The SDKs' first, token-less request; a wrong token; a host that names no vault.
        async with http.put(f"{server.url}/secrets/x", headers={"Host": f"v1.team.svc:{port}"}):
            pass
        async with http.get(f"{server.url}/secrets", headers={"Authorization": "Bearer nope"}):
            pass
        async with http.get(
            f"{server.url}/secrets", headers={"Authorization": f"Bearer {GOOD}"}
        ) as r:
            assert r.status == 404  # authenticated: not a refusal
    lines = _lines(tmp_path / "data" / "audit.log")
    assert [(x["outcome"], x["vault"], x["count"]) for x in lines] == [
        ("MissingToken", "v1.team", 1),
        ("InvalidToken", "", 1),
    ]
    assert _refused("MissingToken") - missing == 1
    assert _refused("InvalidToken") - invalid == 1


def test_dev_server_audits_refusals_and_writes_the_count_when_it_stops(tmp_path: Path) -> None:
    server: DevServer = start_dev_server(tmp_path / "data")
    wrong = "kvr." + secrets.token_urlsafe(32)
    audit = tmp_path / "data" / "audit.log"
    try:
        with requests.Session() as http:
            for _ in range(50):
                r = http.get(
                    f"{server.endpoint}/secrets",
                    headers={"Authorization": f"Bearer {wrong}"},
                    verify=server.env["KVAULT_CA_FILE"],
                )
                assert r.status_code == 401
        (first,) = _lines(audit)
        assert (first["outcome"], first["vault"], first["count"]) == ("InvalidToken", "dev", 1)
    finally:
        stop(server)
    lines = _lines(audit)
    assert [x["count"] for x in lines] == [1, 49], lines  # the open window, written at exit
    assert wrong not in audit.read_text()
    assert wrong not in "".join(server.output)
    assert verify(audit).ok
