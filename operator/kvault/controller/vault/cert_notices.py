"""Certificate renewal notices: what the renewal scheduler reports becomes Events on the
``Vault`` object whose vault holds the certificate, and metrics.

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

The Vault's body is found as for key notices (:func:`~.notices.vault_body`); a vault no
Vault object stands for gets the metrics and a log line only. Messages name the certificate,
its versions and times: never key material.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from kvault.controller import metrics
from kvault.controller.vault.notices import vault_body
from kvault.kube.client import KubeClient
from kvault.kube.events import EventPoster
from kvault.vault.certificates.renewal import (
    NEAR_EXPIRY,
    RENEWAL_FAILED,
    RENEWED,
    CertificateNotice,
    CertificateTimes,
)

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
