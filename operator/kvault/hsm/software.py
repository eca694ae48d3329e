"""``software`` HSM plugin: AES-256-GCM root keys held in process memory.

For development, tests and clusters without an HSM. The root keys come from a key file
(created 0600 on first start unless ``create=false``) or from an environment variable
(base64, several keys separated by whitespace or commas, last one active). Protect the
file like an SSH private key: whoever reads it can unwrap every vault.

Options: ``key_file`` (path) or ``key_env`` (variable name), ``create`` (default true).

:attr:`SoftwareHSM.keys` offers premium vaults' key operations in process memory, sealed by
the root keys: NOT an HSM, for development and tests (see :mod:`kvault.hsm._softkeys`).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kvault.errors import ConfigError, HSMError, IntegrityError
from kvault.hsm import keyfile
from kvault.hsm._options import check_known, parse_bool
from kvault.hsm._softkeys import SoftwareKeys
from kvault.hsm.base import WrappedKey

NONCE_BYTES = 12
TAG_BYTES = 16
_OPTIONS = ("key_file", "key_env", "create")


class SoftwareHSM:
    """Root keys from a 0600 file or an env var; AES-256-GCM wrap with a random nonce."""

    name = "software"

    def __init__(
        self, *, key_file: Path | None = None, key_env: str | None = None, create: bool = True
    ) -> None:
        if (key_file is None) == (key_env is None):
            raise ConfigError("software HSM: set exactly one of the options key_file or key_env")
        self._key_file = key_file
        self._key_env = key_env
        self._create = create
        # Replaced wholesale (never mutated), so readers in other threads need no lock.
        self._ciphers: dict[str, AESGCM] = {}
        self._active: str | None = None
        self._rotate_lock = threading.Lock()
        #: "HSM-held" keys (:class:`kvault.hsm.keys.HsmKeys`), in memory: not an HSM.
        self.keys = SoftwareKeys(lambda: self.active_key_id, self._cipher)

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Self:
        check_known(cls.name, options, _OPTIONS)
        key_file = options.get("key_file", "").strip()
        key_env = options.get("key_env", "").strip()
        if key_file and key_env:
            raise ConfigError("software HSM: options key_file and key_env are exclusive")
        if not key_file and not key_env:
            raise ConfigError(
                "software HSM: no root key source; set option key_file (a path) "
                "or key_env (an environment variable name, e.g. KVAULT_ROOT_KEY)"
            )
        create = parse_bool(cls.name, "create", options.get("create", "true"))
        return cls(
            key_file=Path(key_file).expanduser() if key_file else None,
            key_env=key_env or None,
            create=create,
        )

    def __repr__(self) -> str:
        source = (
            f"key_file={str(self._key_file)!r}" if self._key_file else f"key_env={self._key_env!r}"
        )
        return f"SoftwareHSM({source}, active_key_id={self._active!r})"

    # -- loading ---------------------------------------------------------------------------

    def _read_source(self) -> list[bytes]:
        if self._key_env is not None:
            value = os.environ.get(self._key_env)
            if value is None or not value.strip():
                raise ConfigError(
                    f"software HSM: environment variable {self._key_env} is not set or empty"
                )
            return keyfile.parse_keys(value, f"environment variable {self._key_env}")
        assert self._key_file is not None
        if self._create:
            return keyfile.create_or_read(self._key_file)
        if not self._key_file.exists():
            raise ConfigError(
                f"root key file {self._key_file} does not exist and create=false; "
                "restore the file or allow creating a new root key"
            )
        return keyfile.read_key_file(self._key_file)

    def _install(self, keys: list[bytes]) -> None:
        ciphers = {keyfile.key_id(k): AESGCM(k) for k in keys}
        self._ciphers = ciphers
        self._active = keyfile.key_id(keys[-1])

    async def open(self) -> None:
        self._install(await asyncio.to_thread(self._read_source))

    @property
    def active_key_id(self) -> str:
        if self._active is None:
            raise HSMError("software HSM is not open")
        return self._active

    # -- operations ------------------------------------------------------------------------

    async def wrap(self, key: bytes, aad: bytes) -> WrappedKey:
        # Microseconds of CPU for a key-sized payload: cheaper inline than in a thread.
        active = self.active_key_id
        nonce = os.urandom(NONCE_BYTES)
        blob = nonce + self._ciphers[active].encrypt(nonce, key, aad)
        return WrappedKey(key_id=active, blob=blob)

    async def _cipher(self, key_id: str) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None and self._key_file is not None:
            # Another process may have rotated the shared file since we loaded it.
            self._install(await asyncio.to_thread(keyfile.read_key_file, self._key_file))
            cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ConfigError(f"software HSM: unknown root key id {key_id[:64]!r}")
        return cipher

    async def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        self.active_key_id  # noqa: B018 - raises if not open
        cipher = await self._cipher(wrapped.key_id)
        blob = wrapped.blob
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise IntegrityError("wrapped key failed authentication (blob too short)")
        try:
            return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise IntegrityError(
                f"wrapped key failed authentication under root key {wrapped.key_id!r} "
                "(tampered blob or wrong context)"
            ) from None

    async def rotate(self) -> str:
        if self._key_file is None:
            raise ConfigError(
                f"software HSM: cannot rotate a root key read from environment variable "
                f"{self._key_env}; add a new key to the variable (last one is active) instead"
            )
        path = self._key_file

        def append() -> list[bytes]:
            with self._rotate_lock:
                return keyfile.append_key(path)

        self._install(await asyncio.to_thread(append))
        return self.active_key_id

    async def close(self) -> None:
        self._ciphers = {}
        self._active = None
