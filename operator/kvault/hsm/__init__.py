"""HSM plugins: the keys at the root of the barrier (see :mod:`kvault.hsm.base`)."""

from kvault.hsm.base import HSM, WrappedKey
from kvault.hsm.keys import HsmKeys, held_keys
from kvault.hsm.registry import available, load

__all__ = ["HSM", "HsmKeys", "WrappedKey", "available", "held_keys", "load"]
