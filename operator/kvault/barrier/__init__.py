"""Envelope encryption between the domain and storage (see :mod:`kvault.barrier.barrier`)."""

from kvault.barrier.barrier import Barrier
from kvault.barrier.context import Context

__all__ = ["Barrier", "Context"]
