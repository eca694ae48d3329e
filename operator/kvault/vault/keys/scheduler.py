"""The key rotation scheduler: carries out the lifetime actions of key rotation policies.

It runs in the active replica only (the Lease holder). Every pass reads the stored state of
each key that has a policy (the policy row with the version last notified about, and the key's
current version) and asks :func:`~kvault.vault.keys.rotation.due_now` what is due, so nothing
lives only in memory: a restarted or newly elected scheduler resumes where the last one
stopped, and an action whose time passed while no scheduler ran is done on the first pass.

For each due action, Notify first:

- ``Notify``: ``notify`` is called (the operator posts a Kubernetes Event), then the version is
  recorded as notified in the policy row; one audit line ``KeyNotify`` by ``kvault``. A crash
  between the two notifies again after the restart (at least once, never lost).
- ``Rotate``: :meth:`Keys.rotate <kvault.vault.keys.keys.Keys.rotate>` as the trusted
  scheduler caller; the domain writes its ``KeyRotate`` audit line.

A key whose current version is disabled (or a certificate's key) waits: rotating it would make
an enabled version of a key someone switched off. One key's failure is logged and retried on
the next pass; it never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kvault.vault.items.base import SCHEDULER
from kvault.vault.keys.rotation import NOTIFY, ROTATE, due_now
from kvault.vault.keys.schedules import KeySchedule
from kvault.vault.model import VaultInfo
from kvault.vault.schedule import DEFAULT_INTERVAL, each_vault, outcome_of, run_passes
from kvault.vault.service import Kvault

__all__ = ["NOTIFY_OPERATION", "Action", "NotifyEvent", "RotationScheduler"]

log = logging.getLogger(__name__)
#: The audited operation of a Notify action (the scheduler is trusted: no role grants it).
NOTIFY_OPERATION = "KeyNotify"


@dataclass(frozen=True, slots=True)
class NotifyEvent:
    """A key version nears its expiry. Names and times only, never key material."""

    vault: str
    key: str
    version: str
    #: The version's ``exp`` (Unix seconds); ``None`` cannot happen for timeBeforeExpiry
    #: triggers but is kept honest in the type.
    expires: int | None
    #: When the action became due.
    due: int


@dataclass(frozen=True, slots=True)
class Action:
    """One action a pass carried out (or tried to)."""

    vault: str
    key: str
    action: str  # "Notify" | "Rotate"
    version: str  # the version acted on (for Rotate: the one replaced)
    due: int
    #: Rotate: the new version.
    new_version: str = ""
    #: "ok", or the error code / exception name that stopped it.
    outcome: str = "ok"


class RotationScheduler:
    def __init__(
        self,
        kv: Kvault,
        *,
        notify: Callable[[NotifyEvent], Awaitable[None]],
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._kv = kv
        self._notify = notify
        self._clock = clock if clock is not None else kv.core.clock

    async def tick(self) -> list[Action]:
        """One pass over every active vault; the actions done (or tried), in order."""
        done: list[Action] = []
        async for vault, schedules in each_vault(self._kv, self._kv.keys.policies, "key policies"):
            for key in schedules:
                if key.active:
                    done += await self._key(vault, key)
        return done

    async def _key(self, vault: VaultInfo, key: KeySchedule) -> list[Action]:
        now = int(self._clock())
        done: list[Action] = []
        for due in due_now(key.policy, key.times, now, notified_version=key.notified):
            action = Action(vault.name, key.name, due.action, key.times.version, due.at)
            try:
                if due.action == NOTIFY:
                    await self._do_notify(vault, key, due.at)
                elif due.action == ROTATE:
                    new = await self._kv.keys.rotate(vault.name, key.name, caller=SCHEDULER)
                    action = Action(
                        vault.name,
                        key.name,
                        ROTATE,
                        key.times.version,
                        due.at,
                        new.properties.version,
                    )
            except Exception as exc:  # audited by the domain; the next pass tries again
                outcome = outcome_of(exc)
                log.warning(
                    "key %s of vault %s: %s failed: %s", key.name, vault.name, due.action, outcome
                )
                done.append(
                    Action(vault.name, key.name, due.action, action.version, due.at, "", outcome)
                )
                break  # Rotate after a failed Notify would leave the notice unsent
            log.info(
                "key %s of vault %s: %s done (version %s)",
                key.name,
                vault.name,
                due.action,
                action.new_version or action.version,
            )
            done.append(action)
        return done

    async def _do_notify(self, vault: VaultInfo, key: KeySchedule, due: int) -> None:
        core = self._kv.core
        version = key.times.version
        with core.audited(SCHEDULER, vault.name, NOTIFY_OPERATION, key.name) as outcome:
            outcome.version = version
            await self._notify(NotifyEvent(vault.name, key.name, version, key.times.expires, due))
            await self._kv.keys.mark_notified(vault, key.lname, version)

    async def run(self, stop: asyncio.Event, interval: float = DEFAULT_INTERVAL) -> None:
        """Pass after pass, ``interval`` seconds apart, until ``stop`` is set (a pass under way
        finishes first)."""
        await run_passes(self.tick, stop, interval, "key rotation")
