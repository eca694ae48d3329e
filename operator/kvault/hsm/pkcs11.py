"""``pkcs11`` HSM plugin: root keys that never leave a PKCS#11 token (SoftHSM2, a real HSM).

Root keys are AES-256 token objects (``CKA_TOKEN``, not extractable, sensitive) labelled
``<label_prefix><n>``; the highest ``n`` is active and :meth:`Pkcs11HSM.rotate` creates
``n+1``. Wrapping is AES-GCM inside the token with a random 96-bit nonce and a 128-bit tag;
the blob is ``nonce || ciphertext || tag``.

Premium vaults' keys live in the same token: :attr:`Pkcs11HSM.keys` (see
:mod:`kvault.hsm._p11keys`).

Every PKCS#11 call runs on one process-wide thread (see :mod:`kvault.hsm._p11thread`).

Options: ``module`` (default ``$PKCS11_MODULE`` or SoftHSM2's path), ``token_label``
(required), ``pin_file`` or ``pin_env`` (default variable ``KVAULT_PKCS11_PIN``),
``label_prefix`` (default ``kvault-root-``; lets several installations share a token).

Rotation is not atomic across processes: rotate from one process (the leader) only; a
duplicate label is detected and refused at the next open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11e

from kvault.errors import ConfigError, HSMError, HSMUnavailable, IntegrityError
from kvault.hsm import _p11sessions as p11s
from kvault.hsm import _p11thread as p11thread
from kvault.hsm._options import check_known, read_secret_file
from kvault.hsm._p11keys import Pkcs11Keys
from kvault.hsm.base import WrappedKey

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Pkcs11Lib

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
DEFAULT_PIN_ENV = "KVAULT_PKCS11_PIN"
DEFAULT_LABEL_PREFIX = "kvault-root-"
NONCE_BYTES = 12
TAG_BITS = 128
_OPTIONS = ("module", "token_label", "pin_file", "pin_env", "label_prefix")
#: Seconds between two attempts to reconnect to a token that went away.
RECONNECT_EVERY = 1.0
T = TypeVar("T")
log = logging.getLogger(__name__)

# Failures of the device or session, not of the data: report as HSMError, not tampering.
_DEVICE_ERRORS: tuple[type[Exception], ...] = (
    p11e.ObjectHandleInvalid,
    p11e.DeviceError,
    p11e.DeviceMemory,
    p11e.DeviceRemoved,
    p11e.HostMemory,
    p11e.KeyHandleInvalid,
    p11e.SessionClosed,
    p11e.SessionHandleInvalid,
    p11e.TokenNotPresent,
    p11e.UserNotLoggedIn,
)


class Pkcs11HSM:
    """Non-extractable AES-256 root keys in a PKCS#11 token; AES-GCM wrap inside the token."""

    name = "pkcs11"

    def __init__(
        self,
        *,
        token_label: str,
        module: str = DEFAULT_MODULE,
        pin_file: Path | None = None,
        pin_env: str = DEFAULT_PIN_ENV,
        label_prefix: str = DEFAULT_LABEL_PREFIX,
    ) -> None:
        if not token_label:
            raise ConfigError("pkcs11 HSM: option token_label is required")
        if not label_prefix:
            raise ConfigError("pkcs11 HSM: option label_prefix must not be empty")
        # realpath: two spellings of one .so must map to one library and one login. A bare
        # name ("libsofthsm2.so") is left to the dynamic loader's search path.
        self._module = os.path.realpath(module) if "/" in module else module
        self._token_label = token_label
        self._pin_file = pin_file
        self._pin_env = pin_env
        self._prefix = label_prefix
        self._shared: p11s.SharedSession | None = None
        self._active: str | None = None
        #: HSM-held keys (:class:`kvault.hsm.keys.HsmKeys`), usable while the plugin is open.
        self.keys = Pkcs11Keys(self._call)
        self._reconnected = -RECONNECT_EVERY  # loop time of the last reconnect attempt

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Self:
        check_known(cls.name, options, _OPTIONS)
        module = options.get("module") or os.environ.get("PKCS11_MODULE") or DEFAULT_MODULE
        if "/" in module and not os.path.exists(module):
            raise ConfigError(f"pkcs11 HSM: module {module} does not exist (option module)")
        token_label = options.get("token_label", "")
        if not token_label:
            raise ConfigError("pkcs11 HSM: option token_label is required")
        pin_file = options.get("pin_file") or None
        pin_env = options.get("pin_env") or DEFAULT_PIN_ENV
        if pin_file is None and not os.environ.get(pin_env):
            raise ConfigError(
                f"pkcs11 HSM: no PIN; set option pin_file, or environment variable {pin_env} "
                "(named by option pin_env)"
            )
        return cls(
            module=module,
            token_label=token_label,
            pin_file=Path(pin_file) if pin_file else None,
            pin_env=pin_env,
            label_prefix=options.get("label_prefix") or DEFAULT_LABEL_PREFIX,
        )

    def __repr__(self) -> str:
        return (
            f"Pkcs11HSM(module={self._module!r}, token_label={self._token_label!r}, "
            f"active_key_id={self._active!r})"
        )

    def _read_pin(self) -> str:
        if self._pin_file is not None:
            raw = read_secret_file(self._pin_file, "PKCS#11 PIN file")
            try:
                pin = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise ConfigError(f"PKCS#11 PIN file {self._pin_file} is not UTF-8") from None
            source = f"PIN file {self._pin_file}"
        else:
            pin = os.environ.get(self._pin_env, "")
            source = f"environment variable {self._pin_env}"
        if not pin:
            raise ConfigError(f"pkcs11 HSM: {source} is empty")
        return pin

    def _session(self) -> p11s.SharedSession:
        if self._shared is None:
            raise HSMError("pkcs11 HSM is not open")
        return self._shared

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._shared is not None:
            return
        pin = self._read_pin()
        self._shared, self._active = await p11thread.call(
            _t_open, self._module, self._token_label, pin, self._prefix
        )

    @property
    def active_key_id(self) -> str:
        if self._active is None:
            raise HSMError("pkcs11 HSM is not open")
        return self._active

    async def close(self) -> None:
        shared, self._shared, self._active = self._shared, None, None
        if shared is not None:
            await p11thread.call(_t_release, shared)

    # -- operations ------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(session, *args)`` on the PKCS#11 thread. If the token went away (removed,
        reloaded, a device error), reconnect once and try again; while it stays away, the
        caller gets :class:`HSMUnavailable` (503), and nothing falls back to anything."""
        try:
            return await p11thread.call(fn, self._session(), *args)
        except (HSMUnavailable, p11s.NotInToken):
            if not await self._reconnect():
                raise
        return await p11thread.call(fn, self._session(), *args)

    async def _reconnect(self) -> bool:
        """Re-initialise the module and log in again (a token that was removed stays
        forgotten until ``C_Initialize``); at most once per :data:`RECONNECT_EVERY`
        seconds. False when it is too early to try again."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._reconnected < RECONNECT_EVERY:
            return False
        self._reconnected = loop.time()
        labels = await p11thread.call(_t_reconnect, self._session(), self._read_pin(), self._prefix)
        self._active = labels[-1]
        log.warning("pkcs11 HSM: reconnected to token %r", self._token_label)
        return True

    async def wrap(self, key: bytes, aad: bytes) -> WrappedKey:
        nonce = os.urandom(NONCE_BYTES)
        label, ct = await self._call(_t_encrypt, self._prefix, self.active_key_id, nonce, key, aad)
        return WrappedKey(key_id=label, blob=nonce + ct)

    async def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        if _index(self._prefix, wrapped.key_id) is None:
            raise ConfigError(f"pkcs11 HSM: unknown root key id {wrapped.key_id[:64]!r}")
        if len(wrapped.blob) < NONCE_BYTES + TAG_BITS // 8:
            raise IntegrityError("wrapped key failed authentication (blob too short)")
        return await self._call(_t_decrypt, self._prefix, wrapped, aad)

    async def rotate(self) -> str:
        self._active = await self._call(_t_rotate, self._prefix)
        return self._active


