"""The certificate renewal scheduler against a real kvault (SQLite, software HSM) and a fake
clock: AutoRenew happens once its time passes and not before (a new version, with its key and
secret), EmailContacts comes before AutoRenew, and every due time derives from stored state,
so a restarted scheduler neither repeats a notice nor forgets what is due."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kvault.app.backends import AUDIT_FILE
from kvault.vault.certificates.policy_model import AUTO_RENEW, EMAIL_CONTACTS, LifetimeAction
from kvault.vault.certificates.renewal import (
    NEAR_EXPIRY,
    RENEWAL_FAILED,
    RENEWED,
    Action,
    CertificateNotice,
    CertificateTimes,
    RenewalScheduler,
)
from kvault.vault.model import Certificate
from kvault.vault.service import Kvault
from tests.fixtures.kvault import DAY, START, FakeClock, KvFactory

pytestmark = pytest.mark.parametrize("hsm_kind", ["software"])
PEM = "application/x-pem-file"


class Notices:
    def __init__(self) -> None:
        self.notices: list[CertificateNotice] = []
        self.times: list[list[CertificateTimes]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, notice: CertificateNotice) -> None:
        self.notices.append(notice)
        self.arrived.set()

    def observe(self, times: list[CertificateTimes]) -> None:
        self.times.append(times)

    def reasons(self) -> list[tuple[str, str]]:
        return [(n.certificate, n.reason) for n in self.notices]


def _scheduler(kv: Kvault, clock: FakeClock, notices: Notices) -> RenewalScheduler:
    return RenewalScheduler(kv, clock=clock, notify=notices, observe=notices.observe)


def _policy(
    action: str | None = AUTO_RENEW,
    trigger: str = "lifetime_percentage",
    value: int = 80,
    *,
    issuer: str = "Self",
    months: int = 12,
    content_type: str = PEM,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
        "secret_props": {"contentType": content_type},
        "x509_props": {"subject": "CN=web.example", "validity_months": months},
        "issuer": {"name": issuer},
        "lifetime_actions": [],
    }
    if action is not None:
        doc["lifetime_actions"] = [{"trigger": {trigger: value}, "action": {"action_type": action}}]
    return doc


async def _create(kv: Kvault, name: str, policy: dict[str, Any]) -> Certificate:
    await kv.certificates.create("v1", name, policy)
    return await kv.certificates.get("v1", name)


async def _store_actions(kv: Kvault, name: str, *actions: LifetimeAction) -> None:
    """Rewrite the stored policy with several actions. A request may give one action only (the
    real service's rule); stored policies, and so the scheduler, may hold more."""
    certs = kv.certificates
    vault = await kv.vault("v1")
    found = await certs._policy(vault, name)
    assert found is not None
    txn = kv.core.store.txn()
    await certs._put_policy(txn, vault, name, dataclasses.replace(found[1], actions=actions))
    await kv.core.store.commit(txn)


def _times(cert: Certificate) -> tuple[int, int]:
    nbf, exp = cert.properties.not_before, cert.properties.expires
    assert nbf is not None and exp is not None
    return nbf, exp


def _audit(tmp_path: Path) -> list[dict[str, str]]:
    text = (tmp_path / "data" / AUDIT_FILE).read_text()
    return [json.loads(line) for line in text.splitlines()]


def _done(actions: list[Action]) -> list[tuple[str, str]]:
    return [(a.certificate, a.action) for a in actions]


async def test_lifetime_percentage_renews_once_due_and_key_and_secret_follow(
    kv: Kvault, clock: FakeClock, tmp_path: Path
) -> None:
    first = await _create(kv, "web", _policy(AUTO_RENEW, "lifetime_percentage", 80))
    old_secret = await kv.secrets.get("v1", "web")
    nbf, exp = _times(first)
    assert (nbf, exp) == (START - 600, START + 365 * DAY)  # 12 months, back-dated 10 minutes
    due = nbf + (exp - nbf) * 80 // 100
    notices = Notices()
    scheduler = _scheduler(kv, clock, notices)

    clock.advance(due - clock.now - 1)
    assert await scheduler.tick() == []  # not before it is due
    clock.advance(1)
    (renewed,) = await scheduler.tick()
    assert (renewed.certificate, renewed.action, renewed.outcome) == ("web", AUTO_RENEW, "ok")
    assert (renewed.version, renewed.due) == (first.properties.version, due)

    current = await kv.certificates.get("v1", "web")
    new = current.properties.version
    assert new == renewed.new_version != first.properties.version
    assert _times(current) == (clock.now - 600, clock.now + 365 * DAY)
    assert current.cer != first.cer and current.properties.enabled
    key = await kv.keys.get("v1", "web")
    secret = await kv.secrets.get("v1", "web")
    assert key.properties.version == secret.properties.version == new
    assert secret.value != old_secret.value and secret.value.startswith("-----BEGIN PRIVATE KEY")
    loaded = x509.load_pem_x509_certificate(secret.value.encode())
    assert loaded.public_bytes(serialization.Encoding.DER) == current.cer
    assert await scheduler.tick() == []  # the new version's clock starts now

    # Its commit was announced first (the committing line names the new version), then done.
    announced, line = [ln for ln in _audit(tmp_path) if ln["operation"] == "CertificateRenew"]
    assert (announced["outcome"], announced["version"]) == ("committing", new)
    assert (line["principal"], line["item"], line["version"], line["outcome"]) == (
        "kvault",
        "web",
        new,
        "ok",
    )
    (notice,) = notices.notices
    assert (notice.reason, notice.version, notice.new_version) == (
        RENEWED,
        first.properties.version,
        new,
    )
    assert (notice.expires, notice.new_expires) == (exp, clock.now + 365 * DAY)
    # The pass reports the new version's times (the gauges' source).
    (times,) = notices.times[-2]
    new_nbf, new_exp = _times(current)
    assert (times.version, times.expires) == (new, new_exp)
    assert times.renews_at == new_nbf + (new_exp - new_nbf) * 80 // 100


async def test_days_before_expiry_renews_once_due_and_not_before(
    kv: Kvault, clock: FakeClock
) -> None:
    first = await _create(kv, "api", _policy(AUTO_RENEW, "days_before_expiry", 30, months=2))
    await _create(kv, "quiet", _policy(None))  # no lifetime action: never acted on
    _, exp = _times(first)
    notices = Notices()
    scheduler = _scheduler(kv, clock, notices)
    assert await scheduler.tick() == []
    api, quiet = notices.times[-1]
    assert (api.certificate, api.expires, quiet.certificate) == ("api", exp, "quiet")
    assert api.renews_at == exp - 30 * DAY and quiet.renews_at is None

    clock.advance(exp - 30 * DAY - clock.now - 1)
    assert await scheduler.tick() == []
    clock.advance(1)
    assert _done(await scheduler.tick()) == [("api", AUTO_RENEW)]
    assert (await kv.certificates.get("v1", "api")).properties.version != (first.properties.version)
    clock.advance(400 * DAY)  # "quiet" expires; nothing is due for it, ever
    assert _done(await scheduler.tick()) == [("api", AUTO_RENEW)]


async def test_email_contacts_comes_before_auto_renew(
    kv: Kvault, clock: FakeClock, tmp_path: Path
) -> None:
    first = await _create(kv, "web", _policy())
    await _store_actions(
        kv,
        "web",
        LifetimeAction(AUTO_RENEW, lifetime_percentage=80),
        LifetimeAction(EMAIL_CONTACTS, days_before_expiry=120),
    )
    late = await _create(kv, "late", _policy())
    await _store_actions(
        kv,
        "late",
        LifetimeAction(AUTO_RENEW, lifetime_percentage=50),
        LifetimeAction(EMAIL_CONTACTS, lifetime_percentage=50),
    )
    nbf, exp = _times(first)
    notices = Notices()
    scheduler = _scheduler(kv, clock, notices)

    clock.advance(exp - 120 * DAY - clock.now)
    # "web": the notice, 120 days before expiry. "late": both due at once (the scheduler was
    # down past them): the notice first, then the renewal.
    done = await scheduler.tick()  # (certificates in name order: "late" before "web")
    assert _done(done) == [("late", EMAIL_CONTACTS), ("late", AUTO_RENEW), ("web", EMAIL_CONTACTS)]
    assert notices.reasons() == [("late", NEAR_EXPIRY), ("late", RENEWED), ("web", NEAR_EXPIRY)]
    near = notices.notices[-1]
    assert (near.version, near.expires, near.due) == (first.properties.version, exp, clock.now)
    assert "PRIVATE" not in repr(notices.notices)
    line = [ln for ln in _audit(tmp_path) if ln["operation"] == "CertificateNotify"][-1]
    assert (line["principal"], line["item"], line["version"], line["outcome"]) == (
        "kvault",
        "web",
        first.properties.version,
        "ok",
    )

    clock.advance(DAY)
    assert await scheduler.tick() == []  # notified once per version
    clock.advance(nbf + (exp - nbf) * 80 // 100 - clock.now)
    assert _done(await scheduler.tick()) == [("web", AUTO_RENEW)]
    assert len([n for n in notices.notices if n.reason == NEAR_EXPIRY]) == 2
    assert late.properties.version != (await kv.certificates.get("v1", "late")).properties.version
    # The new version is notified about again, once its own time comes.
    current = await kv.certificates.get("v1", "web")
    _, new_exp = _times(current)
    clock.advance(new_exp - 120 * DAY - clock.now)
    assert ("web", EMAIL_CONTACTS) in _done(await scheduler.tick())


async def test_a_restart_neither_repeats_a_notice_nor_forgets_what_is_due(
    kv: Kvault, kv_factory: KvFactory, clock: FakeClock
) -> None:
    notified = await _create(kv, "notified", _policy(EMAIL_CONTACTS, "lifetime_percentage", 50))
    await _create(kv, "pending", _policy(EMAIL_CONTACTS, "lifetime_percentage", 60))
    await _create(kv, "renews", _policy(AUTO_RENEW, "lifetime_percentage", 70))
    nbf, exp = _times(notified)

    def to(percent: int) -> None:
        clock.advance(nbf + (exp - nbf) * percent // 100 - clock.now)

    notices = Notices()
    to(50)
    assert _done(await _scheduler(kv, clock, notices).tick()) == [("notified", EMAIL_CONTACTS)]

    await kv.close()  # the operator restarts (or another replica takes the Lease)
    again = await kv_factory()
    later = Notices()
    scheduler = _scheduler(again, clock, later)
    assert await scheduler.tick() == []
    to(60)  # "pending" is due, after the restart
    assert _done(await scheduler.tick()) == [("pending", EMAIL_CONTACTS)]
    to(70)
    assert _done(await scheduler.tick()) == [("renews", AUTO_RENEW)]
    assert later.reasons() == [("pending", NEAR_EXPIRY), ("renews", RENEWED)]

    await again.close()
    third = await kv_factory()
    assert await _scheduler(third, clock, Notices()).tick() == []


async def test_disabled_deleted_and_unknown_issuer_certificates_are_not_renewed(
    kv: Kvault, clock: FakeClock
) -> None:
    for name in ("off", "gone", "on"):
        await _create(kv, name, _policy(AUTO_RENEW, "lifetime_percentage", 10))
    await _create(kv, "off-notice", _policy(EMAIL_CONTACTS, "lifetime_percentage", 10))
    await kv.certificates.update("v1", "off", enabled=False)
    await kv.certificates.update("v1", "off-notice", enabled=False)
    await kv.certificates.delete("v1", "gone")
    # Imported: issuer Unknown (kvault cannot sign it; only a CSR and a merge renew it).
    await kv.certificates.import_certificate(
        "v1", "external", _external_pem(), policy_doc={"lifetime_actions": _actions(AUTO_RENEW)}
    )
    imported = await kv.certificates.get("v1", "external")
    assert imported.policy.issuer.name == "Unknown"
    await kv.vaults.create("v2")
    await kv.certificates.create("v2", "on", _policy(AUTO_RENEW, "lifetime_percentage", 10))
    notices = Notices()
    clock.advance(60 * DAY)
    done = await _scheduler(kv, clock, notices).tick()
    assert sorted((a.vault, a.certificate, a.action) for a in done) == [
        ("v1", "off-notice", EMAIL_CONTACTS),  # a disabled certificate still hears of expiry
        ("v1", "on", AUTO_RENEW),
        ("v2", "on", AUTO_RENEW),
    ]
    assert len((await kv.certificates.list_versions("v1", "off")).items) == 1
    times = {(t.vault, t.certificate): t.renews_at for t in notices.times[-1]}
    assert times[("v1", "off")] is None and times[("v1", "external")] is None
    assert ("v1", "gone") not in times


async def test_a_failed_renewal_is_reported_retried_and_stops_no_other(
    kv: Kvault, clock: FakeClock, tmp_path: Path
) -> None:
    await _create(kv, "root", _ca_policy())
    await kv.certificates.set_issuer(
        "v1", "corp", {"provider": "kvault-ca", "credentials": {"account_id": "root"}}
    )
    leaf = await _create(kv, "leaf", _policy(AUTO_RENEW, "lifetime_percentage", 50, issuer="corp"))
    assert len(leaf.chain) == 1  # signed by "root"
    await _create(kv, "self", _policy(AUTO_RENEW, "lifetime_percentage", 50))
    await kv.certificates.set_issuer(
        "v1", "corp", {"provider": "kvault-ca", "attributes": {"enabled": False}}, patch=True
    )
    notices = Notices()
    scheduler = _scheduler(kv, clock, notices)
    clock.advance(200 * DAY)
    done = {a.certificate: a for a in await scheduler.tick()}
    assert (done["leaf"].action, done["leaf"].outcome) == (AUTO_RENEW, "BadParameter")
    assert (done["self"].action, done["self"].outcome) == (AUTO_RENEW, "ok")
    failed = next(n for n in notices.notices if n.reason == RENEWAL_FAILED)
    assert (failed.certificate, failed.outcome) == ("leaf", "BadParameter")
    line = [
        ln
        for ln in _audit(tmp_path)
        if ln["operation"] == "CertificateRenew" and ln["outcome"] != "committing"
    ][-2:]
    assert {(ln["item"], ln["outcome"]) for ln in line} == {
        ("leaf", "BadParameter"),
        ("self", "ok"),
    }

    assert _done(await scheduler.tick()) == [("leaf", AUTO_RENEW)]  # tried again
    await kv.certificates.set_issuer("v1", "corp", {"attributes": {"enabled": True}}, patch=True)
    (again,) = await scheduler.tick()
    assert again.outcome == "ok"
    renewed = await kv.certificates.get("v1", "leaf")
    root = await kv.certificates.get("v1", "root")
    assert renewed.chain == (root.cer,)


async def test_run_loops_until_stopped(kv: Kvault, clock: FakeClock) -> None:
    await _create(kv, "web", _policy(EMAIL_CONTACTS, "days_before_expiry", 30))
    notices = Notices()
    stop = asyncio.Event()
    task = asyncio.create_task(_scheduler(kv, clock, notices).run(stop, interval=0.01))
    clock.advance(340 * DAY)
    await asyncio.wait_for(notices.arrived.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert notices.reasons() == [("web", NEAR_EXPIRY)]


async def test_a_failed_notice_is_audited_and_tried_again_before_renewing(
    kv: Kvault, clock: FakeClock, tmp_path: Path
) -> None:
    first = await _create(kv, "web", _policy())
    await _store_actions(
        kv,
        "web",
        LifetimeAction(AUTO_RENEW, lifetime_percentage=80),
        LifetimeAction(EMAIL_CONTACTS, lifetime_percentage=60),
    )
    sent: list[CertificateNotice] = []

    async def flaky(notice: CertificateNotice) -> None:
        sent.append(notice)
        if len(sent) == 1:
            raise RuntimeError("the API server is away")

    scheduler = RenewalScheduler(kv, clock=clock, notify=flaky)
    clock.advance(330 * DAY)
    (failed,) = await scheduler.tick()  # no renewal while its notice is unsent
    assert (failed.action, failed.outcome) == (EMAIL_CONTACTS, "RuntimeError")
    line = _audit(tmp_path)[-1]
    assert (line["operation"], line["outcome"]) == ("CertificateNotify", "InternalError")
    assert (await kv.certificates.get("v1", "web")).properties.version == (first.properties.version)
    assert _done(await scheduler.tick()) == [("web", EMAIL_CONTACTS), ("web", AUTO_RENEW)]
    assert [n.reason for n in sent] == [NEAR_EXPIRY, NEAR_EXPIRY, RENEWED]


# -- helpers ------------------------------------------------------------------------------------


def _actions(action: str) -> list[dict[str, Any]]:
    return [{"trigger": {"lifetime_percentage": 10}, "action": {"action_type": action}}]


def _ca_policy() -> dict[str, Any]:
    doc = _policy(None)
    doc["x509_props"] = {
        "subject": "CN=kvault test root",
        "basic_constraints": {"ca": True},
        "key_usage": ["keyCertSign", "cRLSign", "digitalSignature"],
        "validity_months": 60,
    }
    return doc


def _external_pem() -> bytes:
    """A key and a certificate from elsewhere, valid from the fake clock's start for 90 days."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "external.example")])
    start = datetime.fromtimestamp(START, UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=90))
        .sign(key, hashes.SHA256())
    )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)


# --- dev-only short validity and waking when an action falls due --------------------------------


def _seconds_policy(seconds: int, percentage: int = 50) -> dict[str, Any]:
    doc = _policy(AUTO_RENEW, "lifetime_percentage", percentage)
    doc["x509_props"] = {"subject": "CN=web.example", "validity_seconds": seconds}
    return doc


async def test_validity_seconds_is_refused_without_a_dev_floor(kv: Kvault) -> None:
    from kvault.errors import BadParameter, NotFound

    with pytest.raises(BadParameter, match="validity_seconds is for tests and demos only"):
        await kv.certificates.create("v1", "short", _seconds_policy(60))
    with pytest.raises(NotFound):
        await kv.certificates.get_policy("v1", "short")


async def test_a_dev_floor_allows_seconds_renews_on_time_and_says_when_to_wake(
    kv_factory: KvFactory, clock: FakeClock
) -> None:
    kv = await kv_factory(certificate_validity_floor=30)
    await kv.vaults.create("v1", retention_days=30)
    from kvault.errors import BadParameter

    with pytest.raises(BadParameter, match="from 30"):
        await kv.certificates.create("v1", "short", _seconds_policy(29))
    days = _seconds_policy(60)
    days["lifetime_actions"] = [
        {"trigger": {"days_before_expiry": 1}, "action": {"action_type": AUTO_RENEW}}
    ]
    with pytest.raises(BadParameter, match="use lifetime_percentage"):
        await kv.certificates.create("v1", "short", days)

    first = await _create(kv, "short", _seconds_policy(60))
    assert _times(first) == (START, START + 60)  # back-dated by 1/100 of 60 s: none
    policy = await kv.certificates.get_policy("v1", "short")
    assert policy.to_response("p")["x509_props"]["validity_seconds"] == 60

    scheduler = _scheduler(kv, clock, Notices())
    assert await scheduler.tick() == []
    assert scheduler.next_wait() == 30  # AutoRenew at 50 % of 60 s
    clock.advance(30)
    (renewed,) = await scheduler.tick()
    assert renewed.action == AUTO_RENEW and renewed.outcome == "ok"
    assert scheduler.next_wait() == 0  # renewed: look again at once for the new version's times
    assert await scheduler.tick() == []
    assert scheduler.next_wait() == 30
    current = await kv.certificates.get("v1", "short")
    assert _times(current) == (START + 30, START + 90)
