"""The bounded audit of refused authentications: every refusal counted in exactly one line, a
first refusal written at once, a flood folded into one line per window, a key cap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from kvault.audit.event import AuditEvent
from kvault.vault.authfail import OPERATION, OVERFLOW, AuthFailures, Timer


class Lines:
    """An auditor that keeps its events and says when a new one arrives."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.arrived = asyncio.Event()

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)
        self.arrived.set()

    async def settle(self) -> None:
        return None

    async def next(self) -> AuditEvent:
        seen = len(self.events)
        async with asyncio.timeout(10):
            while len(self.events) == seen:
                self.arrived.clear()
                await self.arrived.wait()
        return self.events[seen]


class Timers:
    """Windows that close when the test says so."""

    class Handle:
        def __init__(self, fn: Callable[[], None]) -> None:
            self.fn: Callable[[], None] | None = fn

        def cancel(self) -> None:
            self.fn = None

    def __init__(self) -> None:
        self.pending: list[Timers.Handle] = []

    def __call__(self, delay: float, fn: Callable[[], None]) -> Timer:
        handle = Timers.Handle(fn)
        self.pending.append(handle)
        return handle

    def close_windows(self) -> None:
        due, self.pending = self.pending, []
        for handle in due:
            if handle.fn is not None:
                handle.fn()


def _failures(lines: Lines, timers: Timers | None = None, max_keys: int = 256) -> AuthFailures:
    if timers is None:
        return AuthFailures(lambda: lines, window=0.05, max_keys=max_keys)
    return AuthFailures(lambda: lines, max_keys=max_keys, schedule=timers)


def _rows(events: list[AuditEvent]) -> list[tuple[str, str, str, int, str]]:
    return [(e.source, e.vault, e.outcome, e.count, e.request_id) for e in events]


def test_first_refusal_at_once_then_one_line_per_window() -> None:
    lines, timers = Lines(), Timers()
    failures = _failures(lines, timers)
    failures.refused("10.0.0.7", "v1.team", "InvalidToken", "req-1")
    assert _rows(lines.events) == [("10.0.0.7", "v1.team", "InvalidToken", 1, "req-1")]
    assert lines.events[0].operation == OPERATION and lines.events[0].principal == ""
    for i in range(499):
        failures.refused("10.0.0.7", "v1.team", "InvalidToken", f"req-{i + 2}")
    assert len(lines.events) == 1  # the flood is only counted while the window is open

    timers.close_windows()  # one line for the window, and the next window opens at once
    assert _rows(lines.events[1:]) == [("10.0.0.7", "v1.team", "InvalidToken", 499, "")]
    failures.refused("10.0.0.7", "v1.team", "InvalidToken", "req-501")
    timers.close_windows()
    assert [e.count for e in lines.events] == [1, 499, 1]

    timers.close_windows()  # a window that closes empty ends the key ...
    assert len(failures) == 0 and len(lines.events) == 3
    failures.refused("10.0.0.7", "v1.team", "InvalidToken", "req-later")
    assert _rows(lines.events[3:]) == [("10.0.0.7", "v1.team", "InvalidToken", 1, "req-later")]


def test_keys_are_per_source_vault_and_reason() -> None:
    lines, timers = Lines(), Timers()
    failures = _failures(lines, timers)
    keys = [
        ("10.0.0.1", "a.ns", "InvalidToken"),
        ("10.0.0.2", "a.ns", "InvalidToken"),
        ("10.0.0.1", "b.ns", "InvalidToken"),
        ("10.0.0.1", "a.ns", "ExpiredToken"),
    ]
    for key in keys:
        failures.refused(*key)
        failures.refused(*key)
    assert [(e.source, e.vault, e.outcome) for e in lines.events] == keys
    failures.close()  # shutdown writes what each open window counted, and stops its timer
    assert [e.count for e in lines.events] == [1, 1, 1, 1, 1, 1, 1, 1]
    timers.close_windows()
    assert len(lines.events) == 8


def test_many_sources_fold_into_the_overflow_key() -> None:
    lines, timers = Lines(), Timers()
    failures = _failures(lines, timers, max_keys=3)
    for n in range(1000):  # a spread-out flood: a thousand addresses
        failures.refused(f"10.0.{n // 256}.{n % 256}", "", "MissingToken", f"r{n}")
    timers.close_windows()
    assert len(lines.events) == 3 + 2  # bounded by the cap, not by the flood
    assert sum(e.count for e in lines.events) == 1000
    overflow = [e for e in lines.events if e.source == OVERFLOW]
    assert _rows(overflow) == [("*", "", "MissingToken", 1, ""), ("*", "", "MissingToken", 996, "")]


async def test_windows_close_on_the_event_loop() -> None:
    lines = Lines()
    failures = _failures(lines)  # real timers, a 50 ms window
    for _ in range(10):
        failures.refused("10.0.0.9", "", "BadSignature")
    folded = await lines.next()
    assert _rows([folded]) == [("10.0.0.9", "", "BadSignature", 9, "")]
    failures.close()


def test_without_an_event_loop_counts_until_close() -> None:
    lines = Lines()
    failures = _failures(lines)
    for _ in range(3):
        failures.refused("10.0.0.1", "", "BadSignature")
    failures.close()
    assert [e.count for e in lines.events] == [1, 2]
