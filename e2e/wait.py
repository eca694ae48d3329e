"""Poll-with-deadline helpers: the only way tests and the CLI wait for anything."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not hold before its deadline (an AssertionError so pytest shows it)."""


class Abort(Exception):
    """Raised by a condition to stop waiting at once (e.g. the awaited daemon died)."""


def wait_for(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.25,
) -> T:
    """Call ``condition`` until it returns a truthy value; return it, or raise on deadline.

    Exceptions raised by ``condition`` count as "not yet" (the last one is reported), so
    probes can simply let connection errors propagate; ``Abort`` ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = condition()
            if result:
                return result
        except Abort:
            raise
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last!r})" if last else ""
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)
