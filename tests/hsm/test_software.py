"""Software plugin specifics: key file creation, permissions, format errors, env source."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from kvault.errors import ConfigError
from kvault.hsm import keyfile
from kvault.hsm.software import SoftwareHSM

AAD = b"aad"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def write_private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


async def test_generated_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "root.keys"
    hsm = SoftwareHSM.from_options({"key_file": str(path)})
    await hsm.open()
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert mode(path.parent.parent) == 0o700
    keys = keyfile.read_key_file(path)
    assert len(keys) == 1
    assert hsm.active_key_id == keyfile.key_id(keys[0])
    assert keys[0].hex()[:16] != hsm.active_key_id  # the id is not the key's prefix
    assert b64(keys[0]) not in repr(hsm)


async def test_rotate_appends_atomically(tmp_path: Path) -> None:
    path = tmp_path / "root.keys"
    hsm = SoftwareHSM.from_options({"key_file": str(path)})
    await hsm.open()
    first = keyfile.read_key_file(path)
    new_id = await hsm.rotate()
    keys = keyfile.read_key_file(path)
    assert keys[:1] == first and len(keys) == 2
    assert new_id == keyfile.key_id(keys[-1])
    assert mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root.keys"]  # no temp files left


@pytest.mark.parametrize("file_mode", [0o640, 0o604, 0o660, 0o644])
async def test_group_or_other_accessible_file_refused(tmp_path: Path, file_mode: int) -> None:
    path = tmp_path / "root.keys"
    write_private(path, b64(os.urandom(32)) + "\n")
    path.chmod(file_mode)
    hsm = SoftwareHSM.from_options({"key_file": str(path)})
    with pytest.raises(ConfigError, match=r"accessible by group/others.*chmod 600") as e:
        await hsm.open()
    assert f"{file_mode:04o}" in str(e.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("# header\n\nnot*base64!\n", r"line 3: malformed root key \(not valid base64\)"),
        (b64(os.urandom(16)) + "\n", r"line 1: malformed root key \(16 bytes, expected 32"),
        ("# only a comment\n", "contains no root key"),
        ("", "contains no root key"),
    ],
)
async def test_malformed_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "root.keys"
    write_private(path, content)
    hsm = SoftwareHSM.from_options({"key_file": str(path)})
    with pytest.raises(ConfigError, match=message) as e:
        await hsm.open()
    assert str(path) in str(e.value)
    for line in content.splitlines():
        if line and not line.startswith("#"):
            assert line not in str(e.value)  # never echo key material


async def test_non_ascii_file(tmp_path: Path) -> None:
    path = tmp_path / "root.keys"
    path.write_bytes(b"\xff\xfe")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="not ASCII"):
        await SoftwareHSM.from_options({"key_file": str(path)}).open()


async def test_missing_file_with_create_false(tmp_path: Path) -> None:
    path = tmp_path / "root.keys"
    hsm = SoftwareHSM.from_options({"key_file": str(path), "create": "false"})
    with pytest.raises(ConfigError, match="does not exist and create=false"):
        await hsm.open()
    assert not path.exists()


async def test_existing_file_with_create_false(tmp_path: Path) -> None:
    key = os.urandom(32)
    path = tmp_path / "root.keys"
    write_private(path, b64(key) + "\n")
    hsm = SoftwareHSM.from_options({"key_file": str(path), "create": "no"})
    await hsm.open()
    assert hsm.active_key_id == keyfile.key_id(key)


async def test_last_line_is_active(tmp_path: Path) -> None:
    old, new = os.urandom(32), os.urandom(32)
    path = tmp_path / "root.keys"
    write_private(path, f"{b64(old)}\n\n# rotated\n{b64(new)}\n")
    hsm = SoftwareHSM.from_options({"key_file": str(path)})
    await hsm.open()
    assert hsm.active_key_id == keyfile.key_id(new)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "no root key source; set option key_file"),
        ({"key_file": "/x", "key_env": "Y"}, "exclusive"),
        ({"key_file": "/x", "create": "maybe"}, "create must be true or false"),
    ],
)
def test_bad_options(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SoftwareHSM.from_options(options)


async def test_env_source(monkeypatch: pytest.MonkeyPatch) -> None:
    key = os.urandom(32)
    monkeypatch.setenv("KVAULT_ROOT_KEY", b64(key))
    hsm = SoftwareHSM.from_options({"key_env": "KVAULT_ROOT_KEY"})
    await hsm.open()
    assert hsm.active_key_id == keyfile.key_id(key)
    wrapped = await hsm.wrap(b"k" * 32, AAD)
    assert await hsm.unwrap(wrapped, AAD) == b"k" * 32
    assert b64(key) not in repr(hsm)


async def test_env_several_keys_last_active(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = os.urandom(32), os.urandom(32)
    monkeypatch.setenv("KVAULT_ROOT_KEY", b64(old))
    hsm = SoftwareHSM.from_options({"key_env": "KVAULT_ROOT_KEY"})
    await hsm.open()
    wrapped = await hsm.wrap(b"k" * 32, AAD)
    await hsm.close()
    monkeypatch.setenv("KVAULT_ROOT_KEY", f"{b64(old)},{b64(new)}")
    hsm = SoftwareHSM.from_options({"key_env": "KVAULT_ROOT_KEY"})
    await hsm.open()
    assert hsm.active_key_id == keyfile.key_id(new)
    assert await hsm.unwrap(wrapped, AAD) == b"k" * 32


async def test_env_missing_or_malformed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KVAULT_ROOT_KEY", raising=False)
    hsm = SoftwareHSM.from_options({"key_env": "KVAULT_ROOT_KEY"})
    with pytest.raises(ConfigError, match="KVAULT_ROOT_KEY is not set"):
        await hsm.open()
    monkeypatch.setenv("KVAULT_ROOT_KEY", "c2hvcnQ=")
    with pytest.raises(ConfigError, match="variable KVAULT_ROOT_KEY, line 1: malformed") as e:
        await hsm.open()
    assert "c2hvcnQ=" not in str(e.value)


async def test_rotate_refused_for_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVAULT_ROOT_KEY", b64(os.urandom(32)))
    hsm = SoftwareHSM.from_options({"key_env": "KVAULT_ROOT_KEY"})
    await hsm.open()
    active = hsm.active_key_id
    with pytest.raises(ConfigError, match="cannot rotate a root key read from environment"):
        await hsm.rotate()
    assert hsm.active_key_id == active


def test_key_id_is_deterministic_and_distinct() -> None:
    a, b = os.urandom(32), os.urandom(32)
    assert keyfile.key_id(a) == keyfile.key_id(a)
    assert keyfile.key_id(a) != keyfile.key_id(b)
    assert len(keyfile.key_id(a)) == 16
