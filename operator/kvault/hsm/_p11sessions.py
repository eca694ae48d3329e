"""Process-wide logged-in PKCS#11 sessions, one per (module, token), refcounted.

Why: login state is per token per process (a second login raises ``UserAlreadyLoggedIn``)
and ``pkcs11.lib(path)`` is process-global, so plugin instances over the same token (two
vaults, a test reopening) must share one session; the last release logs out.

Only the PKCS#11 thread (:mod:`kvault.hsm._p11thread`) touches these objects, so no lock.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import pkcs11
import pkcs11.exceptions as p11e

from kvault.errors import HSMError

#: What a token says when it, its session or its objects went away (removed, reloaded, the
#: device failed): the plugin reconnects once and tries again.
GONE: tuple[type[Exception], ...] = (
    p11e.DeviceError,
    p11e.DeviceRemoved,
    p11e.KeyHandleInvalid,
    p11e.ObjectHandleInvalid,
    p11e.SessionClosed,
    p11e.SessionHandleInvalid,
    p11e.TokenNotPresent,
    p11e.UserNotLoggedIn,
)


class NotInToken(HSMError):
    """A key's object is not in the token: destroyed, or the token is not the one it was
    (the plugin reconnects once to tell the two apart)."""


@dataclass(eq=False)
class SharedSession:
    module: str
    token_label: str
    session: pkcs11.Session
    pin_digest: bytes
    refs: int = 1
    #: The module's re-initialisation this session was opened after (see :data:`epochs`).
    epoch: int = 0
    keys: dict[str, Any] = field(default_factory=dict)  # label -> SecretKey (stubs lack encrypt)
    # HSM-held keys found so far, by label (kvault.hsm._p11objects.Held); token objects
    # outlive lookups, so only destroy (or a stale-handle error) drops an entry.
    held: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"SharedSession(module={self.module!r}, token={self.token_label!r}, refs={self.refs})"
        )


sessions: dict[tuple[str, str], SharedSession] = {}
#: How many times each module was re-initialised to reconnect (so sessions that find theirs
#: already re-initialised by another only reopen, instead of re-initialising it again).
epochs: dict[str, int] = {}
loaded_modules: set[str] = set()  # modules this process has loaded (and initialised)


def pin_digest(module: str, token_label: str, pin: bytes) -> bytes:
    """Lets a later instance prove it knows the PIN without the PIN being kept around."""
    return hmac.new(pin, f"{module}\x00{token_label}".encode(), hashlib.sha256).digest()


def digests_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def sessions_open_on(module: str) -> bool:
    return any(m == module for m, _ in sessions)
