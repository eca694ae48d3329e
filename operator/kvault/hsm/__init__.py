"""HSM plugins: the keys at the root of the barrier (see :mod:`kvault.hsm.base`)."""

from kvault.hsm.base import HSM, WrappedKey
from kvault.hsm.registry import available, load

__all__ = ["HSM", "WrappedKey", "available", "load"]
