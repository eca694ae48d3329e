"""The physical storage interface: opaque rows, nothing readable.

Backends hold rows of ``key -> value`` where the value is ciphertext produced by the barrier.
Every row carries a ``revision`` (1 for a new row, +1 on each overwrite) so that callers can
compare-and-set; several puts and deletes commit atomically through :meth:`Storage.commit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kvault.errors import StorageConflict

#: ``expect`` value meaning "the row must not exist".
ABSENT = 0


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    value: bytes
    revision: int


@dataclass(frozen=True, slots=True)
class Put:
    """Write ``value`` at ``key``. ``expect`` is the revision the row must have now
    (:data:`ABSENT` for a new row); ``None`` writes unconditionally."""

    key: str
    value: bytes
    expect: int | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove ``key`` (a missing row is fine unless ``expect`` says otherwise)."""

    key: str
    expect: int | None = None


@dataclass(frozen=True, slots=True)
class DeletePrefix:
    """Remove every row whose key starts with ``prefix``."""

    prefix: str


@dataclass(frozen=True, slots=True)
class Check:
    """Assert that ``key`` has revision ``expect`` (:data:`ABSENT`: does not exist)."""

    key: str
    expect: int


Op = Put | Delete | DeletePrefix | Check


def checked(ops: Sequence[Op]) -> list[Op]:
    """``ops`` as a list; :class:`TypeError` for anything that is not an :data:`Op`."""
    ops = list(ops)
    for op in ops:
        if not isinstance(op, Put | Delete | DeletePrefix | Check):
            raise TypeError(f"unknown storage op {type(op).__name__}")
    return ops


def holds(expect: int | None, current: int | None) -> bool:
    """Whether a row at revision ``current`` (``None``: absent) meets ``expect``."""
    if expect is None:
        return True
    return expect == ABSENT if current is None else expect == current


def _describe(revision: int | None) -> str:
    return "absent" if revision is None or revision == ABSENT else f"revision {revision}"


def conflict(key: str, expect: int | None, current: int | None) -> StorageConflict:
    """The error every backend raises when ``expect`` does not hold (no values in it)."""
    return StorageConflict(
        f"storage conflict on key {key!r}: expected {_describe(expect)}, found {_describe(current)}"
    )


@runtime_checkable
class Storage(Protocol):
    """An async store of opaque rows. Keys are ``/``-separated ASCII strings, ordered bytewise."""

    async def get(self, key: str) -> Row | None: ...

    async def list(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> list[Row]:
        """Rows whose key starts with ``prefix``, in key order, after ``start_after``."""
        ...

    async def commit(self, ops: Sequence[Op]) -> dict[str, int]:
        """Apply every op atomically and durably, or none of them.

        Returns the new revision of each key written by a :class:`Put`. Raises
        :class:`kvault.errors.StorageConflict` when any ``expect`` does not hold.
        When it returns, the write survives a SIGKILL of the process.
        """
        ...

    async def close(self) -> None: ...
