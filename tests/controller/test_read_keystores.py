"""PKCS#12 keystores of a ``Certificate`` entry (``data[].keystores.pkcs12``) through the
sources and the projector, as the VaultSecret's ServiceAccount, against a real kvault (SQLite,
software HSM), as ``test_read_certificates.py`` does: the password is a vault secret read
with that identity (authorised before anything is read, denied -> Forbidden), the files open
with it and hold key, chain and CA, an unchanged projection keeps the Secret's bytes, and a
new password, profile or certificate version makes new files. The password shows nowhere."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from kvault.app.backends import AUDIT_FILE, open_kvault
from kvault.controller.settings import Options
from kvault.controller.vaultsecret.keystores import Keystore, keystore_keys
from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import PKCS12_PROFILES, interesting_items, plan_of
from kvault.controller.vaultsecret.projector import Projector
from kvault.controller.vaultsecret.read import project, read
from kvault.controller.vaultsecret.render import TemplateError, content_hash, render
from kvault.controller.vaultsecret.values import Binary, Value
from kvault.crypto import keystore as p12
from kvault.crypto.x509build import same_key
from kvault.hsm.registry import load
from kvault.identity.model import RoleAssignment
from kvault.kube.client import KubeApiError, KubeClient
from kvault.kube.events import EventPoster
from kvault.vault.model import Certificate
from kvault.vault.service import Kvault

VAULT = "main.team-a"
CERT_USER = "Key Vault Certificate User"
PASSWORD = "hunter2-keystore-password"
CRD = Path(__file__).parents[2] / "crds" / "vaultsecrets.kvault.io.yaml"
DER = Encoding.DER


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[Kvault]:
    kv = await open_kvault(
        tmp_path / "data", load("software", {"key_file": str(tmp_path / "root.key")})
    )
    roles = [
        RoleAssignment("team-a/app", CERT_USER, "/"),
        # The certificate and its secret, but not the password's secret.
        RoleAssignment("team-a/no-password", CERT_USER, "/certificates/web"),
        RoleAssignment("team-a/no-password", CERT_USER, "/secrets/web"),
        # Item scopes for all three reads.
        RoleAssignment("team-a/scoped", CERT_USER, "/certificates/web"),
        RoleAssignment("team-a/scoped", CERT_USER, "/secrets/web"),
        RoleAssignment("team-a/scoped", "Key Vault Secrets User", "/secrets/web-pw"),
    ]
    await kv.vaults.create(VAULT, retention_days=7, role_assignments=roles)
    yield kv
    await kv.close()


def _body(
    sa: str = "app",
    *,
    key: str = "tls",
    kind: str = "Certificate",
    pkcs12_spec: dict[str, Any] | None = None,
    templates: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec = {"create": True, "passwordRef": {"name": "web-pw"}}
    entry = {
        "secretKey": key,
        "remoteRef": {"kind": kind, "name": "web"},
        "keystores": {"pkcs12": pkcs12_spec if pkcs12_spec is not None else spec},
    }
    target: dict[str, Any] = {"type": "Opaque"}
    if templates:
        target["template"] = {"data": templates}
    return {
        "metadata": {"namespace": "team-a", "name": "vs", "uid": "u", "generation": 1},
        "spec": {
            "vaultRef": {"name": "main"},
            "serviceAccountName": sa,
            "data": [entry],
            "target": target,
        },
    }


def _plan(sa: str = "app", **kwargs: Any) -> Any:
    return plan_of(_body(sa, **kwargs), 0)


def _policy(*, issuer: str = "Self", subject: str = "CN=web.example", ca: bool = False) -> Any:
    x509_props: dict[str, Any] = {"subject": subject, "sans": {"dns_names": ["web.example"]}}
    if ca:
        x509_props = {
            "subject": subject,
            "basic_constraints": {"ca": True},
            "key_usage": ["keyCertSign", "cRLSign", "digitalSignature"],
            "validity_months": 60,
        }
    return {
        "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
        "secret_props": {"contentType": "application/x-pem-file"},
        "x509_props": x509_props,
        "issuer": {"name": issuer},
    }


async def _chain(kv: Kvault) -> tuple[Certificate, Certificate]:
    """A root CA and a leaf ``web`` it issued (``kvault-ca``): (leaf, root)."""
    root = await kv.certificates.create(VAULT, "root", _policy(subject="CN=team-a root", ca=True))
    await kv.certificates.set_issuer(
        VAULT, "team-ca", {"provider": "kvault-ca", "credentials": {"account_id": "root"}}
    )
    await kv.certificates.create(VAULT, "web", _policy(issuer="team-ca"))
    return await kv.certificates.get(VAULT, "web"), await kv.certificates.get(VAULT, root.name)


def _settled(value: object) -> bytes:
    assert isinstance(value, Keystore) and isinstance(value, Binary)
    return value.settle(None)


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "data" / AUDIT_FILE).read_text().splitlines()
    return [json.loads(line) for line in lines]


async def test_the_keystores_open_with_the_vault_password_and_hold_key_chain_and_ca(
    kv: Kvault, tmp_path: Path
) -> None:
    leaf, root = await _chain(kv)
    pw = await kv.secrets.set(VAULT, "web-pw", PASSWORD)
    before = len(_audit(tmp_path))
    found = await project(kv, _plan())
    assert sorted(found.values) == [
        "ca.crt",
        "keystore.p12",
        "tls.crt",
        "tls.key",
        "truststore.p12",
    ]
    assert found.versions == {"tls": leaf.properties.version}
    (facts,) = found.certificates
    assert facts["passwordVersion"] == pw.properties.version
    assert PASSWORD not in repr(found.values["keystore.p12"])

    key, cert, chain = pkcs12.load_key_and_certificates(
        _settled(found.values["keystore.p12"]), PASSWORD.encode()
    )
    assert cert is not None and key is not None
    assert cert.public_bytes(DER) == leaf.cer  # the leaf...
    assert [c.public_bytes(DER) for c in chain] == [root.cer]  # ...its chain
    assert same_key(key.public_key(), cert.public_key())  # type: ignore[arg-type]
    assert x509.load_pem_x509_certificates(str(found.values["tls.crt"]).encode())[0] == cert
    trust = pkcs12.load_pkcs12(_settled(found.values["truststore.p12"]), PASSWORD.encode())
    assert trust.key is None and trust.cert is None  # the CA only
    assert [c.certificate.public_bytes(DER) for c in trust.additional_certs] == [root.cer]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(_settled(found.values["keystore.p12"]), b"wrong")
    # Modern2023 unless asked otherwise.
    assert p12.protection(_settled(found.values["keystore.p12"])) == p12.expected(
        "Modern2023", with_key=True
    )

    # Read as the ServiceAccount: the certificate, its secret, then the password.
    reads = [(ln["operation"], ln["item"], ln["principal"]) for ln in _audit(tmp_path)[before:]]
    sa = "system:serviceaccount:team-a:app"
    assert reads == [
        ("CertificateGet", "web", sa),
        ("SecretGet", "web", sa),
        ("SecretGet", "web-pw", sa),
    ]


async def test_another_secret_key_names_the_files_after_it_and_no_ca_means_no_truststore(
    kv: Kvault,
) -> None:
    assert keystore_keys("tls") == ("keystore.p12", "truststore.p12")
    assert keystore_keys("web") == ("web.keystore.p12", "web.truststore.p12")
    await kv.certificates.create(VAULT, "web", _policy())
    await kv.secrets.set(VAULT, "web-pw", PASSWORD)
    profile = {"create": True, "passwordRef": {"name": "web-pw"}, "profile": "LegacyDES"}
    values, _ = await read(kv, _plan(key="web", pkcs12_spec=profile))
    assert sorted(values) == [
        "web.ca.crt",
        "web.crt",
        "web.key",
        "web.keystore.p12",
        "web.truststore.p12",
    ]
    store = _settled(values["web.keystore.p12"])
    assert p12.protection(store) == p12.expected("LegacyDES", with_key=True)
    assert pkcs12.load_pkcs12(store, PASSWORD.encode()).cert is not None
    # create: false writes none (and needs no password).
    off = {"create": False, "passwordRef": {"name": "absent"}}
    values, _ = await read(kv, _plan(pkcs12_spec=off))
    assert sorted(values) == ["ca.crt", "tls.crt", "tls.key"]


async def test_the_password_read_is_authorised_before_anything_is_read(
    kv: Kvault, tmp_path: Path
) -> None:
    await kv.certificates.create(VAULT, "web", _policy())
    await kv.secrets.set(VAULT, "web-pw", PASSWORD)
    before = len(_audit(tmp_path))
    with pytest.raises(Refused) as refused:
        await read(kv, _plan("no-password"))
    assert refused.value.reason == "Forbidden" and refused.value.drop
    for word in (
        "may not read secret 'web-pw'",
        "getSecret",
        "data[tls] are encrypted with the value of secret 'web-pw'",
        "keystores.pkcs12.passwordRef",
    ):
        assert word in refused.value.message
    lines = _audit(tmp_path)[before:]
    assert [(ln["operation"], ln["item"], ln["outcome"]) for ln in lines] == [
        ("SecretGet", "web-pw", "ForbiddenByRbac"),  # and nothing read
    ]
    # Item scopes on all three: allowed.
    values, _ = await read(kv, _plan("scoped"))
    assert "keystore.p12" in values


async def test_a_missing_disabled_or_empty_password_keeps_the_secret(kv: Kvault) -> None:
    await kv.certificates.create(VAULT, "web", _policy())
    with pytest.raises(Refused) as refused:
        await read(kv, _plan())
    assert refused.value.reason == "ItemNotFound" and not refused.value.drop
    assert "data[tls].keystores.pkcs12.passwordRef: secret 'web-pw' was not found" in (
        refused.value.message
    )
    pinned = {"create": True, "passwordRef": {"name": "web-pw", "version": "0" * 32}}
    await kv.secrets.set(VAULT, "web-pw", PASSWORD)
    with pytest.raises(Refused) as refused:
        await read(kv, _plan(pkcs12_spec=pinned))
    assert f"'web-pw/{'0' * 32}' was not found" in refused.value.message
    await kv.secrets.update(VAULT, "web-pw", enabled=False)
    with pytest.raises(Refused) as refused:
        await read(kv, _plan())
    assert refused.value.reason == "ItemNotFound" and not refused.value.drop
    assert "secret 'web-pw' of vault main is disabled" in refused.value.message
    await kv.secrets.set(VAULT, "web-pw", "")
    with pytest.raises(Refused) as refused:
        await read(kv, _plan())
    assert refused.value.reason == "Error" and "must not be empty" in refused.value.message


async def test_what_the_crd_refuses_is_refused_here_too_naming_the_field(kv: Kvault) -> None:
    await kv.certificates.create(VAULT, "web", _policy())
    await kv.secrets.set(VAULT, "web-pw", PASSWORD)
    cases = (
        (
            _plan(pkcs12_spec={"create": True, "passwordRef": {"name": "web-pw"}, "profile": "X"}),
            "data[tls].keystores.pkcs12.profile must be one of Modern2023, LegacyDES, got 'X'",
        ),
        (
            _plan(pkcs12_spec={"create": True, "passwordRef": {"kind": "Key", "name": "web-pw"}}),
            "data[tls].keystores.pkcs12.passwordRef must name a vault secret",
        ),
        (
            _plan(kind="Secret"),
            "data[tls].keystores applies to remoteRef.kind Certificate only",
        ),
    )
    for plan, words in cases:
        with pytest.raises(Refused) as refused:
            await read(kv, plan)
        assert refused.value.reason == "Error" and words in refused.value.message


def test_the_refresh_index_follows_the_password_and_the_crd_offers_the_profiles() -> None:
    vault, items, lists = interesting_items(_body())
    assert (vault, items, lists) == (VAULT, {"web", "web-pw"}, False)
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    entry = schema["properties"]["spec"]["properties"]["data"]["items"]
    pkcs12_schema = entry["properties"]["keystores"]["properties"]["pkcs12"]
    assert pkcs12_schema["properties"]["profile"]["enum"] == list(PKCS12_PROFILES)
    assert list(PKCS12_PROFILES) == list(p12.PROFILES)
    assert pkcs12_schema["properties"]["profile"]["default"] == PKCS12_PROFILES[0]


def test_templates_pass_a_keystore_on_whole_only() -> None:
    class Fixed:
        def settle(self, current: bytes | None) -> bytes:
            return b"\x30\x80binary"

    store = Fixed()
    values: dict[str, Value] = {"keystore.p12": store, "tls.crt": "PEM"}
    out = render(values, {"app.p12": " {{ .keystore.p12 }} ", "crt": "{{ .tls.crt }}"})
    assert out == {"app.p12": store, "crt": "PEM"}
    for template in ("{{ .keystore.p12 | b64enc }}", "x{{ .keystore.p12 }}"):
        with pytest.raises(TemplateError) as err:
            render(values, {"k": template})
        assert "'keystore.p12' is binary" in str(err.value)


def test_binary_values_hash_apart_from_text_and_text_hashes_as_before() -> None:
    text = {"a": "1", "b": "x"}
    canonical = json.dumps(dict(sorted(text.items())), separators=(",", ":"))
    before = hashlib.sha256(b"kvault/v1\0u\0" + canonical.encode()).hexdigest()
    assert content_hash("u", text) == "sha256:" + before  # no re-sync of existing Secrets
    assert content_hash("u", {"a": b"1"}) != content_hash("u", {"a": "1"})
    assert content_hash("u", {"a": b"1"}) != content_hash("u", {"a": b"2"})


class FakeKube:
    """The API calls of VaultSecret syncs: its ServiceAccount, the Secret (kept as applied, so
    the next sync sees it), Events."""

    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []
        self.secret: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []

    async def get(self, path: str, params: Any = None) -> dict[str, Any]:
        if "/serviceaccounts/" in path:
            return {"metadata": {"name": path.rpartition("/")[2], "namespace": "team-a"}}
        if path.endswith("/secrets/vs") and self.secret is not None:
            return copy.deepcopy(self.secret)
        raise KubeApiError(404, "Not Found", "not found")

    async def apply(self, path: str, body: Any, *, field_manager: str) -> dict[str, Any]:
        self.applied.append(json.loads(json.dumps(body)))
        self.secret = json.loads(json.dumps(body))
        self.secret["metadata"]["uid"] = "secret-uid"
        return dict(body)

    async def delete(self, path: str, body: Any = None) -> dict[str, Any]:
        self.secret = None
        return {}

    async def post(self, path: str, body: Any) -> dict[str, Any]:
        self.events.append(json.loads(json.dumps(body)))
        return dict(body)


async def test_syncs_keep_the_files_until_password_profile_or_certificate_change(
    kv: Kvault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _chain(kv)
    await kv.secrets.set(VAULT, "web-pw", PASSWORD)
    fake = FakeKube()
    kube = cast(KubeClient, fake)
    events = EventPoster(kube, manager="kvault", api_version="kvault.io/v1alpha1")
    projector = Projector(kv, kube, events, Options())
    body = _body()

    async def sync(body: dict[str, Any]) -> Any:
        result = await projector.sync(body, plan_of(body, 0))
        body["status"] = {k: v for k, v in result.status.items() if v is not None}
        return result

    def files() -> dict[str, bytes]:
        assert fake.secret is not None
        data = fake.secret["data"]
        return {k: base64.b64decode(data[k]) for k in ("keystore.p12", "truststore.p12")}

    first = await sync(body)
    assert first.reason == "Synced" and first.wrote
    written = files()
    assert pkcs12.load_pkcs12(written["keystore.p12"], PASSWORD.encode()).key is not None

    again = await sync(body)  # nothing new: the same bytes, no write, the same hash
    assert again.reason == "Synced" and not again.wrote
    assert again.content_hash == first.content_hash and files() == written
    assert len(fake.applied) == 1

    # The password changes: new files, under the new password only.
    await kv.secrets.set(VAULT, "web-pw", PASSWORD + "-2")
    changed = await sync(body)
    assert changed.wrote and changed.content_hash != first.content_hash
    rotated = files()
    for name in rotated:
        with pytest.raises(ValueError):
            pkcs12.load_pkcs12(rotated[name], PASSWORD.encode())
        pkcs12.load_pkcs12(rotated[name], (PASSWORD + "-2").encode())
    (facts,) = changed.status["certificates"]
    assert facts["passwordVersion"] == (await kv.secrets.get(VAULT, "web-pw")).properties.version
    assert not (await sync(body)).wrote

    # Another profile: new files in its algorithms.
    legacy = _body(
        pkcs12_spec={"create": True, "passwordRef": {"name": "web-pw"}, "profile": "LegacyDES"}
    )
    legacy["status"] = body["status"]
    assert (await sync(legacy)).wrote
    assert p12.protection(files()["keystore.p12"]) == p12.expected("LegacyDES", with_key=True)
    assert not (await sync(legacy)).wrote

    # A Secret someone edited is put right.
    assert fake.secret is not None
    fake.secret["data"]["keystore.p12"] = base64.b64encode(b"edited").decode()
    assert (await sync(legacy)).wrote
    assert files()["keystore.p12"] != b"edited"

    # A renewal: new files holding the new version's key.
    renewed = await kv.certificates.renew(VAULT, "web")
    assert (await sync(legacy)).wrote
    cert = pkcs12.load_pkcs12(files()["keystore.p12"], (PASSWORD + "-2").encode()).cert
    assert cert is not None
    assert cert.certificate.public_bytes(DER) == renewed.cer

    # A denial drops the Secret and says why, without the password.
    denied = _body("no-password")
    denied["status"] = legacy["status"]
    refused = await projector.sync(denied, plan_of(denied, 0))
    await events.drain()
    assert refused.reason == "Forbidden" and fake.secret is None
    assert refused.status["contentHash"] is None
    assert {e["reason"] for e in fake.events} >= {"Synced", "Forbidden"}
    assert "not synced: Forbidden" in caplog.text
    shown = json.dumps(
        [
            [r["metadata"].get("annotations") for r in fake.applied],
            fake.events,
            body["status"],
            legacy["status"],
            refused.status,
            caplog.text,
        ]
    )
    for secret in (PASSWORD, PASSWORD + "-2", base64.b64encode(PASSWORD.encode()).decode()):
        assert secret not in shown
    assert "PRIVATE" not in shown


async def test_a_template_renames_a_keystore_and_it_stays_stable(kv: Kvault) -> None:
    await kv.certificates.create(VAULT, "web", _policy())
    await kv.secrets.set(VAULT, "web-pw", PASSWORD)
    fake = FakeKube()
    kube = cast(KubeClient, fake)
    events = EventPoster(kube, manager="kvault", api_version="kvault.io/v1alpha1")
    projector = Projector(kv, kube, events, Options())
    body = _body(templates={"app.p12": "{{ .keystore.p12 }}", "app.crt": "{{ .tls.crt }}"})
    first = await projector.sync(body, plan_of(body, 0))
    assert first.wrote and first.keys == ("app.crt", "app.p12")
    second = await projector.sync(body, plan_of(body, 0))
    assert not second.wrote and second.content_hash == first.content_hash
    assert fake.secret is not None
    store = base64.b64decode(fake.secret["data"]["app.p12"])
    assert pkcs12.load_pkcs12(store, PASSWORD.encode()).key is not None
    bad = _body(templates={"app.p12": "{{ .keystore.p12 | b64enc }}"})
    refused = await projector.sync(bad, plan_of(bad, 0))
    assert refused.reason == "Error"
    (ready, _) = refused.status["conditions"]
    assert "'keystore.p12' is binary" in ready["message"]
