"""What the certificate renewal scheduler reports becomes Events on the Vault object of the
certificate's vault (CertificateNearExpiry, CertificateRenewed, CertificateRenewalFailed once
per version and error) and metrics (notifications, renewals by outcome, expiry and renewal
gauges that follow the certificates). Against an in-memory API; the operator wiring runs
against a real cluster in e2e."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from kvault.controller import metrics
from kvault.controller.vault.cert_notices import CertificateNotices
from kvault.kube.client import KubeApiError, KubeClient
from kvault.kube.events import EventPoster
from kvault.vault.certificates.renewal import (
    NEAR_EXPIRY,
    RENEWAL_FAILED,
    RENEWED,
    CertificateNotice,
    CertificateTimes,
)

DAY = 86400
EXP = 1_750_000_000 + 365 * DAY
V1, V2 = "a" * 32, "b" * 32


def _vault(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kvault.io/v1alpha1",
        "kind": "Vault",
        "metadata": {"namespace": ns, "name": name, "uid": f"uid-{name}"},
    }


class FakeApi:
    def __init__(self, objects: Mapping[str, dict[str, Any]]) -> None:
        self.objects = dict(objects)
        self.gets: list[str] = []
        self.posts: list[tuple[str, dict[str, Any]]] = []

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        self.gets.append(path)
        if path not in self.objects:
            raise KubeApiError(404, "Not Found", "not found")
        return self.objects[path]

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.posts.append((path, dict(body)))
        return dict(body)


def _sample(name: str, labels: dict[str, str]) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels)


def _count(name: str, labels: dict[str, str]) -> float:
    return _sample(name, labels) or 0.0


def _notices() -> tuple[FakeApi, EventPoster, CertificateNotices]:
    api = FakeApi(
        {"/apis/kvault.io/v1alpha1/namespaces/team-b/vaults/other": _vault("team-b", "other")}
    )
    kube = cast(KubeClient, api)
    events = EventPoster(kube, manager="kvault", api_version="kvault.io/v1alpha1")
    cached = {"main.team-a": _vault("team-a", "main")}
    return api, events, CertificateNotices(kube, events, cached)


async def test_each_notice_is_an_event_on_the_vault_and_counts() -> None:
    api, events, notices = _notices()
    notified = "kvault_certificate_notifications_total"
    renewals = "kvault_certificate_renewals_total"
    before = (
        _count(notified, {"vault": "main.team-a"}),
        _count(renewals, {"vault": "other.team-b", "outcome": "ok"}),
        _count(renewals, {"vault": "main.team-a", "outcome": "BadParameter"}),
        _count(notified, {"vault": "dev"}),
    )

    await notices(CertificateNotice(NEAR_EXPIRY, "main.team-a", "web", V1, EXP, EXP - 30 * DAY))
    await notices(
        CertificateNotice(RENEWED, "other.team-b", "api", V1, EXP, EXP - 73 * DAY, V2, EXP + DAY)
    )
    failed = CertificateNotice(
        RENEWAL_FAILED, "main.team-a", "web", V1, EXP, EXP - 73 * DAY, outcome="BadParameter"
    )
    await notices(failed)
    await notices(failed)  # still failing on the next pass: counted, not posted again
    await notices(CertificateNotice(NEAR_EXPIRY, "dev", "x", V1, EXP, EXP))  # no Vault object
    await events.drain()

    assert api.gets == ["/apis/kvault.io/v1alpha1/namespaces/team-b/vaults/other"]
    posted = [(p, b["reason"], b["type"]) for p, b in api.posts]
    assert posted == [
        ("/api/v1/namespaces/team-a/events", "CertificateNearExpiry", "Warning"),
        ("/api/v1/namespaces/team-b/events", "CertificateRenewed", "Normal"),
        ("/api/v1/namespaces/team-a/events", "CertificateRenewalFailed", "Warning"),
    ]
    near, renewed, failure = (b for _, b in api.posts)
    assert near["involvedObject"]["kind"] == "Vault" and near["involvedObject"]["name"] == "main"
    assert near["message"] == (
        f"certificate web of vault main.team-a (version {V1}) expires at 2026-06-15T15:06:40Z; "
        "its policy asks for this notice to the certificate contacts (EmailContacts)"
    )
    assert renewed["message"] == (
        f"certificate api of vault other.team-b renewed: version {V2} (expires "
        f"2026-06-16T15:06:40Z) replaces version {V1} (expires 2026-06-15T15:06:40Z)"
    )
    assert "failed: BadParameter" in failure["message"]
    after = (
        _count(notified, {"vault": "main.team-a"}),
        _count(renewals, {"vault": "other.team-b", "outcome": "ok"}),
        _count(renewals, {"vault": "main.team-a", "outcome": "BadParameter"}),
        _count(notified, {"vault": "dev"}),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 2, 1]

    # Another error (or a later version failing) is news again; a renewal clears the memory.
    await notices(CertificateNotice(RENEWAL_FAILED, "main.team-a", "web", V1, EXP, 0, outcome="X"))
    await notices(CertificateNotice(RENEWED, "main.team-a", "web", V1, EXP, 0, V2, EXP))
    await notices(failed)
    await events.drain()
    assert [b["reason"] for _, b in api.posts[3:]] == [
        "CertificateRenewalFailed",
        "CertificateRenewed",
        "CertificateRenewalFailed",
    ]


def test_gauges_follow_the_certificates_of_each_pass() -> None:
    _, _, notices = _notices()
    expiry = "kvault_certificate_expiration_timestamp_seconds"
    renewal = "kvault_certificate_renewal_timestamp_seconds"
    web = {"vault": "g.team-a", "certificate": "web"}
    ext = {"vault": "g.team-a", "certificate": "external"}

    notices.observe(
        [
            CertificateTimes("g.team-a", "web", V1, EXP, EXP - 73 * DAY),
            CertificateTimes("g.team-a", "external", V1, EXP + DAY, None),  # never renewed
        ]
    )
    assert _sample(expiry, web) == EXP and _sample(renewal, web) == EXP - 73 * DAY
    assert _sample(expiry, ext) == EXP + DAY and _sample(renewal, ext) is None

    notices.observe([CertificateTimes("g.team-a", "web", V2, EXP + 365 * DAY, EXP + 292 * DAY)])
    assert _sample(expiry, web) == EXP + 365 * DAY and _sample(renewal, web) == EXP + 292 * DAY
    assert _sample(expiry, ext) is None  # deleted: its series goes

    notices.observe([CertificateTimes("g.team-a", "web", V2, EXP + 365 * DAY, None)])
    assert _sample(expiry, web) == EXP + 365 * DAY and _sample(renewal, web) is None
    notices.observe([])  # the replica stepped down
    assert _sample(expiry, web) is None
