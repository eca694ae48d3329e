"""kopf stepping down cancels what kopf spawned, never the data plane's tasks beside it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kvault.app import kopf_scope


async def _sleep_forever() -> None:
    await asyncio.Event().wait()


def test_stopping_kopf_cancels_its_own_tasks_and_leaves_the_others() -> None:
    async def main() -> tuple[bool, bool, bool]:
        kopf_scope.install(asyncio.get_running_loop())
        stop = asyncio.Event()
        children: list[asyncio.Task[None]] = []
        bystanders: list[asyncio.Task[None]] = []

        async def root() -> None:  # a kopf root task: spawns a handler, ends on the stop flag
            children.append(asyncio.create_task(_sleep_forever()))
            await stop.wait()

        async def spawn() -> list[asyncio.Task[Any]]:
            return [asyncio.create_task(root())]

        async def serve() -> None:  # the data plane: a connection arrives while kopf runs
            await asyncio.sleep(0)
            bystanders.append(asyncio.create_task(_sleep_forever()))
            stop.set()

        server = asyncio.create_task(serve())
        await kopf_scope.scoped(spawn)
        await server
        kept = not bystanders[0].done()
        bystanders[0].cancel()
        return children[0].cancelled(), kept, bool(bystanders)

    child_cancelled, bystander_kept, seen = asyncio.run(main())
    assert seen
    assert child_cancelled
    assert bystander_kept


def test_running_without_the_factory_is_refused() -> None:
    async def main() -> None:
        async def spawn() -> list[asyncio.Task[Any]]:
            return []

        await kopf_scope.scoped(spawn)

    with pytest.raises(RuntimeError, match="install"):
        asyncio.run(main())