async def refresh_slots(module: str = DEFAULT_MODULE) -> bool:
    """Make tokens initialised since the library was loaded visible (the slot list is read
    at ``C_Initialize``). Only possible while no kvault session is open on ``module`` in this
    process; returns whether the library was re-initialised. Tests use it between tests."""
    real = os.path.realpath(module) if "/" in module else module
    return await p11thread.call(_t_refresh, real)


# -- worker-thread functions (the only code that touches pkcs11 objects) ----------------------


def _index(prefix: str, label: str) -> int | None:
    """``n`` of a root key label ``<prefix><n>``, or None for any other label."""
    rest = label[len(prefix) :] if label.startswith(prefix) else ""
    if rest.isascii() and rest.isdigit() and not rest.startswith("0"):
        return int(rest)
    return None


def _t_lib(module: str) -> Pkcs11Lib:
    try:
        lib = pkcs11.lib(module)
    except p11e.PKCS11Error as e:
        raise ConfigError(f"pkcs11 HSM: cannot load module {module}: {e}") from None
    p11s.loaded_modules.add(module)
    return lib


def _t_refresh(module: str) -> bool:
    p11thread.require_worker_thread()
    if module not in p11s.loaded_modules or p11s.sessions_open_on(module):
        return False
    _t_lib(module).reinitialize()
    return True


