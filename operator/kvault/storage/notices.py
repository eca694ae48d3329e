"""What a store shared by several processes tells each of them about the others' writes.

A replica caches what it read (vault records, unwrapped keyrings) and the leader projects
what any replica wrote, so each needs to hear of the others' commits. A shared backend
(:class:`Shared`) delivers two things to :meth:`Shared.watch`:

* :class:`RowsChanged`, sent by the backend itself inside the committing transaction, so it
  exists exactly when the commit does: the keys written and the prefixes deleted, nothing
  else (keys hold ids and lower-cased names, never values);
* notes: short strings the layers above :meth:`Shared.announce` after an operation (the
  vault's change feed), delivered at most once and best effort.

When the watch connection is lost and comes back, notices may have been missed meanwhile:
``on_reset`` is called and a watcher must then forget everything it cached.
A backend used by one process only (SQLite) is not :class:`Shared`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import orjson

from kvault.storage.base import Delete, DeletePrefix, Op, Put

#: The longest notice payload sent (PostgreSQL's limit is 8,000 bytes); a commit whose keys
#: do not fit is announced as :attr:`RowsChanged.everything`.
MAX_PAYLOAD = 7_000


@dataclass(frozen=True, slots=True)
class RowsChanged:
    """Rows another process committed: ``keys`` written or deleted, ``prefixes`` deleted;
    ``everything``: too many to list (forget every cached row)."""

    origin: str
    keys: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    everything: bool = False

    def touches(self, prefix: str) -> bool:
        """Whether any changed row may start with ``prefix``."""
        return (
            self.everything
            or any(k.startswith(prefix) for k in self.keys)
            or any(p.startswith(prefix) or prefix.startswith(p) for p in self.prefixes)
        )


def rows_changed(origin: str, ops: Sequence[Op]) -> str | None:
    """The payload announcing ``ops`` (``None``: they change nothing)."""
    keys = sorted({op.key for op in ops if isinstance(op, Put | Delete)})
    prefixes = sorted({op.prefix for op in ops if isinstance(op, DeletePrefix)})
    if not keys and not prefixes:
        return None
    payload = orjson.dumps({"o": origin, "k": keys, "p": prefixes})
    if len(payload) > MAX_PAYLOAD:
        return json.dumps({"o": origin, "all": True}, separators=(",", ":"))
    return payload.decode()


def origin_prefix(origin: str) -> str:
    """How every payload ``origin`` sends begins: a listener skips its own notices by this
    test, without parsing them (under write load most notices it hears are its own)."""
    return '{"o":' + json.dumps(origin) + ","


def parse_rows_changed(payload: str) -> RowsChanged:
    """A :func:`rows_changed` payload; anything unreadable means "everything changed"."""
    try:
        doc = json.loads(payload)
        return RowsChanged(
            str(doc["o"]),
            tuple(str(k) for k in doc.get("k", ())),
            tuple(str(p) for p in doc.get("p", ())),
            bool(doc.get("all", False)),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return RowsChanged("", everything=True)


def note_payload(origin: str, note: str) -> str:
    return orjson.dumps({"o": origin, "n": note}).decode()


def parse_note(payload: str) -> tuple[str, str] | None:
    """``(origin, note)`` of a :func:`note_payload`; ``None`` if it is not one."""
    try:
        doc = json.loads(payload)
        return str(doc["o"]), str(doc["n"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class Watcher:
    """What :meth:`Shared.watch` calls (in the event loop; each must be quick)."""

    rows: Callable[[RowsChanged], None]
    note: Callable[[str], None]
    reset: Callable[[], None]


@runtime_checkable
class Shared(Protocol):
    """A store other processes write too, which tells of their writes."""

    #: This process's id in notices (its own notices are not delivered back to it).
    origin: str

    async def watch(self, watcher: Watcher) -> None:
        """Deliver the other processes' notices to ``watcher`` from now until close.

        Returns once listening (raises :class:`~kvault.errors.Unavailable` if it cannot
        start); a lost connection is re-established in the background, then ``reset``."""
        ...

    async def announce(self, note: str) -> None:
        """Tell the other processes ``note`` (best effort: a failure is logged, not raised)."""
        ...
