"""Fixtures for every test: real SoftHSM2 tokens, real SQLite and PostgreSQL, each HSM plugin."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.fixtures.softhsm import HSMFactory

pytest_plugins = [
    "tests.fixtures.kvault",
    "tests.fixtures.softhsm",
    "tests.fixtures.devserver",
    "tests.fixtures.postgres",
]


@pytest.fixture
def hsm_options(
    hsm_kind: str, hsm_factory: HSMFactory, tmp_path: Path
) -> tuple[str, dict[str, str]]:
    """Options of ``hsm_kind`` (software, pkcs11) for this test's key file or token."""
    return hsm_kind, hsm_factory.options(hsm_kind, tmp_path)
