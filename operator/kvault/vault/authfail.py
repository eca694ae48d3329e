"""Audit lines for requests whose credential was refused, bounded so a flood cannot fill the disk.

A refusal happens before any operation (the request names no principal kvault knows), so it is
recorded here rather than by :meth:`kvault.vault.core.Core.audited`. The rule, per key
(client address, vault the request's host names, reason):

- the first refusal is written at once: a line with ``count`` 1 and the request id;
- further refusals within the next ``window`` seconds are only counted; when the window
  closes, one line with their ``count`` is written and the next window opens at once;
- a window that closes with nothing counted ends the key: its next refusal is a "first" again;
- at most ``max_keys`` keys are tracked at a time; refusals for further keys are counted under
  the overflow key (source ``*``, vault ``""``, same reason), which follows the same rule.

So every refusal is counted in exactly one line (the sum of ``count`` over the
``Authenticate`` lines is the number of refused requests), and the log grows by at most
``max_keys`` plus one line per reason in each window, however fast the requests come. The
lines carry no token and no header value: the reason is one of
:data:`kvault.errors.AUTH_REASONS`, the source an IP address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kvault.audit.event import AuditEvent, Auditor

#: The operation of an authentication-failure line.
OPERATION = "Authenticate"
#: Seconds refusals of one key are counted before their line is written.
DEFAULT_WINDOW = 60.0
#: Keys tracked at a time before refusals fold into the overflow key.
DEFAULT_MAX_KEYS = 256
OVERFLOW = "*"

Key = tuple[str, str, str]  # (source, vault, reason)


class Timer(Protocol):
    def cancel(self) -> None: ...


#: ``schedule(delay, fn)``: call ``fn`` after ``delay`` seconds; ``None`` if it cannot.
Schedule = Callable[[float, Callable[[], None]], Timer | None]


def call_later(delay: float, fn: Callable[[], None]) -> Timer | None:
    """On the running event loop; without one (a tool calling in), nothing: the window's
    count waits for :meth:`AuthFailures.close`."""
    try:
        return asyncio.get_running_loop().call_later(delay, fn)
    except RuntimeError:
        return None


@dataclass(slots=True)
class _Window:
    count: int = 0
    timer: Timer | None = None


class AuthFailures:
    """Records refused authentications on ``auditor`` under the rule of this module."""

    def __init__(
        self,
        auditor: Callable[[], Auditor],
        *,
        window: float = DEFAULT_WINDOW,
        max_keys: int = DEFAULT_MAX_KEYS,
        schedule: Schedule = call_later,
    ) -> None:
        self._auditor = auditor  # looked up per line: the core's auditor may be replaced
        self.window = window
        self.max_keys = max_keys
        self.schedule = schedule
        self._open: dict[Key, _Window] = {}

    def __len__(self) -> int:
        """Keys whose window is open."""
        return len(self._open)

    def refused(self, source: str, vault: str, reason: str, request_id: str = "") -> None:
        """Count one refused request (call from the event loop that serves requests)."""
        key = (source, vault, reason)
        if key not in self._open and len(self._open) >= self.max_keys:
            key, request_id = (OVERFLOW, "", reason), ""
        window = self._open.get(key)
        if window is not None:
            window.count += 1
            return
        self._write(key, 1, request_id)
        self._open[key] = window = _Window()
        self._arm(key, window)

    def close(self) -> None:
        """Write what open windows have counted and stop their timers (at shutdown)."""
        open_, self._open = self._open, {}
        for key, window in open_.items():
            if window.timer is not None:
                window.timer.cancel()
            if window.count:
                self._write(key, window.count)

    def _arm(self, key: Key, window: _Window) -> None:
        window.timer = self.schedule(self.window, lambda: self._expire(key))

    def _expire(self, key: Key) -> None:
        window = self._open.get(key)
        if window is None:
            return
        if not window.count:
            del self._open[key]
            return
        count, window.count = window.count, 0
        self._write(key, count)
        self._arm(key, window)

    def _write(self, key: Key, count: int, request_id: str = "") -> None:
        source, vault, reason = key
        self._auditor().record(
            AuditEvent(
                principal="",
                vault=vault,
                operation=OPERATION,
                outcome=reason,
                request_id=request_id,
                source=source,
                count=count,
            )
        )
