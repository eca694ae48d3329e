"""The schedulers' shared loop (key rotation, certificate renewal, expiry)."""

from __future__ import annotations

import asyncio

from kvault.vault.schedule import MIN_WAIT, run_passes


async def test_passes_wait_no_longer_than_the_next_due_action() -> None:
    ticks: list[float] = []
    second = asyncio.Event()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def tick() -> None:
        ticks.append(loop.time())
        if len(ticks) == 2:
            second.set()

    task = asyncio.create_task(run_passes(tick, stop, 3600.0, "test", wait=lambda: 0.0))
    await asyncio.wait_for(second.wait(), 10)  # not the hour of the interval
    stop.set()
    await task
    assert ticks[1] - ticks[0] >= MIN_WAIT
