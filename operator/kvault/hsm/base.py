"""The HSM plugin interface: protect root keys, wrap and unwrap the keys below them.

A plugin holds one or more root keys, each named by a ``key_id``. New wraps use the active
key; older keys stay available for unwrapping until their data has been rewrapped, which is
what makes root rotation safe. Root key material never leaves the plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A key encrypted under the root key ``key_id``. ``blob`` is opaque to everyone else."""

    key_id: str
    blob: bytes


@runtime_checkable
class HSM(Protocol):
    """A key-protection plugin (entry point group ``kvault.hsm``)."""

    #: The plugin's entry-point name (``software``, ``pkcs11``...).
    name: str

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Self:
        """Build the plugin from string options (CLI flags, env, Helm values).

        Raises :class:`kvault.errors.ConfigError` naming the bad or missing option.
        """
        ...

    async def open(self) -> None:
        """Load the root keys, creating the first one if there is none yet."""
        ...

    @property
    def active_key_id(self) -> str:
        """The root key that new wraps use."""
        ...

    async def wrap(self, key: bytes, aad: bytes) -> WrappedKey:
        """Encrypt ``key`` under the active root key, bound to ``aad``."""
        ...

    async def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        """Decrypt a wrapped key. Raises :class:`kvault.errors.IntegrityError` when the blob or
        ``aad`` was altered, :class:`kvault.errors.ConfigError` when ``key_id`` is unknown."""
        ...

    async def rotate(self) -> str:
        """Create a new root key and make it active; return its id. Old keys still unwrap."""
        ...

    async def close(self) -> None: ...
