"""pkcs11 plugin specifics, against SoftHSM2: key attributes, login and lookup errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kvault.errors import ConfigError, HSMError
from kvault.hsm import WrappedKey
from kvault.hsm import _p11thread as p11thread
from kvault.hsm.pkcs11 import Pkcs11HSM
from tests.fixtures.softhsm import HSMFactory, SoftHSMEnv, SoftHSMToken

AAD = b"aad"

# Runs in a separate process: an independent look at what the token really stores.
INSPECT = textwrap.dedent(
    """
    import json, sys
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass
    module, label, pin = sys.argv[1:4]
    token = pkcs11.lib(module).get_token(token_label=label)
    out = {}
    with token.open(user_pin=pin) as s:
        for key in s.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
            attrs = {a.name: bool(key[a]) for a in (
                Attribute.EXTRACTABLE, Attribute.SENSITIVE, Attribute.NEVER_EXTRACTABLE,
                Attribute.ALWAYS_SENSITIVE, Attribute.TOKEN, Attribute.PRIVATE,
                Attribute.WRAP, Attribute.SIGN)}
            attrs["VALUE_LEN"] = key[Attribute.VALUE_LEN]
            try:
                key[Attribute.VALUE]
                attrs["value_readable"] = True
            except pkcs11.exceptions.AttributeSensitive:
                attrs["value_readable"] = False
            out[key.label] = attrs
    print(json.dumps(out))
    """
)


def run_script(script: str, env: SoftHSMEnv, token: SoftHSMToken) -> str:
    """Run ``script`` in a separate process logged into ``token``; its stdout."""
    proc = subprocess.run(
        [sys.executable, "-c", script, token.module, token.label, token.pin],
        env={**os.environ, "SOFTHSM2_CONF": str(env.conf)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout


def inspect(env: SoftHSMEnv, token: SoftHSMToken) -> dict[str, dict[str, object]]:
    result: dict[str, dict[str, object]] = json.loads(run_script(INSPECT, env, token))
    return result


def options(token: SoftHSMToken, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**token.options(token.write_pin_file(tmp_path)), **extra}


async def test_root_keys_are_non_extractable_and_sensitive(
    softhsm: SoftHSMEnv, softhsm_token: SoftHSMToken, tmp_path: Path
) -> None:
    hsm = Pkcs11HSM.from_options(options(softhsm_token, tmp_path))
    await hsm.open()
    try:
        await hsm.rotate()
        keys = inspect(softhsm, softhsm_token)
    finally:
        await hsm.close()
    assert set(keys) == {"kvault-root-1", "kvault-root-2"}
    for attrs in keys.values():
        assert attrs["EXTRACTABLE"] is False
        assert attrs["SENSITIVE"] is True
        assert attrs["NEVER_EXTRACTABLE"] is True
        assert attrs["ALWAYS_SENSITIVE"] is True
        assert attrs["TOKEN"] is True
        assert attrs["PRIVATE"] is True
        assert attrs["WRAP"] is False and attrs["SIGN"] is False  # encrypt/decrypt only
        assert attrs["VALUE_LEN"] == 32
        assert attrs["value_readable"] is False


async def test_wrong_pin(
    softhsm_token: SoftHSMToken, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_WRONG_PIN", "99999999")
    hsm = Pkcs11HSM.from_options(
        {
            "module": softhsm_token.module,
            "token_label": softhsm_token.label,
            "pin_env": "TEST_WRONG_PIN",
        }
    )
    with pytest.raises(ConfigError, match=r"login to token .* failed: wrong PIN") as e:
        await hsm.open()
    assert "99999999" not in str(e.value)
    assert "99999999" not in repr(hsm)


async def test_wrong_pin_while_token_is_open(
    softhsm_token: SoftHSMToken, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = Pkcs11HSM.from_options(options(softhsm_token, tmp_path))
    await good.open()
    try:
        monkeypatch.setenv("TEST_WRONG_PIN", "99999999")
        bad = Pkcs11HSM.from_options(
            {
                "module": softhsm_token.module,
                "token_label": softhsm_token.label,
                "pin_env": "TEST_WRONG_PIN",
            }
        )
        with pytest.raises(ConfigError, match="wrong PIN"):
            await bad.open()
        assert await good.unwrap(await good.wrap(b"k" * 32, AAD), AAD) == b"k" * 32
    finally:
        await good.close()


async def test_pin_from_default_env(
    softhsm_token: SoftHSMToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KVAULT_PKCS11_PIN", softhsm_token.pin)
    hsm = Pkcs11HSM.from_options({"token_label": softhsm_token.label})
    await hsm.open()
    assert hsm.active_key_id == "kvault-root-1"
    await hsm.close()


def test_missing_pin(softhsm_token: SoftHSMToken, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KVAULT_PKCS11_PIN", raising=False)
    with pytest.raises(ConfigError, match=r"no PIN; set option pin_file.*KVAULT_PKCS11_PIN"):
        Pkcs11HSM.from_options({"token_label": softhsm_token.label})


async def test_group_readable_pin_file_refused(softhsm_token: SoftHSMToken, tmp_path: Path) -> None:
    opts = options(softhsm_token, tmp_path)
    Path(opts["pin_file"]).chmod(0o644)
    with pytest.raises(ConfigError, match=r"PIN file .* accessible by group/others"):
        await Pkcs11HSM.from_options(opts).open()


async def test_unknown_token_label(softhsm: SoftHSMEnv, tmp_path: Path) -> None:
    token = softhsm.new_token()
    opts = options(token, tmp_path, token_label="no-such-token")
    with pytest.raises(ConfigError, match=r"token 'no-such-token' not found.*tokens present"):
        await Pkcs11HSM.from_options(opts).open()


def test_missing_token_label_and_module(softhsm_token: SoftHSMToken, tmp_path: Path) -> None:
    opts = options(softhsm_token, tmp_path)
    del opts["token_label"]
    with pytest.raises(ConfigError, match="token_label is required"):
        Pkcs11HSM.from_options(opts)
    with pytest.raises(ConfigError, match=r"module /nonexistent.so does not exist"):
        Pkcs11HSM.from_options({**options(softhsm_token, tmp_path), "module": "/nonexistent.so"})


async def test_token_created_after_library_load(
    softhsm: SoftHSMEnv, softhsm_token: SoftHSMToken, tmp_path: Path
) -> None:
    first = Pkcs11HSM.from_options(options(softhsm_token, tmp_path))
    await first.open()  # the library is loaded and initialised now
    await first.close()
    later = softhsm.init_token()  # not from the pool: initialised after the library
    hsm = Pkcs11HSM.from_options(options(later, tmp_path))
    await hsm.open()
    assert await hsm.unwrap(await hsm.wrap(b"k" * 32, AAD), AAD) == b"k" * 32
    await hsm.close()


async def test_label_prefixes_are_independent(softhsm_token: SoftHSMToken, tmp_path: Path) -> None:
    a = Pkcs11HSM.from_options(options(softhsm_token, tmp_path, label_prefix="team-a-"))
    b = Pkcs11HSM.from_options(options(softhsm_token, tmp_path, label_prefix="team-b-"))
    await a.open()
    await b.open()
    try:
        assert (a.active_key_id, b.active_key_id) == ("team-a-1", "team-b-1")
        assert await a.rotate() == "team-a-2"
        assert b.active_key_id == "team-b-1"
        wrapped = await a.wrap(b"k" * 32, AAD)
        with pytest.raises(ConfigError, match="unknown root key id"):
            await b.unwrap(wrapped, AAD)
    finally:
        await a.close()
        await b.close()


async def test_key_id_is_label(hsm_factory: HSMFactory, tmp_path: Path) -> None:
    hsm = hsm_factory("pkcs11", tmp_path)
    await hsm.open()
    assert hsm.active_key_id == "kvault-root-1"
    assert await hsm.rotate() == "kvault-root-2"
    for bad in ("kvault-root-02", "kvault-root-", "kvault-root-x", "other-1"):
        with pytest.raises(ConfigError, match="unknown root key id"):
            await hsm.unwrap(WrappedKey(bad, b"\0" * 60), AAD)


DUPLICATE = textwrap.dedent(
    """
    import sys
    import pkcs11
    from pkcs11 import Attribute, KeyType
    module, label, pin = sys.argv[1:4]
    token = pkcs11.lib(module).get_token(token_label=label)
    with token.open(rw=True, user_pin=pin) as s:
        s.generate_key(KeyType.AES, 256, label="kvault-root-1", store=True,
                       template={Attribute.EXTRACTABLE: False})
    """
)


async def test_duplicate_root_key_label_refused(
    softhsm: SoftHSMEnv, softhsm_token: SoftHSMToken, tmp_path: Path
) -> None:
    """What a rotation racing in two processes would leave behind: refuse, don't guess."""
    hsm = Pkcs11HSM.from_options(options(softhsm_token, tmp_path))
    await hsm.open()
    await hsm.close()
    run_script(DUPLICATE, softhsm, softhsm_token)
    with pytest.raises(ConfigError, match="two root keys labelled 'kvault-root-1'"):
        await Pkcs11HSM.from_options(options(softhsm_token, tmp_path)).open()


async def test_refuses_after_fork(
    softhsm_token: SoftHSMToken, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(p11thread, "_forked_after_use", True)
    with pytest.raises(HSMError, match="cannot be used in the child"):
        await Pkcs11HSM.from_options(options(softhsm_token, tmp_path)).open()


def test_pkcs11_objects_only_on_the_worker_thread() -> None:
    with pytest.raises(HSMError, match="outside the kvault-pkcs11 thread"):
        p11thread.require_worker_thread()


async def test_new_token_while_another_is_open(hsm_factory: HSMFactory, tmp_path: Path) -> None:
    a = hsm_factory("pkcs11", tmp_path / "a")
    await a.open()
    b = hsm_factory("pkcs11", tmp_path / "b")  # token taken from the pool after a's login
    await b.open()
    wrapped = await b.wrap(b"k" * 32, AAD)
    assert await b.unwrap(wrapped, AAD) == b"k" * 32
    assert hsm_factory.token(tmp_path / "a").label != hsm_factory.token(tmp_path / "b").label
