"""What the certificate renewal scheduler reports becomes Events on the Vault object of the
certificate's vault (CertificateNearExpiry, CertificateRenewed, CertificateRenewalFailed once
per version and error) and metrics (notifications, renewals by outcome, expiry and renewal
gauges that follow the certificates). A version issued through the data plane (a create
done at once, a merge, an import; not an Unknown issuer's create, not a renewal) becomes a
``CertificateIssued`` Event, from the change feed of a real kvault. Against an in-memory API;
the operator wiring runs against a real cluster in e2e."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, pkcs12

from kvault.app.backends import open_kvault
from kvault.controller import metrics
from kvault.controller.vault.cert_notices import CertificateNotices, IssuedNotices
from kvault.hsm.registry import load
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
from kvault.vault.service import Kvault
from tests.api.certs_support import TestCA, ca_policy
from tests.controller.fakes import FakeApi, vault_body

DAY = 86400
EXP = 1_750_000_000 + 365 * DAY
V1, V2 = "a" * 32, "b" * 32


def _sample(name: str, labels: dict[str, str]) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels)


def _count(name: str, labels: dict[str, str]) -> float:
    return _sample(name, labels) or 0.0


def _notices() -> tuple[FakeApi, EventPoster, CertificateNotices]:
    api = FakeApi(
        {"/apis/kvault.io/v1alpha1/namespaces/team-b/vaults/other": vault_body("team-b", "other")}
    )
    kube = cast(KubeClient, api)
    events = EventPoster(kube, manager="kvault", api_version="kvault.io/v1alpha1")
    cached = {"main.team-a": vault_body("team-a", "main")}
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


# -- versions issued through the data plane --------------------------------------------------

VAULT = "main.team-a"


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[Kvault]:
    kv = await open_kvault(
        tmp_path / "data", load("software", {"key_file": str(tmp_path / "root.key")})
    )
    await kv.vaults.create(VAULT, retention_days=7)
    await kv.vaults.create("dev", retention_days=7)  # no Vault object stands for it
    yield kv
    await kv.close()


def _policy(issuer: str = "Self", subject: str = "CN=web.example") -> dict[str, Any]:
    return {
        "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
        "x509_props": {"subject": subject, "validity_months": 12},
        "issuer": {"name": issuer},
    }


async def test_issued_versions_are_events_on_thevault_body(kv: Kvault) -> None:
    api = FakeApi({})
    kube = cast(KubeClient, api)
    events = EventPoster(kube, manager="kvault", api_version="kvault.io/v1alpha1")
    issued = IssuedNotices(kv, kube, events, {VAULT: vault_body("team-a", "main")})
    unsubscribe = kv.subscribe(issued.on_change)
    certs = kv.certificates
    ca = TestCA.make("external CA")

    await certs.create(VAULT, "Web", _policy())  # Self: issued at once
    web = await certs.get(VAULT, "web")
    pending = await certs.create(VAULT, "ext", _policy("Unknown", "CN=ext"))  # a CSR only
    await issued.drain()
    assert [b["message"] for _, b in api.posts if b["reason"] == "CertificateIssued"] == [
        f"certificate Web of vault {VAULT}: version {web.properties.version} issued (created), "
        f"valid until {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(web.properties.expires))}"
    ]
    assert pending.csr is not None
    leaf = ca.sign_csr(x509.load_der_x509_csr(pending.csr))
    merged = await certs.merge(VAULT, "ext", [leaf.public_bytes(Encoding.DER)])
    key, cert = ca.leaf("CN=imported")
    pfx = pkcs12.serialize_key_and_certificates(b"imp", key, cert, [ca.cert], NoEncryption())
    imported = await certs.import_certificate(VAULT, "imp", pfx)
    await certs.create(VAULT, "root", ca_policy("CN=root", "EC", crv="P-256"))
    await certs.set_issuer(
        VAULT, "corp", {"provider": "kvault-ca", "credentials": {"account_id": "root"}}
    )
    await certs.create(VAULT, "signed", _policy("corp", "CN=signed"))
    signed = await certs.get(VAULT, "signed")
    renewed = await certs.renew(VAULT, "web")  # its own notice (CertificateRenewed): not this
    await certs.update(VAULT, "web", enabled=False)  # not an issuance
    await certs.create("dev", "x", _policy())  # no Vault object: a log line only
    await issued.drain()
    await events.drain()
    unsubscribe()

    posted = [(path, b["reason"], b["type"]) for path, b in api.posts]
    assert posted == [("/api/v1/namespaces/team-a/events", "CertificateIssued", "Normal")] * 5
    messages = [b["message"] for _, b in api.posts]
    expected = [
        ("Web", web.properties.version, "created"),
        ("ext", merged.properties.version, "merged"),
        ("imp", imported.properties.version, "imported"),
        ("root", None, "created"),
        ("signed", signed.properties.version, "created"),
    ]
    for text, (name, version, how) in zip(messages, expected, strict=True):
        assert text.startswith(f"certificate {name} of vault {VAULT}: version ")
        assert f" issued ({how}), valid until " in text
        if version is not None:
            assert f"version {version} issued" in text
    assert merged.properties.version == pending.version
    assert all(renewed.properties.version not in m for m in messages)
    assert not any("BEGIN" in m or "PRIVATE" in m for m in messages)
    involved = api.posts[0][1]["involvedObject"]
    assert (involved["kind"], involved["name"], involved["namespace"]) == (
        "Vault",
        "main",
        "team-a",
    )
    assert api.gets == []  # the Vault came from the controller's cache

    # Each version once: the same change again (or the Unknown create seen after its merge)
    # posts nothing more.
    await issued.notice(Change(VAULT, "CertificateCreate", "ext", pending.version))
    await issued.notice(Change(VAULT, "CertificateMerge", "EXT", pending.version))
    await issued.notice(Change(VAULT, "CertificateImport", "imp", imported.properties.version))
    await events.drain()
    assert len(api.posts) == 5


async def test_issued_notice_of_a_vault_read_from_the_api_or_gone(kv: Kvault) -> None:
    """A Vault not cached yet is read from the API server; a change whose vault went away
    meanwhile is dropped quietly."""
    api = FakeApi(
        {"/apis/kvault.io/v1alpha1/namespaces/team-a/vaults/main": vault_body("team-a", "main")}
    )
    kube = cast(KubeClient, api)
    events = EventPoster(kube, manager="kvault", api_version="kvault.io/v1alpha1")
    issued = IssuedNotices(kv, kube, events, {})
    await kv.certificates.create(VAULT, "web", _policy())
    version = (await kv.certificates.get(VAULT, "web")).properties.version
    await issued.notice(Change(VAULT, "CertificateCreate", "web", version))
    await kv.vaults.delete(VAULT)
    await issued.notice(Change(VAULT, "CertificateImport", "web", "c" * 32))
    await issued.notice(Change(VAULT, "CertificateRenew", "web", version))  # not handled here
    issued.on_change(Change(VAULT, "CertificateRenew", "web", version))
    await issued.drain()
    await events.drain()
    assert api.gets == ["/apis/kvault.io/v1alpha1/namespaces/team-a/vaults/main"]
    assert [b["reason"] for _, b in api.posts] == ["CertificateIssued"]
