"""Running kopf in a loop it does not own: its shutdown cancels only the tasks it spawned.

When kopf stops (here: the replica lost the Lease), ``kopf.run_tasks`` cancels every task
of the loop that did not exist when it started ("the loop is not fully ours", says its
source). In kvault the loop also serves the data plane, so a leader stepping down would
cancel the requests in flight and the handlers of its keep-alive connections, and those
clients would hang until their own timeout. Here a task factory marks the tasks created in
kopf's context (the root tasks and, by context inheritance, everything they spawn), and kopf
is told to leave every other task alone.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterator
from typing import Any

import kopf

_IN_KOPF: contextvars.ContextVar[bool] = contextvars.ContextVar("kvault_in_kopf", default=False)
_SPAWNED: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()


def _factory(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    context: contextvars.Context | None = None,
) -> asyncio.Task[Any]:
    task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, context=context)
    if context.get(_IN_KOPF, False) if context is not None else _IN_KOPF.get():
        _SPAWNED.add(task)
    return task


def install(loop: asyncio.AbstractEventLoop) -> None:
    """Mark kopf's tasks in ``loop`` from now on (before :func:`run` is called)."""
    loop.set_task_factory(_factory)  # type: ignore[arg-type]


class _NotKopfs:
    """The "ignored" collection handed to kopf: every task it did not spawn (live)."""

    def __contains__(self, task: object) -> bool:
        return task not in _SPAWNED

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return (t for t in asyncio.all_tasks() if t not in _SPAWNED)

    def __len__(self) -> int:
        return sum(1 for _ in self)


async def run(**options: Any) -> None:
    """``kopf.operator(**options)``, except that stopping cancels kopf's own tasks only.

    The loop must have had :func:`install` called on it."""
    await scoped(lambda: kopf.spawn_tasks(**options))


async def scoped(spawn: Callable[[], Awaitable[Collection[asyncio.Task[Any]]]]) -> None:
    """``kopf.run_tasks`` over the root tasks ``spawn`` makes, in a scope of their own."""
    if asyncio.get_running_loop().get_task_factory() is not _factory:
        raise RuntimeError("kopf_scope.install() was not called on this loop")
    token = _IN_KOPF.set(True)
    try:
        tasks = await spawn()
    finally:
        _IN_KOPF.reset(token)
    await kopf.run_tasks(tasks, ignored=_NotKopfs())
