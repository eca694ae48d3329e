"""Physical storage: opaque rows of ciphertext (see :mod:`kvault.storage.base`)."""

from kvault.storage.base import ABSENT, Check, Delete, DeletePrefix, Op, Put, Row, Storage

__all__ = ["ABSENT", "Check", "Delete", "DeletePrefix", "Op", "Put", "Row", "Storage"]
