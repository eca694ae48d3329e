"""Measure operations per second by running for a fixed time (best of a few rounds)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

ROUNDS = 3


def ops_per_second(op: Callable[[], object], seconds: float) -> float:
    best = 0.0
    for _ in range(ROUNDS):
        n, start = 0, time.perf_counter()
        deadline = start + seconds / ROUNDS
        while True:
            for _ in range(200):
                op()
            n += 200
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


async def aops_per_second(op: Callable[[], Awaitable[object]], seconds: float) -> float:
    best = 0.0
    for _ in range(ROUNDS):
        n, start = 0, time.perf_counter()
        deadline = start + seconds / ROUNDS
        while True:
            for _ in range(100):
                await op()
            n += 100
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best
