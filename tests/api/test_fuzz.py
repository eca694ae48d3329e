"""Schemathesis against our own OpenAPI document and the real dev server: no 5xx, and every
response (status, content type, headers, body) is one the document declares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kvault.api.openapi import document
from tests.fixtures.devserver import DevServer, start_dev_server, stop

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SCHEMA = schemathesis.openapi.from_dict(document())


def _fuzz(server: DevServer, examples: int) -> int:
    """Run ``examples`` generated cases over all operations; return how many were sent."""
    env = server.env
    session = requests.Session()
    session.verify = env["KVAULT_CA_FILE"]
    headers = {"Authorization": f"Bearer {env['KVAULT_TOKEN']}"}
    sent = 0

    @given(data=st.data())
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(data: Any) -> None:
        nonlocal sent
        case = data.draw(SCHEMA.as_strategy())
        case.call_and_validate(
            base_url=server.endpoint,
            session=session,
            headers=headers,
            checks=CHECKS,
            verify=env["KVAULT_CA_FILE"],
        )
        sent += 1

    run()
    session.close()
    return sent


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[DevServer]:
    """Not the session's server: fuzzed data (odd tags, far dates) stays out of other tests."""
    server = start_dev_server(tmp_path / "data")
    yield server
    stop(server)


def test_fuzz_default(own_server: DevServer) -> None:
    assert _fuzz(own_server, 2100) >= 2000


@pytest.mark.slow
def test_fuzz_long(own_server: DevServer) -> None:
    assert _fuzz(own_server, 20_000) >= 20_000
