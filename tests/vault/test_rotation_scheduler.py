"""The key rotation scheduler against a real kvault (SQLite, software HSM) and a fake clock:
actions happen once their time passes and not before, Notify comes before Rotate, and every
due time derives from stored state, so a restarted scheduler neither repeats nor forgets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from kvault.app.backends import AUDIT_FILE
from kvault.vault.keys.scheduler import Action, NotifyEvent, RotationScheduler
from kvault.vault.service import Kvault
from tests.fixtures.kvault import DAY, START, FakeClock, KvFactory

# The plugin holding the root key does not matter here (standard vault: software keys).
pytestmark = pytest.mark.parametrize("hsm_kind", ["software"])


class Notices:
    def __init__(self) -> None:
        self.events: list[NotifyEvent] = []
        self.arrived = asyncio.Event()

    async def __call__(self, event: NotifyEvent) -> None:
        self.events.append(event)
        self.arrived.set()


def _scheduler(kv: Kvault, clock: FakeClock, notices: Notices) -> RotationScheduler:
    return RotationScheduler(kv, clock=clock, notify=notices)


def _policy(*actions: tuple[str, str, str], expiry: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "lifetimeActions": [
            {"trigger": {trigger: duration}, "action": {"type": kind}}
            for kind, trigger, duration in actions
        ]
    }
    if expiry is not None:
        doc["attributes"] = {"expiryTime": expiry}
    return doc


def _audit(tmp_path: Path) -> list[dict[str, str]]:
    text = (tmp_path / "data" / AUDIT_FILE).read_text()
    return [json.loads(line) for line in text.splitlines()]


def _done(actions: list[Action]) -> list[tuple[str, str]]:
    return [(a.key, a.action) for a in actions]


async def test_time_after_create_rotates_once_the_clock_passes_it(
    kv: Kvault, clock: FakeClock, tmp_path: Path
) -> None:
    first = await kv.keys.create("v1", "signer", "EC", crv="P-256")
    await kv.keys.set_rotation_policy(
        "v1", "signer", _policy(("Rotate", "timeAfterCreate", "P30D"))
    )
    notices = Notices()
    scheduler = _scheduler(kv, clock, notices)

    clock.advance(30 * DAY - 1)
    assert await scheduler.tick() == []  # not before it is due
    clock.advance(1)
    (rotated,) = await scheduler.tick()
    assert (rotated.key, rotated.action, rotated.outcome) == ("signer", "Rotate", "ok")
    assert rotated.version == first.properties.version
    assert rotated.due == START + 30 * DAY

    current = await kv.keys.get("v1", "signer")
    assert current.properties.version == rotated.new_version != first.properties.version
    assert current.properties.created == START + 30 * DAY
    assert current.public["crv"] == "P-256" and current.public["x"] != first.public["x"]
    assert await scheduler.tick() == []  # the new version's clock starts now
    assert notices.events == []

    announced, line = [ln for ln in _audit(tmp_path) if ln["operation"] == "KeyRotate"]
    assert (announced["outcome"], announced["version"]) == ("committing", rotated.new_version)
    assert (line["principal"], line["item"], line["version"], line["outcome"]) == (
        "kvault",
        "signer",
        rotated.new_version,
        "ok",
    )

    clock.advance(30 * DAY)
    assert _done(await scheduler.tick()) == [("signer", "Rotate")]  # and again a period later


async def test_time_before_expiry_rotates_and_the_new_version_gets_the_policy_expiry(
    kv: Kvault, clock: FakeClock
) -> None:
    await kv.keys.create("v1", "wrapper", "RSA", size=2048, expires=START + 60 * DAY)
    await kv.keys.create("v1", "untouched", "EC", crv="P-256")  # no policy: never acted on
    await kv.keys.set_rotation_policy(
        "v1", "wrapper", _policy(("Rotate", "timeBeforeExpiry", "P10D"), expiry="P60D")
    )
    notices = Notices()
    scheduler = _scheduler(kv, clock, notices)

    clock.advance(30 * DAY - 1)
    assert await scheduler.tick() == []
    clock.advance(1)  # Rotate and expiryTime only: the service adds Notify P30D before expiry
    assert _done(await scheduler.tick()) == [("wrapper", "Notify")]
    clock.advance(20 * DAY - 1)
    assert await scheduler.tick() == []
    clock.advance(1)
    assert _done(await scheduler.tick()) == [("wrapper", "Rotate")]
    assert [e.key for e in notices.events] == ["wrapper"]
    new = await kv.keys.get("v1", "wrapper")
    assert new.properties.expires == clock.now + 60 * DAY
    assert new.properties.kty == "RSA" and len(new.public["n"]) > 300
    assert await scheduler.tick() == []


async def test_notify_comes_before_rotate_and_carries_no_key_material(
    kv: Kvault, clock: FakeClock, tmp_path: Path
) -> None:
    key = await kv.keys.create("v1", "k1", "EC", crv="P-256", expires=START + 60 * DAY)
    await kv.keys.set_rotation_policy(
        "v1",
        "k1",
        _policy(
            ("Rotate", "timeBeforeExpiry", "P10D"),
            ("Notify", "timeBeforeExpiry", "P20D"),
            expiry="P60D",
        ),
    )
    notices = Notices()
    scheduler = _scheduler(kv, clock, notices)

    clock.advance(40 * DAY)
    assert _done(await scheduler.tick()) == [("k1", "Notify")]
    (event,) = notices.events
    assert event == NotifyEvent("v1", "k1", key.properties.version, START + 60 * DAY, clock.now)
    assert not any(str(member) in repr(event) for member in key.public.values())
    line = _audit(tmp_path)[-1]
    assert (line["principal"], line["operation"], line["item"], line["version"]) == (
        "kvault",
        "KeyNotify",
        "k1",
        key.properties.version,
    )
    clock.advance(5 * DAY)
    assert await scheduler.tick() == []  # notified once per version

    clock.advance(5 * DAY)
    assert _done(await scheduler.tick()) == [("k1", "Rotate")]
    assert len(notices.events) == 1


async def test_both_due_at_once_notify_first_then_rotate(kv: Kvault, clock: FakeClock) -> None:
    key = await kv.keys.create("v1", "late", "EC", crv="P-256", expires=START + 60 * DAY)
    await kv.keys.set_rotation_policy(
        "v1",
        "late",
        _policy(
            ("Rotate", "timeBeforeExpiry", "P10D"),
            ("Notify", "timeBeforeExpiry", "P20D"),
            expiry="P60D",
        ),
    )
    notices = Notices()
    clock.advance(55 * DAY)  # the scheduler was down past both
    done = await _scheduler(kv, clock, notices).tick()
    assert _done(done) == [("late", "Notify"), ("late", "Rotate")]
    assert notices.events[0].version == key.properties.version == done[1].version


async def test_a_restart_neither_repeats_a_notice_nor_forgets_what_is_due(
    kv: Kvault, kv_factory: KvFactory, clock: FakeClock
) -> None:
    policy = _policy(
        ("Rotate", "timeBeforeExpiry", "P10D"),
        ("Notify", "timeBeforeExpiry", "P20D"),
        expiry="P60D",
    )
    for name in ("notified", "pending"):
        await kv.keys.create("v1", name, "EC", crv="P-256", expires=START + 60 * DAY)
        await kv.keys.set_rotation_policy("v1", name, policy)
    await kv.keys.set_rotation_policy(  # "pending" notifies later: due only after the restart
        "v1",
        "pending",
        _policy(
            ("Rotate", "timeBeforeExpiry", "P10D"),
            ("Notify", "timeBeforeExpiry", "P15D"),
            expiry="P60D",
        ),
    )
    notices = Notices()
    clock.advance(40 * DAY)
    assert _done(await _scheduler(kv, clock, notices).tick()) == [("notified", "Notify")]

    await kv.close()  # the operator restarts (or another replica takes the Lease)
    again = await kv_factory()
    later = Notices()
    scheduler = _scheduler(again, clock, later)
    assert await scheduler.tick() == []
    clock.advance(5 * DAY)
    assert _done(await scheduler.tick()) == [("pending", "Notify")]
    assert [e.key for e in later.events] == ["pending"]
    clock.advance(5 * DAY)
    assert sorted(_done(await scheduler.tick())) == [("notified", "Rotate"), ("pending", "Rotate")]


async def test_deleted_disabled_and_actionless_keys_wait(kv: Kvault, clock: FakeClock) -> None:
    rotate = _policy(("Rotate", "timeAfterCreate", "P7D"))
    for name in ("gone", "off", "empty", "on"):
        await kv.keys.create("v1", name, "EC", crv="P-256")
    for name in ("gone", "off", "on"):
        await kv.keys.set_rotation_policy("v1", name, rotate)
    await kv.keys.set_rotation_policy("v1", "empty", _policy())
    await kv.keys.delete("v1", "gone")
    await kv.keys.update("v1", "off", enabled=False)
    await kv.vaults.create("v2")
    await kv.keys.create("v2", "on", "EC", crv="P-256")
    await kv.keys.set_rotation_policy("v2", "on", rotate)
    clock.advance(8 * DAY)
    done = await _scheduler(kv, clock, Notices()).tick()
    assert sorted((a.vault, a.key) for a in done) == [("v1", "on"), ("v2", "on")]


async def test_run_loops_until_stopped(kv: Kvault, clock: FakeClock) -> None:
    await kv.keys.create("v1", "k1", "EC", crv="P-256", expires=START + 60 * DAY)
    await kv.keys.set_rotation_policy(
        "v1", "k1", _policy(("Notify", "timeBeforeExpiry", "P20D"), expiry="P60D")
    )
    notices = Notices()
    stop = asyncio.Event()
    task = asyncio.create_task(_scheduler(kv, clock, notices).run(stop, interval=0.01))
    clock.advance(40 * DAY)
    await asyncio.wait_for(notices.arrived.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert [e.key for e in notices.events] == ["k1"]


async def test_a_failed_notice_is_audited_and_tried_again_before_rotating(
    kv: Kvault, clock: FakeClock, tmp_path: Path
) -> None:
    await kv.keys.create("v1", "k1", "EC", crv="P-256", expires=START + 60 * DAY)
    await kv.keys.set_rotation_policy(
        "v1",
        "k1",
        _policy(
            ("Rotate", "timeBeforeExpiry", "P10D"),
            ("Notify", "timeBeforeExpiry", "P20D"),
            expiry="P60D",
        ),
    )
    sent: list[NotifyEvent] = []

    async def flaky(event: NotifyEvent) -> None:
        if not sent:
            sent.append(event)
            raise RuntimeError("the API server is away")
        sent.append(event)

    scheduler = RotationScheduler(kv, clock=clock, notify=flaky)
    clock.advance(55 * DAY)
    (failed,) = await scheduler.tick()  # no Rotate while its notice is unsent
    assert (failed.action, failed.outcome) == ("Notify", "RuntimeError")
    line = _audit(tmp_path)[-1]
    assert (line["operation"], line["outcome"]) == ("KeyNotify", "InternalError")
    assert _done(await scheduler.tick()) == [("k1", "Notify"), ("k1", "Rotate")]
    assert len(sent) == 2
