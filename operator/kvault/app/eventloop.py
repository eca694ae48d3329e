"""The event loop of kvault's long-running processes (``kvault server``, ``kvault operator``).

uvloop (libuv) when it is installed: it schedules callbacks, timers and socket I/O in C, which
is most of what a keep-alive request costs besides kvault's own work (measured in
docs/performance.md). Without it, or with ``KVAULT_EVENT_LOOP=asyncio``, the standard loop:
nothing in kvault depends on which one runs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
#: ``asyncio``: the standard loop even where uvloop is installed (comparisons, debugging).
ENV = "KVAULT_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or ``None`` for the standard loop."""
    if os.environ.get(ENV, "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` chooses."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
