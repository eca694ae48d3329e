"""Certificate notices: what the renewal scheduler reports, and the versions issued through
the data plane, become Events on the ``Vault`` object whose vault holds the certificate (and
the scheduler's, metrics).

- ``EmailContacts`` due: a ``CertificateNearExpiry`` Warning, and one more on
  ``kvault_certificate_notifications_total{vault}``. kvault sends no e-mail: the Event is the
  notice (watch it, or alert on the metric).
- A renewal: ``CertificateRenewed`` (Normal), ``kvault_certificate_renewals_total{vault,
  outcome="ok"}``.
- A failed renewal: ``CertificateRenewalFailed`` (Warning) once per version and error while
  it keeps failing (the scheduler retries every pass; the metric counts every attempt, by
  error code).
- After every pass: ``kvault_certificate_expiration_timestamp_seconds`` and
  ``kvault_certificate_renewal_timestamp_seconds`` per ``{vault, certificate}``; a
  certificate that is gone (or never renews) loses its series.
- A version issued outside renewal (:class:`IssuedNotices`, from the change feed): a create
  that completed at once (``Self``, a ``kvault-ca`` issuer), the merge that completes a
  pending create, an import: ``CertificateIssued`` (Normal), once per version. An ``Unknown``
  issuer's create only starts (its merge is the issuance); a renewal has its own notice. No
  metric counts it (none of the certificate metrics is about issuance).

The Vault's body is found as for key notices (:func:`~.notices.vault_body`); a vault no
Vault object stands for gets the metrics and a log line only. Messages name the certificate,
its versions and times: never key material.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from kvault.controller import metrics
from kvault.controller.vault.notices import vault_body
from kvault.errors import KvaultError
from kvault.kube.client import KubeClient
from kvault.kube.events import EventPoster
from kvault.vault.certificates.renewal import (
    NEAR_EXPIRY,
    RENEWAL_FAILED,
    RENEWED,
    CertificateNotice,
    CertificateTimes,
)
from kvault.vault.changes import Change
from kvault.vault.model import CertificateProperties
from kvault.vault.service import Kvault

log = logging.getLogger(__name__)
#: Event reason and type per notice.
REASONS = {
    NEAR_EXPIRY: ("CertificateNearExpiry", "Warning"),
    RENEWED: ("CertificateRenewed", "Normal"),
    RENEWAL_FAILED: ("CertificateRenewalFailed", "Warning"),
}


def _when(t: int | None) -> str:
    return "never" if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def message(notice: CertificateNotice) -> str:
    who = f"certificate {notice.certificate} of vault {notice.vault}"
    if notice.reason == NEAR_EXPIRY:
        return (
            f"{who} (version {notice.version}) expires at {_when(notice.expires)}; its policy "
            "asks for this notice to the certificate contacts (EmailContacts)"
        )
    if notice.reason == RENEWED:
        return (
            f"{who} renewed: version {notice.new_version} (expires "
            f"{_when(notice.new_expires)}) replaces version {notice.version} (expires "
            f"{_when(notice.expires)})"
        )
    return (
        f"{who} (version {notice.version}, expires {_when(notice.expires)}): the renewal due "
        f"at {_when(notice.due)} failed: {notice.outcome}; it is tried again every pass"
    )


class CertificateNotices:
    """The ``notify`` and ``observe`` of
    :class:`~kvault.vault.certificates.renewal.RenewalScheduler` in the operator. ``bodies``
    is the Vault controller's cache (domain vault name -> Vault body)."""

    def __init__(
        self, kube: KubeClient, events: EventPoster, bodies: Mapping[str, Mapping[str, Any]]
    ) -> None:
        self._kube = kube
        self._events = events
        self._bodies = bodies
        #: (vault, certificate) -> (version, outcome) of the failure last posted.
        self._failing: dict[tuple[str, str], tuple[str, str]] = {}
        #: The {vault, certificate} series the gauges hold.
        self._series: set[tuple[str, str]] = set()
        self._renewing: set[tuple[str, str]] = set()

    async def __call__(self, notice: CertificateNotice) -> None:
        where = (notice.vault, notice.certificate)
        if notice.reason == NEAR_EXPIRY:
            metrics.CERTIFICATE_NOTIFICATIONS.labels(notice.vault).inc()
        elif notice.reason == RENEWED:
            metrics.CERTIFICATE_RENEWALS.labels(notice.vault, "ok").inc()
            self._failing.pop(where, None)
        else:
            metrics.CERTIFICATE_RENEWALS.labels(notice.vault, notice.outcome).inc()
            if self._failing.get(where) == (notice.version, notice.outcome):
                return  # posted already; the metric counts the retries
            self._failing[where] = (notice.version, notice.outcome)
        reason, kind = REASONS[notice.reason]
        text = message(notice)
        body = await vault_body(self._kube, self._bodies, notice.vault, reason)
        if body is None:
            log.info("%s (no Vault object for this vault: no Event)", text)
            return
        log.info("%s", text)
        self._events.post(body, kind, reason, text)

    def observe(self, times: list[CertificateTimes]) -> None:
        """Set the gauges from a pass; series of certificates not seen any more go away."""
        seen: set[tuple[str, str]] = set()
        renewing: set[tuple[str, str]] = set()
        for t in times:
            labels = (t.vault, t.certificate)
            seen.add(labels)
            metrics.CERTIFICATE_EXPIRATION.labels(*labels).set(t.expires)
            if t.renews_at is not None:
                renewing.add(labels)
                metrics.CERTIFICATE_RENEWAL.labels(*labels).set(t.renews_at)
        for labels in self._series - seen:
            metrics.CERTIFICATE_EXPIRATION.remove(*labels)
        for labels in self._renewing - renewing:
            metrics.CERTIFICATE_RENEWAL.remove(*labels)
        for labels in set(self._failing) - seen:
            self._failing.pop(labels, None)
        self._series, self._renewing = seen, renewing


