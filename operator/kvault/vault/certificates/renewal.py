"""The certificate renewal scheduler: carries out the lifetime actions of certificate policies.

It runs in the active replica only (the Lease holder), beside the key rotation scheduler and
in the same loop shape (:mod:`kvault.vault.schedule`). Every pass reads the stored state of
each certificate (its policy row, its current version's ``nbf``/``exp``, and the ``cs`` row of
actions done for that version) and asks :func:`~kvault.vault.certificates.policy.due_actions`
what is due, so nothing lives only in memory: a restarted or newly elected scheduler resumes
where the last one stopped, and an action whose time passed while no scheduler ran is done on
the first pass.

For each due action, EmailContacts first:

- ``EmailContacts``: ``notify`` is called with a :data:`NEAR_EXPIRY` notice (the operator
  posts a ``CertificateNearExpiry`` Event and counts it; kvault sends no e-mail), then the
  action is recorded as done for the version; one audit line ``CertificateNotify`` by
  ``kvault``. A crash between the two notifies again after the restart (at least once, never
  lost).
- ``AutoRenew``: :meth:`Certificates.renew
  <kvault.vault.certificates.certificates.Certificates.renew>` as the trusted scheduler
  caller (a new version under the stored policy, with its key and secret); the domain writes
  the ``CertificateRenew`` audit line. Then ``notify`` hears :data:`RENEWED` or
  :data:`RENEWAL_FAILED` (best effort: the renewal stands, or is tried again next pass,
  whatever becomes of the notice).

``AutoRenew`` waits while the current version is disabled (renewing would make an enabled
version of a certificate someone switched off) and never runs for an ``Unknown`` issuer (only
a CSR and a merge can renew it); ``EmailContacts`` still happens for both. One certificate's
failure is logged and retried on the next pass; it never stops the others. After each pass
``observe`` gets every certificate's expiry and next renewal time (the operator's gauges).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kvault.vault.certificates.policy import CertificatePolicy, due_times
from kvault.vault.certificates.policy_model import AUTO_RENEW, EMAIL_CONTACTS
from kvault.vault.certificates.schedules import CertificateSchedule, renewal_at
from kvault.vault.items.base import SCHEDULER
from kvault.vault.model import Certificate, VaultInfo
from kvault.vault.schedule import DEFAULT_INTERVAL, each_vault, outcome_of, run_passes
from kvault.vault.service import Kvault

__all__ = [
    "NEAR_EXPIRY",
    "NOTIFY_OPERATION",
    "RENEWAL_FAILED",
    "RENEWED",
    "Action",
    "CertificateNotice",
    "CertificateTimes",
    "RenewalScheduler",
]

log = logging.getLogger(__name__)
#: The audited operation of an EmailContacts action (the scheduler is trusted: no role
#: grants it).
NOTIFY_OPERATION = "CertificateNotify"
#: What a :class:`CertificateNotice` reports.
NEAR_EXPIRY = "NearExpiry"
RENEWED = "Renewed"
RENEWAL_FAILED = "RenewalFailed"


@dataclass(frozen=True, slots=True)
class CertificateNotice:
    """Something the operator reports about a certificate: names, versions and times only,
    never key material."""

    reason: str  # NEAR_EXPIRY | RENEWED | RENEWAL_FAILED
    vault: str
    certificate: str
    #: The version acted on (for a renewal: the one replaced), and its ``exp``.
    version: str
    expires: int
    #: When the action became due.
    due: int
    #: RENEWED: the new version and its ``exp``.
    new_version: str = ""
    new_expires: int | None = None
    #: RENEWAL_FAILED: the error code (or exception name) that stopped it.
    outcome: str = "ok"


@dataclass(frozen=True, slots=True)
class CertificateTimes:
    """A certificate's current version after a pass: when it expires and when the scheduler
    renews it (``None``: never, e.g. no AutoRenew action, disabled, or issuer Unknown)."""

    vault: str
    certificate: str
    version: str
    expires: int
    renews_at: int | None


@dataclass(frozen=True, slots=True)
class Action:
    """One action a pass carried out (or tried to)."""

    vault: str
    certificate: str
    action: str  # "EmailContacts" | "AutoRenew"
    version: str  # the version acted on (for AutoRenew: the one replaced)
    due: int
    #: AutoRenew: the new version.
    new_version: str = ""
    #: "ok", or the error code / exception name that stopped it.
    outcome: str = "ok"


def _due_at(policy: CertificatePolicy, action: str, not_before: int, not_after: int) -> int:
    return min(a.due_at(not_before, not_after) for a in policy.actions if a.action == action)


class RenewalScheduler:
    def __init__(
        self,
        kv: Kvault,
        *,
        notify: Callable[[CertificateNotice], Awaitable[None]],
        observe: Callable[[list[CertificateTimes]], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._kv = kv
        self._notify = notify
        self._observe = observe
        self._clock = clock if clock is not None else kv.core.clock
        #: When the earliest action not yet done falls due, as of the last pass.
        self._next_due: int | None = None

    async def tick(self) -> list[Action]:
        """One pass over every active vault; the actions done (or tried), in order."""
        done: list[Action] = []
        times: list[CertificateTimes] = []
        upcoming: list[int] = []
        certificates = self._kv.certificates
        async for vault, schedules in each_vault(
            self._kv, certificates.schedules, "certificate policies"
        ):
            for cert in schedules:
                acted, renewed = await self._certificate(vault, cert)
                done += acted
                times.append(_times(vault, cert, renewed))
                upcoming += _upcoming(cert, renewed, int(self._clock()))
        self._next_due = min(upcoming, default=None)
        if self._observe is not None:
            self._observe(times)
        return done

    def next_wait(self) -> float | None:
        """Seconds until the earliest action the last pass saw coming (``None``: none)."""
        if self._next_due is None:
            return None
        return self._next_due - self._clock()

    async def _certificate(
        self, vault: VaultInfo, cert: CertificateSchedule
    ) -> tuple[list[Action], Certificate | None]:
        now = int(self._clock())
        done: list[Action] = []
        renewed: Certificate | None = None
        for action in cert.due(now):
            due = _due_at(cert.policy, action, cert.not_before, cert.expires)
            try:
                if action == EMAIL_CONTACTS:
                    await self._do_notify(vault, cert, due)
                elif action == AUTO_RENEW:
                    renewed = await self._kv.certificates.renew(
                        vault.name, cert.name, caller=SCHEDULER
                    )
            except Exception as exc:  # audited by the domain; the next pass tries again
                outcome = outcome_of(exc)
                log.warning(
                    "certificate %s of vault %s: %s failed: %s",
                    cert.name,
                    vault.name,
                    action,
                    outcome,
                )
                done.append(Action(vault.name, cert.name, action, cert.version, due, "", outcome))
                if action == AUTO_RENEW:
                    await self._tell(_notice(RENEWAL_FAILED, vault, cert, due, outcome=outcome))
                break  # AutoRenew after a failed notice would leave the notice unsent
            new_version = "" if renewed is None else renewed.properties.version
            log.info(
                "certificate %s of vault %s: %s done (version %s)",
                cert.name,
                vault.name,
                action,
                new_version or cert.version,
            )
            done.append(Action(vault.name, cert.name, action, cert.version, due, new_version))
            if renewed is not None:
                notice = _notice(
                    RENEWED,
                    vault,
                    cert,
                    due,
                    new_version=new_version,
                    new_expires=renewed.properties.expires,
                )
                await self._tell(notice)
        return done, renewed

    async def _do_notify(self, vault: VaultInfo, cert: CertificateSchedule, due: int) -> None:
        core = self._kv.core
        with core.audited(SCHEDULER, vault.name, NOTIFY_OPERATION, cert.name) as outcome:
            outcome.version = cert.version
            await self._notify(_notice(NEAR_EXPIRY, vault, cert, due))
            await self._kv.certificates.mark_done(vault, cert.lname, cert.version, EMAIL_CONTACTS)

    async def _tell(self, notice: CertificateNotice) -> None:
        """A notice about what already happened: a failure to deliver it is only logged."""
        try:
            await self._notify(notice)
        except Exception as exc:
            log.warning(
                "certificate %s of vault %s: %s notice not delivered: %s",
                notice.certificate,
                notice.vault,
                notice.reason,
                outcome_of(exc),
            )

    async def run(self, stop: asyncio.Event, interval: float = DEFAULT_INTERVAL) -> None:
        """Pass after pass, ``interval`` seconds apart, until ``stop`` is set (a pass under
        way finishes first)."""
        await run_passes(self.tick, stop, interval, "certificate renewal", wait=self.next_wait)


def _upcoming(cert: CertificateSchedule, renewed: Certificate | None, now: int) -> list[int]:
    """When the actions ahead of ``cert``'s current version fall due. A certificate this pass
    renewed is due for another look at once: the next pass learns its new version's times."""
    if renewed is not None:
        return [now]
    times = due_times(cert.policy, cert.not_before, cert.expires)
    return [
        at for action, at in times.items() if at > now and (action != AUTO_RENEW or cert.renewable)
    ]


def _notice(
    reason: str,
    vault: VaultInfo,
    cert: CertificateSchedule,
    due: int,
    *,
    new_version: str = "",
    new_expires: int | None = None,
    outcome: str = "ok",
) -> CertificateNotice:
    return CertificateNotice(
        reason,
        vault.name,
        cert.name,
        cert.version,
        cert.expires,
        due,
        new_version,
        new_expires,
        outcome,
    )


def _times(
    vault: VaultInfo, cert: CertificateSchedule, renewed: Certificate | None
) -> CertificateTimes:
    if renewed is None:
        return CertificateTimes(vault.name, cert.name, cert.version, cert.expires, cert.renews_at)
    props = renewed.properties
    nbf, exp = props.not_before, props.expires
    assert nbf is not None and exp is not None  # a version kvault issued has both
    return CertificateTimes(
        vault.name, cert.name, props.version, exp, renewal_at(cert.policy, nbf, exp)
    )
