"""Backends chosen by name: one ``--hsm-option`` parser, the storage table, clean failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvault.app.announce import endpoint
from kvault.app.backends import (
    AUDIT_FILE,
    DB_FILE,
    KEY_FILE,
    STORAGE,
    Backends,
    open_configured,
    parse_options,
)
from kvault.errors import ConfigError
from kvault.hsm.software import SoftwareHSM


def test_one_option_per_flag_value_kept_as_given() -> None:
    got = parse_options([" key_file=/a,b/k=1", "slot=0", "pin="])
    assert got == {"key_file": "/a,b/k=1", "slot": "0", "pin": ""}


@pytest.mark.parametrize("bad", ["novalue", "=x", " =x"])
def test_malformed_option_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="--hsm-option takes KEY=VALUE"):
        parse_options([bad])


def test_storage_is_chosen_from_the_table() -> None:
    assert set(STORAGE) == {"sqlite", "postgresql"}


async def test_unknown_storage_is_refused_and_the_hsm_closed(tmp_path: Path) -> None:
    backends = Backends(storage="nosuch")
    with pytest.raises(
        ConfigError, match="unknown storage backend 'nosuch'; known: postgresql, sqlite"
    ):
        await open_configured(tmp_path, backends)
    assert not (tmp_path / DB_FILE).exists()


def test_software_hsm_keeps_its_key_in_the_data_dir(tmp_path: Path) -> None:
    hsm = Backends().build_hsm(tmp_path)
    assert isinstance(hsm, SoftwareHSM)
    with pytest.raises(ConfigError, match="unknown HSM plugin 'nope'"):
        Backends(hsm="nope").build_hsm(tmp_path)


async def test_configured_kvault_lives_in_the_data_dir(tmp_path: Path) -> None:
    kv = await open_configured(tmp_path / "d", Backends())
    try:
        await kv.vaults.create("v1", retention_days=7)
    finally:
        await kv.close()
    names = {p.name for p in (tmp_path / "d").iterdir()}
    assert {DB_FILE, AUDIT_FILE, KEY_FILE} <= names
    again = await open_configured(tmp_path / "d", Backends())
    try:
        assert (await again.vaults.get("v1")).name == "v1"
    finally:
        await again.close()


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "https://127.0.0.1:1"),
        ("::", "https://127.0.0.1:1"),
        ("10.0.0.1", "https://10.0.0.1:1"),
        ("::1", "https://[::1]:1"),
    ],
)
def test_endpoint_shown_to_local_clients(host: str, url: str) -> None:
    assert endpoint(host, 1) == url
