"""Debugging hooks of a process, armed by environment variables (kept import-light, so
they can start before the heavy imports they are meant to see)."""

from __future__ import annotations

import os


def trace_memory() -> None:
    """``KVAULT_TRACEMALLOC=PREFIX`` (debugging only): trace allocations from here on;
    each SIGUSR2 writes a snapshot to ``PREFIX.N`` (compare them with ``tracemalloc``)."""
    prefix = os.environ.get("KVAULT_TRACEMALLOC")
    if not prefix:
        return
    import signal
    import tracemalloc

    tracemalloc.start(int(os.environ.get("KVAULT_TRACEMALLOC_FRAMES", "1")))
    taken = [0]

    def dump(*_: object) -> None:
        taken[0] += 1
        tracemalloc.take_snapshot().dump(f"{prefix}.{taken[0]}")

    signal.signal(signal.SIGUSR2, dump)


def dump_tasks() -> None:
    """``KVAULT_TASKDUMP=1`` (debugging only): each SIGUSR1 logs every asyncio task's stack,
    to see what a stuck request awaits."""
    if not os.environ.get("KVAULT_TASKDUMP"):
        return
    import asyncio
    import io
    import signal
    import sys

    def dump(*_: object) -> None:
        try:
            tasks = asyncio.all_tasks(asyncio.get_event_loop())
        except RuntimeError:
            return
        out = io.StringIO()
        for task in tasks:
            task.print_stack(file=out)
        sys.stderr.write(f"--- {len(tasks)} tasks ---\n{out.getvalue()}--- end ---\n")

    signal.signal(signal.SIGUSR1, dump)
