"""The async CertificateClient (aiohttp transport) against ``kvault server --dev`` on both HSM
plugins: Self and HSM-key policies, Unknown + merge, cancel and delete of a pending operation,
versions and listings, properties and policy, import, the lifecycle with the managed key and
secret, backup/restore, contacts, issuers and a ``kvault-ca`` chain; the certificate's key used
through the async CryptographyClient."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.keyvault.certificates import (
    AdministratorContact,
    CertificateContact,
    CertificateContentType,
    CertificateOperation,
    CertificatePolicy,
    KeyCurveName,
    KeyType,
    KeyUsageType,
    KeyVaultCertificate,
)
from azure.keyvault.certificates.aio import CertificateClient
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.keys.crypto import SignatureAlgorithm
from azure.keyvault.secrets.aio import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.api.certs_support import (
    CLIENT_AUTH,
    PEM,
    PKCS12,
    SERVER_AUTH,
    TestCA,
    acreate_raw,
    async_cert_client,
    async_secret_client,
    ca_policy,
    check_issued,
    csr_of,
    der_pem,
    load_cer,
    open_secret,
    openssl_pkcs12_nodes,
    openssl_verify,
    same_public,
    sans,
    sign_alg,
    verify_with_cert,
)
from tests.api.conftest import unique
from tests.api.keys_support import (
    KeyServer,
    aclosing_all,
    async_crypto_client,
    async_key_client,
    digest,
    key_server,
)
from tests.api.test_certificates_sdk import _pem, _pfx, inner

__all__ = ["key_server"]


@pytest.fixture
async def certs(key_server: KeyServer) -> AsyncIterator[CertificateClient]:
    async with async_cert_client(key_server) as c:
        yield c


@pytest.fixture
async def secrets(key_server: KeyServer) -> AsyncIterator[SecretClient]:
    async with async_secret_client(key_server) as c:
        yield c


@pytest.fixture
async def keys(key_server: KeyServer) -> AsyncIterator[KeyClient]:
    async with async_key_client(key_server) as c:
        yield c


@pytest.fixture(scope="module")
def test_ca() -> TestCA:
    return TestCA.make("kvault aio test CA")


async def check_linked(
    server: KeyServer,
    secrets: SecretClient,
    keys: KeyClient,
    cert: KeyVaultCertificate,
    *,
    content_type: str,
    exportable: bool,
    kty: str,
    chain: tuple[x509.Certificate, ...] = (),
) -> None:
    """The secret (``sid``) holds the bundle; the key (``kid``) signs for the certificate."""
    leaf = load_cer(cert.cer)
    version = cert.properties.version
    assert version is not None
    secret = await secrets.get_secret(cert.name, version)
    assert secret.id == cert.secret_id and secret.properties.managed is True
    assert secret.properties.content_type == content_type
    assert secret.properties.key_id == cert.key_id
    assert secret.value is not None
    bundle = open_secret(secret.value, content_type)
    assert bundle.certs == [leaf, *chain]
    if exportable:
        assert bundle.key is not None and same_public(bundle.key, leaf.public_key())
    else:
        assert bundle.key is None and b"PRIVATE KEY" not in bundle.raw
    if content_type == PKCS12:
        out = openssl_pkcs12_nodes(bundle.raw)
        assert ("-----BEGIN PRIVATE KEY-----" in out) is exportable

    key = await keys.get_key(cert.name, version)
    assert key.id == cert.key_id and key.properties.managed is True
    assert key.key_type == kty
    alg = sign_alg(leaf)
    crypto = async_crypto_client(server, key)
    async with aclosing_all(crypto):
        d = digest(alg)
        signed = await crypto.sign(SignatureAlgorithm(alg), d)
        verify_with_cert(leaf, alg, d, signed.signature)
        assert (await crypto.verify(SignatureAlgorithm(alg), d, signed.signature)).is_valid


@pytest.mark.parametrize(
    "kty, extra, content_type",
    [
        ("RSA", {"key_size": 2048}, PEM),
        ("EC", {"key_curve_name": KeyCurveName.p_384}, PKCS12),
        ("RSA-HSM", {"key_size": 2048, "exportable": False}, PKCS12),
        ("EC-HSM", {"key_curve_name": KeyCurveName.p_256, "exportable": False}, PEM),
    ],
    ids=["rsa-pem", "ec384-pkcs12", "rsa-hsm-pkcs12", "ec-hsm-pem"],
)
async def test_create_self_signed(
    key_server: KeyServer,
    certs: CertificateClient,
    secrets: SecretClient,
    keys: KeyClient,
    kty: str,
    extra: dict[str, Any],
    content_type: str,
) -> None:
    name = unique("aself")
    policy = CertificatePolicy(
        "Self",
        subject="CN=aio.example",
        san_dns_names=["aio.example"],
        san_emails=["aio@example.com"],
        san_user_principal_names=["aio@corp.example"],
        key_type=KeyType(kty),
        content_type=CertificateContentType(content_type),
        enhanced_key_usage=[CLIENT_AUTH],
        key_usage=[KeyUsageType.digital_signature],
        validity_in_months=4,
        **extra,
    )
    cert = await certs.create_certificate(name, policy)
    assert isinstance(cert, KeyVaultCertificate)
    assert cert.policy is not None and cert.policy.key_type == kty
    assert cert.policy.exportable is extra.get("exportable", True)
    leaf = load_cer(cert.cer)
    check_issued(
        leaf,
        subject="CN=aio.example",
        created=cert.properties.created_on,
        months=4,
        dns=("aio.example",),
        emails=("aio@example.com",),
        upns=("aio@corp.example",),
        eku=(CLIENT_AUTH,),
        key_usage=("digitalSignature",),
    )
    openssl_verify([leaf], leaf)
    await check_linked(
        key_server,
        secrets,
        keys,
        cert,
        content_type=content_type,
        exportable=extra.get("exportable", True),
        kty=kty,
    )


async def test_unknown_merge_cancel_and_delete(
    key_server: KeyServer,
    certs: CertificateClient,
    secrets: SecretClient,
    keys: KeyClient,
    test_ca: TestCA,
) -> None:
    name = unique("amerge")
    policy = CertificatePolicy(
        "Unknown",
        subject="CN=amerge.example",
        san_dns_names=["amerge.example"],
        key_type=KeyType.ec,
        content_type=CertificateContentType.pem,
    )
    op = await certs.create_certificate(name, policy)
    assert isinstance(op, CertificateOperation) and op.status == "inProgress"
    csr = csr_of(await certs.get_certificate_operation(name))
    assert sans(csr)["dns"] == ["amerge.example"]
    leaf = test_ca.sign_csr(csr)
    merged = await certs.merge_certificate(
        name, [leaf.public_bytes(serialization.Encoding.DER), der_pem(test_ca.cert)]
    )
    assert load_cer(merged.cer) == leaf
    openssl_verify([test_ca.cert], leaf)
    await check_linked(
        key_server,
        secrets,
        keys,
        merged,
        content_type=PEM,
        exportable=True,
        kty="EC",
        chain=(test_ca.cert,),
    )
    assert (await certs.get_certificate_operation(name)).status == "completed"

    pending = unique("acancel")
    await certs.create_certificate(pending, policy)
    cancelled = await certs.cancel_certificate_operation(pending)
    assert cancelled.cancellation_requested is True and cancelled.status != "inProgress"
    deleted = await certs.delete_certificate_operation(pending)
    assert deleted.name == pending
    with pytest.raises(ResourceNotFoundError):
        await certs.get_certificate_operation(pending)
    with pytest.raises(ResourceNotFoundError):
        await certs.get_certificate(pending)

    # Delete without cancel: the version is never created.
    gone = unique("adelop")
    await certs.create_certificate(gone, policy)
    other_csr = csr_of(await certs.get_certificate_operation(gone))
    await certs.delete_certificate_operation(gone)
    with pytest.raises(ResourceNotFoundError):
        await certs.merge_certificate(
            gone, [test_ca.sign_csr(other_csr).public_bytes(serialization.Encoding.DER)]
        )


async def test_list_include_pending(certs: CertificateClient, test_ca: TestCA) -> None:
    """``include_pending``: the certificate whose only version waits for its merge is listed
    only when asked for (disabled, no thumbprint), on every page; once merged, always."""
    pending, done = unique("aincpend"), unique("aincdone")
    await certs.create_certificate(
        pending, CertificatePolicy("Unknown", subject="CN=p", key_type=KeyType.ec)
    )
    await certs.create_certificate(
        done, CertificatePolicy("Self", subject="CN=d", key_type=KeyType.ec)
    )

    async def listed(**kwargs: Any) -> dict[str, Any]:
        return {
            p.name: p
            async for p in certs.list_properties_of_certificates(**kwargs)
            if p.name in (pending, done)
        }

    assert set(await listed()) == set(await listed(include_pending=False)) == {done}
    both = await listed(include_pending=True, max_page_size=1)
    assert set(both) == {pending, done}
    assert both[pending].enabled is False and both[pending].x509_thumbprint is None
    assert both[done].x509_thumbprint

    csr = csr_of(await certs.get_certificate_operation(pending))
    leaf = test_ca.sign_csr(csr).public_bytes(serialization.Encoding.DER)
    await certs.merge_certificate(pending, [leaf])
    merged = await listed()
    assert set(merged) == {pending, done} and merged[pending].enabled is True


async def test_update_issuer_clears_replaced_parts(certs: CertificateClient) -> None:
    """``update_issuer``: members not sent (or null) stay; a sent ``org_details`` or
    ``credentials`` replaces that part whole, clearing what it leaves out."""
    name = unique("aupd")
    jane = AdministratorContact(first_name="Jane", email="jane@contoso.com")
    await certs.create_issuer(
        name,
        "DigiCert",
        account_id="acct",
        password="pw",
        organization_id="org-1",
        admin_contacts=[jane],
    )

    def state(i: Any) -> tuple[Any, ...]:
        emails = [a.email for a in i.admin_contacts or []]
        return i.provider, i.account_id, i.organization_id, emails, i.enabled

    kept = await certs.update_issuer(name, enabled=False)
    assert state(kept) == ("DigiCert", "acct", "org-1", ["jane@contoso.com"], False)
    no_admins = await certs.update_issuer(name, organization_id="org-1")
    assert state(no_admins) == ("DigiCert", "acct", "org-1", [], False)
    no_org = await certs.update_issuer(name, admin_contacts=[jane])
    assert state(no_org) == ("DigiCert", "acct", None, ["jane@contoso.com"], False)
    no_account = await certs.update_issuer(name, password="pw-2")
    assert state(no_account) == ("DigiCert", None, None, ["jane@contoso.com"], False)
    r = await certs.send_request(
        HttpRequest("PATCH", f"/certificates/issuers/{name}", json={"org_details": None})
    )
    assert r.status_code == 200
    assert state(await certs.get_issuer(name)) == state(no_account)


async def test_versions_listings_properties_policy(certs: CertificateClient) -> None:
    name = unique("aversions")
    policy = CertificatePolicy("Self", subject="CN=aversions", key_type=KeyType.ec)
    made = []
    for _ in range(3):
        cert = await certs.create_certificate(name, policy)
        made.append(cert.properties.version)
    latest = await certs.get_certificate(name)
    assert latest.properties.version == made[-1] and latest.policy is not None
    first = await certs.get_certificate_version(name, made[0])
    assert first.policy is None and first.properties.version == made[0]

    pages = certs.list_properties_of_certificate_versions(name, max_page_size=1).by_page()
    versions = []
    page_count = 0
    async for page in pages:
        page_count += 1
        versions += [p.version async for p in page]
    assert page_count >= 3 and sorted(versions) == sorted(made)
    names = [p.name async for p in certs.list_properties_of_certificates(max_page_size=1)]
    assert names.count(name) == 1

    updated = await certs.update_certificate_properties(name, tags={"k": "v"})
    assert updated.properties.tags == {"k": "v"}
    changed = await certs.update_certificate_policy(
        name, CertificatePolicy("Self", subject="CN=aversions v2", validity_in_months=2)
    )
    assert changed.subject == "CN=aversions v2" and changed.validity_in_months == 2
    assert changed.key_type == "EC"
    assert (await certs.get_certificate_policy(name)).subject == "CN=aversions v2"


@pytest.mark.parametrize("form", ["pfx-password", "pem-with-key"])
async def test_import(
    key_server: KeyServer,
    certs: CertificateClient,
    secrets: SecretClient,
    keys: KeyClient,
    test_ca: TestCA,
    form: str,
) -> None:
    name = unique("aimport")
    key, leaf = test_ca.leaf("aimport.example", key=ec.generate_private_key(ec.SECP384R1()))
    if form == "pfx-password":
        cert = await certs.import_certificate(
            name, _pfx(key, leaf, [test_ca.cert], b"pw"), password="pw"
        )
        content_type = PKCS12
    else:
        cert = await certs.import_certificate(
            name,
            _pem(key, leaf, [test_ca.cert]),
            policy=CertificatePolicy(
                "Unknown", subject="CN=aimport.example", content_type=CertificateContentType.pem
            ),
        )
        content_type = PEM
    assert load_cer(cert.cer) == leaf
    assert cert.policy is not None and cert.policy.key_curve_name == "P-384"
    await check_linked(
        key_server,
        secrets,
        keys,
        cert,
        content_type=content_type,
        exportable=True,
        kty="EC",
        chain=(test_ca.cert,),
    )


async def test_lifecycle_moves_key_and_secret(
    certs: CertificateClient, secrets: SecretClient, keys: KeyClient
) -> None:
    name = unique("alife")
    cert = await certs.create_certificate(
        name, CertificatePolicy("Self", subject="CN=alife", key_type=KeyType.ec)
    )
    value = (await secrets.get_secret(name)).value
    blob = await certs.backup_certificate(name)
    with pytest.raises(ResourceExistsError):
        await certs.restore_certificate_backup(blob)

    deleted = await certs.delete_certificate(name)
    assert deleted.recovery_id and deleted.scheduled_purge_date
    for read in (certs.get_certificate, secrets.get_secret, keys.get_key):
        with pytest.raises(ResourceNotFoundError):
            await read(name)
    assert name in [d.name async for d in certs.list_deleted_certificates()]
    await certs.recover_deleted_certificate(name)
    assert (await certs.get_certificate(name)).cer == cert.cer
    assert (await secrets.get_secret(name)).value == value
    assert (await keys.get_key(name)).id == cert.key_id

    await certs.delete_certificate(name)
    await certs.purge_deleted_certificate(name)
    for read in (certs.get_deleted_certificate, secrets.get_deleted_secret, keys.get_deleted_key):
        with pytest.raises(ResourceNotFoundError):
            await read(name)

    restored = await certs.restore_certificate_backup(blob)
    assert restored.properties.version == cert.properties.version
    assert restored.cer == cert.cer
    assert (await secrets.get_secret(name)).value == value
    assert (await keys.get_key(name)).properties.managed is True


async def test_managed_items_refuse_direct_writes(
    certs: CertificateClient, secrets: SecretClient, keys: KeyClient
) -> None:
    name = unique("amanaged")
    await certs.create_certificate(name, CertificatePolicy("Self", subject="CN=m"))
    for write, code in (
        (lambda: secrets.set_secret(name, "x"), "SecretManagedByKeyVault"),
        (lambda: secrets.update_secret_properties(name, enabled=False), "SecretManagedByKeyVault"),
        (lambda: secrets.delete_secret(name), "SecretManagedByKeyVault"),
        (lambda: keys.delete_key(name), "KeyManagedByKeyVault"),
        (lambda: keys.update_key_properties(name, tags={"a": "b"}), "KeyManagedByKeyVault"),
    ):
        with pytest.raises(HttpResponseError) as err:
            await write()
        assert inner(err) == (403, "Forbidden", code)
    managed = {p.name: p.managed async for p in secrets.list_properties_of_secrets()}
    assert managed[name] is True


async def test_contacts_and_issuers(certs: CertificateClient) -> None:
    await certs.set_contacts([CertificateContact(email="a@contoso.com", name="A", phone="1")])
    assert [c.email for c in await certs.get_contacts()] == ["a@contoso.com"]
    assert [c.email for c in await certs.delete_contacts()] == ["a@contoso.com"]
    with pytest.raises(ResourceNotFoundError):
        await certs.get_contacts()

    name = unique("aissuer")
    made = await certs.create_issuer(name, "GlobalSign", account_id="acct", password="pw")
    assert made.provider == "GlobalSign" and made.account_id == "acct"
    assert (await certs.get_issuer(name)).provider == "GlobalSign"
    assert name in [i.name async for i in certs.list_properties_of_issuers()]
    updated = await certs.update_issuer(name, provider="DigiCert")
    assert updated.provider == "DigiCert" and updated.account_id == "acct"
    await certs.delete_issuer(name)
    with pytest.raises(ResourceNotFoundError):
        await certs.get_issuer(name)


@pytest.mark.parametrize("ca_kty", ["EC-HSM", "RSA"])
async def test_kvault_ca_chain(
    key_server: KeyServer,
    certs: CertificateClient,
    secrets: SecretClient,
    keys: KeyClient,
    ca_kty: str,
) -> None:
    ca_name, issuer, leaf_name = unique("aca"), unique("aiss"), unique("aleaf")
    doc = await acreate_raw(certs, ca_name, ca_policy(f"CN={ca_name}", ca_kty))
    ca_cert = load_cer(base64.b64decode(doc["cer"]))
    check_issued(
        ca_cert,
        subject=f"CN={ca_name}",
        created=None,
        months=24,
        eku=(),
        key_usage=("keyCertSign", "cRLSign", "digitalSignature"),
        ca=True,
    )
    await certs.create_issuer(issuer, "kvault-ca", account_id=ca_name)
    cert = await certs.create_certificate(
        leaf_name,
        CertificatePolicy(
            issuer,
            subject=f"CN={leaf_name}",
            san_dns_names=[f"{leaf_name}.example"],
            content_type=CertificateContentType.pkcs12,
            key_type=KeyType.ec,
        ),
    )
    assert isinstance(cert, KeyVaultCertificate)
    leaf = load_cer(cert.cer)
    assert leaf.issuer == ca_cert.subject
    check_issued(
        leaf,
        subject=f"CN={leaf_name}",
        created=cert.properties.created_on,
        months=12,
        dns=(f"{leaf_name}.example",),
        eku=(SERVER_AUTH, CLIENT_AUTH),
    )
    openssl_verify([ca_cert], leaf, purpose="sslclient")
    await check_linked(
        key_server,
        secrets,
        keys,
        cert,
        content_type=PKCS12,
        exportable=True,
        kty="EC",
        chain=(ca_cert,),
    )