#: The data-plane operations that can issue a version outside renewal, and how the Event says
#: it was made.
ISSUING = {
    "CertificateCreate": "created",
    "CertificateMerge": "merged",
    "CertificateImport": "imported",
}
ISSUED = "CertificateIssued"


def issued_message(vault: str, props: CertificateProperties, how: str) -> str:
    return (
        f"certificate {props.name} of vault {vault}: version {props.version} issued ({how}), "
        f"valid until {_when(props.expires)}"
    )


class IssuedNotices:
    """``CertificateIssued`` Events for the versions the data plane issues, on the replica
    that sees the change (the operator's, subscribed to the domain's change feed like the
    projections). The change names the certificate and version; the domain says whether that
    version exists yet (:meth:`~kvault.vault.certificates.certificates.Certificates.issued`):
    an ``Unknown`` issuer's create has none until its merge. Each version is posted once,
    however many changes name it."""

    #: Versions remembered as posted (the oldest are forgotten first).
    REMEMBERED = 4096

    def __init__(
        self,
        kv: Kvault,
        kube: KubeClient,
        events: EventPoster,
        bodies: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self._kv = kv
        self._kube = kube
        self._events = events
        self._bodies = bodies
        self._posted: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def on_change(self, change: Change) -> None:
        """Called synchronously by the feed after a write: only schedules the work."""
        if change.operation not in ISSUING or not change.item or not change.version:
            return
        task = asyncio.get_running_loop().create_task(self.notice(change))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def notice(self, change: Change) -> None:
        """Post the Event for ``change`` if it issued a version not posted yet."""
        key = (change.vault, change.item.lower(), change.version)
        if key in self._posted:
            return
        try:
            props = await self._kv.certificates.issued(change.vault, change.item, change.version)
        except KvaultError as exc:  # gone meanwhile (vault deleted, ...): nothing to report
            log.info("no %s Event for %s of %s: %s", ISSUED, change.item, change.vault, exc)
            return
        if props is None or key in self._posted:
            return  # waiting for its merge, or posted while this one read
        self._posted[key] = None
        while len(self._posted) > self.REMEMBERED:
            self._posted.popitem(last=False)
        text = issued_message(change.vault, props, ISSUING[change.operation])
        body = await vault_body(self._kube, self._bodies, change.vault, ISSUED)
        if body is None:
            log.info("%s (no Vault object for this vault: no Event)", text)
            return
        log.info("%s", text)
        self._events.post(body, "Normal", ISSUED, text)

    async def drain(self) -> None:
        """Wait for the notices under way (their Events are then the poster's to drain)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