def _t_token(lib: Pkcs11Lib, module: str, label: str) -> pkcs11.Token:
    for attempt in range(2):
        try:
            return lib.get_token(token_label=label)
        except p11e.NoSuchToken:
            pass
        except p11e.MultipleTokensReturned:
            raise ConfigError(f"pkcs11 HSM: several tokens are labelled {label!r}") from None
        if attempt == 0 and not p11s.sessions_open_on(module):
            # The slot list is read at C_Initialize: a token initialised since then becomes
            # visible only after re-initialising, which is safe while we hold no session.
            lib.reinitialize()
    present = sorted(t.label for t in lib.get_tokens() if t.label)
    raise ConfigError(
        f"pkcs11 HSM: token {label!r} not found in module {module} "
        f"(tokens present: {', '.join(map(repr, present)) or 'none'})"
    )


def _t_login(token: pkcs11.Token, label: str, pin: str) -> pkcs11.Session:
    try:
        return token.open(rw=True, user_pin=pin)
    except p11e.PinIncorrect:
        msg = "wrong PIN (check pin_file / pin_env)"
    except p11e.PinLocked:
        msg = "the user PIN is locked (too many wrong attempts); reset it with the SO PIN"
    except (p11e.PinInvalid, p11e.PinLenRange):
        msg = "the PIN has an invalid length or characters"
    except p11e.UserPinNotInitialized:
        msg = "the token's user PIN is not initialised"
    except p11e.UserAlreadyLoggedIn:
        msg = "the token is already logged in by other code in this process"
    except p11e.PKCS11Error as e:
        raise HSMError(f"pkcs11 HSM: login to token {label!r} failed: {type(e).__name__}") from None
    raise ConfigError(f"pkcs11 HSM: login to token {label!r} failed: {msg}")


def _t_open(module: str, token_label: str, pin: str, prefix: str) -> tuple[p11s.SharedSession, str]:
    p11thread.require_worker_thread()
    digest = p11s.pin_digest(module, token_label, pin.encode())
    shared = p11s.sessions.get((module, token_label))
    if shared is not None:
        if not p11s.digests_equal(shared.pin_digest, digest):
            raise ConfigError(
                f"pkcs11 HSM: login to token {token_label!r} failed: wrong PIN (the token is "
                "already logged in in this process with another PIN)"
            )
        shared.refs += 1
    else:
        lib = _t_lib(module)
        token = _t_token(lib, module, token_label)
        session = _t_login(token, token_label, pin)
        shared = p11s.SharedSession(module, token_label, session, digest)
        p11s.sessions[(module, token_label)] = shared
    try:
        labels = _t_scan(shared, prefix)
        if not labels:
            labels = [_t_generate(shared, prefix, 1)]
    except BaseException:
        _t_release(shared)
        raise
    return shared, labels[-1]


def _t_reconnect(shared: p11s.SharedSession, pin: str, prefix: str) -> list[str]:
    """Reopen ``shared`` after its token went away: re-initialise the module unless another
    session already did since this one opened, log in again, reload the root keys (HSM-held
    keys are found again on use). :class:`HSMUnavailable` while the token is still away."""
    p11thread.require_worker_thread()
    module, label = shared.module, shared.token_label
    lib = _t_lib(module)
    with contextlib.suppress(p11e.PKCS11Error):
        shared.session.close()
    shared.keys.clear()
    shared.held.clear()
    if shared.epoch == p11s.epochs.get(module, 0):
        with contextlib.suppress(p11e.PKCS11Error):
            lib.reinitialize()
        p11s.epochs[module] = shared.epoch + 1
    shared.epoch = p11s.epochs[module]
    try:
        token = lib.get_token(token_label=label)
    except p11e.PKCS11Error as e:
        raise HSMUnavailable(
            f"pkcs11 HSM: token {label!r} is not present ({type(e).__name__})"
        ) from None
    try:
        shared.session = _t_login(token, label, pin)
        labels = _t_scan(shared, prefix)
    except p11e.PKCS11Error as e:
        raise HSMUnavailable(f"pkcs11 HSM: token {label!r}: {type(e).__name__}") from None
    if not labels:
        raise HSMUnavailable(f"pkcs11 HSM: token {label!r} holds no root key")
    return labels


def _t_release(shared: p11s.SharedSession) -> None:
    p11thread.require_worker_thread()
    shared.refs -= 1
    if shared.refs <= 0:
        p11s.sessions.pop((shared.module, shared.token_label), None)
        shared.keys.clear()
        shared.held.clear()
        with contextlib.suppress(p11e.PKCS11Error):
            shared.session.close()  # the last session closing logs out


