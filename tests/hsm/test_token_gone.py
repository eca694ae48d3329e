"""A PKCS#11 token that goes away and comes back (the fault tier's "HSM unavailable").

Real SoftHSM2: the token's directory is moved away and back, which SoftHSM2 sees as the token
removed and reinserted (it forgets a removed token until ``C_Initialize``). While it is
away every operation that needs it fails with :class:`HSMUnavailable` (a 503 on the data
plane) and nothing is answered from anywhere else; once it is back the plugin reconnects
(re-initialise, log in, reload its keys) and the same root key and HSM-held key work again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from kvault.errors import HSMUnavailable
from kvault.hsm import load
from tests.fixtures.softhsm import SoftHSMEnv, SoftHSMToken

T = TypeVar("T")
DIGEST = hashlib.sha256(b"token gone").digest()


def _token_dir(softhsm: SoftHSMEnv, label: str) -> Path:
    """SoftHSM2's directory of the token labelled ``label`` (its token.object names it)."""
    for directory in (softhsm.root / "tokens").iterdir():
        info = directory / "token.object"
        if info.exists() and label.encode() in info.read_bytes():
            return directory
    raise AssertionError(f"no SoftHSM2 directory holds token {label}")


async def _once_back(call: Callable[[], Awaitable[T]]) -> T:
    """``call`` as soon as the plugin has reconnected (it tries at most once a second)."""
    async with asyncio.timeout(10):
        while True:
            try:
                return await call()
            except HSMUnavailable:
                await asyncio.sleep(0.1)


async def test_a_token_that_goes_away_is_unavailable_then_reconnected(
    softhsm: SoftHSMEnv, softhsm_token: SoftHSMToken, tmp_path: Path
) -> None:
    hsm = load("pkcs11", softhsm_token.options(softhsm_token.write_pin_file(tmp_path)))
    await hsm.open()
    try:
        held = hsm.keys  # type: ignore[attr-defined]
        wrapped = await hsm.wrap(b"k" * 32, b"context")
        handle, _ = await held.create_key("kvault-key-gone-1", "EC", crv="P-256")
        assert len(await held.sign(handle, "ES256", DIGEST)) == 64

        directory = _token_dir(softhsm, softhsm_token.label)
        away = tmp_path / "away"  # out of the token directory: SoftHSM2 sees it removed
        directory.rename(away)
        try:
            with pytest.raises(HSMUnavailable):
                await held.sign(handle, "ES256", DIGEST)
            with pytest.raises(HSMUnavailable):
                await hsm.unwrap(wrapped, b"context")
            with pytest.raises(HSMUnavailable):
                await hsm.wrap(b"n" * 32, b"context")
        finally:
            away.rename(directory)

        assert await _once_back(lambda: hsm.unwrap(wrapped, b"context")) == b"k" * 32
        assert len(await held.sign(handle, "ES256", DIGEST)) == 64
        again = await hsm.wrap(b"n" * 32, b"context")
        assert await hsm.unwrap(again, b"context") == b"n" * 32
    finally:
        await hsm.close()