def _t_scan(shared: p11s.SharedSession, prefix: str) -> list[str]:
    """(Re)load this prefix's root keys from the token; their labels, oldest first."""
    found: dict[int, Any] = {}  # pkcs11 SecretKey; its stubs lack the encrypt mixin
    template = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
    obj: Any
    try:
        objects = list(shared.session.get_objects(template))
    except p11e.PKCS11Error as e:
        text = f"pkcs11 HSM: listing the root keys of {shared.token_label!r}: {type(e).__name__}"
        raise (HSMUnavailable(text) if isinstance(e, p11s.GONE) else HSMError(text)) from None
    for obj in objects:
        n = _index(prefix, obj.label)
        if n is None:
            continue
        if n in found:
            raise ConfigError(
                f"pkcs11 HSM: token {shared.token_label!r} holds two root keys labelled "
                f"{obj.label!r} (concurrent rotation?); remove the one that wraps nothing"
            )
        found[n] = obj
    labels = [f"{prefix}{n}" for n in sorted(found)]
    shared.keys.update({f"{prefix}{n}": k for n, k in found.items()})
    return labels


def _t_generate(shared: p11s.SharedSession, prefix: str, n: int) -> str:
    label = f"{prefix}{n}"
    try:
        key = shared.session.generate_key(
            KeyType.AES,
            256,
            label=label,
            id=label.encode(),
            store=True,
            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
            template={
                Attribute.EXTRACTABLE: False,
                Attribute.SENSITIVE: True,
                Attribute.PRIVATE: True,
                Attribute.MODIFIABLE: False,
            },
        )
    except p11e.PKCS11Error as e:
        raise HSMError(
            f"pkcs11 HSM: cannot create root key {label!r} in token {shared.token_label!r}: "
            f"{type(e).__name__}"
        ) from None
    shared.keys[label] = key
    return label


def _t_rotate(shared: p11s.SharedSession, prefix: str) -> str:
    p11thread.require_worker_thread()
    labels = _t_scan(shared, prefix)  # another instance or process may have rotated
    last = _index(prefix, labels[-1]) if labels else 0
    return _t_generate(shared, prefix, (last or 0) + 1)


def _t_encrypt(
    shared: p11s.SharedSession, prefix: str, label: str, nonce: bytes, key: bytes, aad: bytes
) -> tuple[str, bytes]:
    """(the root key used, the ciphertext): ``label``, or after a reconnect (the cache was
    cleared) the newest root key the token holds."""
    p11thread.require_worker_thread()
    root = shared.keys.get(label)
    if root is None:
        labels = _t_scan(shared, prefix)
        if not labels:
            raise HSMUnavailable(f"pkcs11 HSM: token {shared.token_label!r} holds no root key")
        label = labels[-1]
        root = shared.keys[label]
    try:
        ct: bytes = root.encrypt(
            key,
            mechanism=Mechanism.AES_GCM,
            mechanism_param=pkcs11.GCMParams(nonce, aad, TAG_BITS),
        )
    except p11e.PKCS11Error as e:
        text = f"pkcs11 HSM: wrap under {label!r} failed: {type(e).__name__}"
        raise (HSMUnavailable(text) if isinstance(e, p11s.GONE) else HSMError(text)) from None
    return label, ct


def _t_decrypt(shared: p11s.SharedSession, prefix: str, wrapped: WrappedKey, aad: bytes) -> bytes:
    p11thread.require_worker_thread()
    label = wrapped.key_id
    key = shared.keys.get(label)
    if key is None:
        if not _t_scan(shared, prefix):  # not even our root keys: the token went away
            raise HSMUnavailable(f"pkcs11 HSM: token {shared.token_label!r} holds no root key")
        key = shared.keys.get(label)  # rotated by another instance or process since we loaded
        if key is None:
            raise ConfigError(
                f"pkcs11 HSM: unknown root key id {label!r} "
                f"(no such key in token {shared.token_label!r})"
            )
    nonce, ct = wrapped.blob[:NONCE_BYTES], wrapped.blob[NONCE_BYTES:]
    try:
        pt: bytes = key.decrypt(
            ct, mechanism=Mechanism.AES_GCM, mechanism_param=pkcs11.GCMParams(nonce, aad, TAG_BITS)
        )
    except _DEVICE_ERRORS as e:
        raise HSMUnavailable(
            f"pkcs11 HSM: unwrap under {label!r} failed: {type(e).__name__}"
        ) from None
    except p11e.PKCS11Error:
        raise IntegrityError(
            f"wrapped key failed authentication under root key {label!r} "
            "(tampered blob or wrong context)"
        ) from None
    return pt
