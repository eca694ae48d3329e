"""Every built-in role x every secrets, keys and certificates operation x both scopes: exactly
the role's data actions are allowed; every denial is a 403 ForbiddenByRbac and a line in the
audit log. Certificates add the reads of a certificate's own key and secret (through the keys
and secrets API), which the key and secret roles govern, not the certificate roles.

The expected sets are written out by hand from Azure's built-in role definitions (what a user
of Azure expects), not derived from ``kvault.identity.rbac``."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import pkcs12

from kvault.api.app import build_app
from kvault.api.config import ApiConfig
from kvault.identity.model import Principal, RoleAssignment
from kvault.identity.rbac import KIND_ACTIONS, ROLES
from kvault.identity.static import StaticTokens
from kvault.vault.service import Kvault
from tests.api.certs_support import TestCA

READ = {"SecretGet", "SecretList", "SecretListVersions", "SecretGetDeleted", "SecretListDeleted"}
METADATA = READ - {"SecretGet"}
ALL = READ | {
    "SecretSet",
    "SecretUpdate",
    "SecretDelete",
    "SecretRecover",
    "SecretPurge",
    "SecretBackup",
    "SecretRestore",
}
KEY_READ = {"KeyGet", "KeyList", "KeyListVersions", "KeyGetDeleted", "KeyListDeleted"}
KEY_CRYPTO = {"KeyEncrypt", "KeyDecrypt", "KeySign", "KeyVerify", "KeyWrapKey", "KeyUnwrapKey"}
KEY_ALL = (
    KEY_READ
    | KEY_CRYPTO
    | {
        "KeyCreate",
        "KeyImport",
        "KeyUpdate",
        "KeyDelete",
        "KeyRecover",
        "KeyPurge",
        "KeyBackup",
        "KeyRestore",
        "KeyRotate",
        "KeyGetRotationPolicy",
        "KeySetRotationPolicy",
    }
)
#: Certificates (Microsoft.KeyVault/vaults/certificates/read): the certificate, its versions,
#: the deleted ones, its pending operation and its policy.
CERT_READ = {
    "CertificateGet",
    "CertificateList",
    "CertificateListVersions",
    "CertificateGetDeleted",
    "CertificateListDeleted",
    "CertificateGetOperation",
    "CertificateGetPolicy",
}
#: certificates/* : create (and merge), import, update (attributes, policy, the pending
#: operation), delete, recover, purge, backup, restore.
CERT_ALL = CERT_READ | {
    "CertificateCreate",
    "CertificateImport",
    "CertificateMerge",
    "CertificateUpdate",
    "CertificateDelete",
    "CertificateRecover",
    "CertificatePurge",
    "CertificateBackup",
    "CertificateRestore",
    "CertificateUpdateOperation",
    "CertificateDeleteOperation",
    "CertificateSetPolicy",
}
#: certificatecas/read, and certificatecas/write + delete.
ISSUERS_READ = {"CertificateGetIssuer", "CertificateListIssuers"}
ISSUERS_WRITE = {"CertificateSetIssuer", "CertificateDeleteIssuer"}
#: Contacts: Azure's only contacts data action is certificatecontacts/write ("Manage
#: Certificate Contact"); the access-policy permission of Get/Set/DeleteCertificateContacts is
#: ManageContacts, which Microsoft's access-policy-to-RBAC mapping turns into
#: certificatecontacts/write. There is no certificatecontacts/read for */read to match: reading
#: the contacts takes the write action, as every contacts operation does.
CONTACTS = {
    "CertificateGetContacts",
    "CertificateSetContacts",
    "CertificateDeleteContacts",
}
#: A certificate's own secret and key, through the secrets and keys API: governed by the
#: secret and key data actions (secrets/getSecret/action, keys/read, keys/sign/action).
CERT_SECRET_GET = "CertificateSecretGet"
CERT_KEY_GET = "CertificateKeyGet"
CERT_KEY_SIGN = "CertificateKeySign"
#: The audited operation of those requests.
AUDITED = {CERT_SECRET_GET: "SecretGet", CERT_KEY_GET: "KeyGet", CERT_KEY_SIGN: "KeySign"}
#: POST /rng. Azure defines no data action for it on vaults (Managed HSM has rng/action);
#: kvault grants it with the key-managing roles (Administrator, Crypto Officer), not readers.
RNG = "KeyGetRandomBytes"
#: From the Azure built-in roles table (docs/azure-api.md section 6.1), written out by hand.
#: Keys: Crypto Officer = keys/* + keyrotationpolicies/*; Crypto User = keys/read, update,
#: backup and the six crypto actions (no rotation policy); Crypto Service Encryption User =
#: keys/read, wrap, unwrap; Reader = */read (key metadata and public key, the rotation
#: policy) but no cryptographic operation; Secrets roles and Certificates Officer: no keys.
#: Certificates: Certificates Officer = certificatecas/*, certificates/*,
#: certificatecontacts/write (everything on certificates, issuers and contacts, but not the
#: certificate's key or secret); Certificate User = certificates/read, secrets/getSecret +
#: readMetadata, keys/read (the certificate, its secret and its key, no issuers or contacts);
#: Reader = */read (certificate metadata, policy, operation, issuers; not a secret's value);
#: the secrets and keys roles: nothing on certificates, but their own action on the
#: certificate's secret or key (Secrets User reads a certificate-backed secret).
EXPECTED = {
    "Key Vault Administrator": ALL
    | KEY_ALL
    | {RNG}
    | CERT_ALL
    | ISSUERS_READ
    | ISSUERS_WRITE
    | CONTACTS
    | {CERT_SECRET_GET, CERT_KEY_GET, CERT_KEY_SIGN},
    "Key Vault Secrets Officer": ALL | {CERT_SECRET_GET},
    "Key Vault Secrets User": READ | {CERT_SECRET_GET},
    "Key Vault Crypto Officer": KEY_ALL | {RNG, CERT_KEY_GET, CERT_KEY_SIGN},
    "Key Vault Crypto User": KEY_READ
    | KEY_CRYPTO
    | {"KeyUpdate", "KeyBackup", CERT_KEY_GET, CERT_KEY_SIGN},
    "Key Vault Crypto Service Encryption User": KEY_READ
    | {"KeyWrapKey", "KeyUnwrapKey", CERT_KEY_GET},
    "Key Vault Crypto Service Release User": set(),
    "Key Vault Certificates Officer": CERT_ALL | ISSUERS_READ | ISSUERS_WRITE | CONTACTS,
    "Key Vault Certificate User": READ | KEY_READ | CERT_READ | {CERT_SECRET_GET, CERT_KEY_GET},
    "Key Vault Reader": METADATA
    | KEY_READ
    | {"KeyGetRotationPolicy"}
    | CERT_READ
    | ISSUERS_READ
    | {CERT_KEY_GET},
}
#: Operations on the whole vault: an assignment scoped to one item never allows them.
VAULT_LEVEL = {
    "SecretList",
    "SecretListDeleted",
    "SecretRestore",
    "KeyList",
    "KeyListDeleted",
    "KeyRestore",
    RNG,
    "CertificateList",
    "CertificateListDeleted",
    "CertificateRestore",
    *CONTACTS,
    *ISSUERS_READ,
    *ISSUERS_WRITE,
}


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


#: One RSA key imported wherever a cryptographic operation needs a key; inputs made locally.
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
_DIGEST = b"\x42" * 32
_RSA_N = RSA_KEY.private_numbers()
RSA_JWK = {
    "kty": "RSA",
    **{
        member: _b64u(value.to_bytes((value.bit_length() + 7) // 8, "big"))
        for member, value in (
            ("n", _RSA_N.public_numbers.n),
            ("e", _RSA_N.public_numbers.e),
            ("d", _RSA_N.d),
            ("p", _RSA_N.p),
            ("q", _RSA_N.q),
            ("dp", _RSA_N.dmp1),
            ("dq", _RSA_N.dmq1),
            ("qi", _RSA_N.iqmp),
        )
    },
}
_EC = ec.generate_private_key(ec.SECP256R1()).private_numbers()
EC_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": _b64u(_EC.public_numbers.x.to_bytes(32, "big")),
    "y": _b64u(_EC.public_numbers.y.to_bytes(32, "big")),
    "d": _b64u(_EC.private_value.to_bytes(32, "big")),
}
_CIPHERTEXT = _b64u(RSA_KEY.public_key().encrypt(b"secret", _OAEP))
_SIGNATURE = _b64u(RSA_KEY.sign(_DIGEST, padding.PKCS1v15(), Prehashed(hashes.SHA256())))
#: Certificates: EC P-256 (fast to make in 20 vaults), a PFX to import, a CA for merges.
CERT_POLICY = {
    "key_props": {"kty": "EC", "crv": "P-256"},
    "secret_props": {"contentType": "application/x-pem-file"},
    "x509_props": {"subject": "CN=rbac"},
    "issuer": {"name": "Self"},
}
PENDING_POLICY = {**CERT_POLICY, "issuer": {"name": "Unknown"}}
CA = TestCA.make("rbac matrix CA")
_PFX_KEY, _PFX_LEAF = CA.leaf("rbac import")
PFX = base64.b64encode(
    pkcs12.serialize_key_and_certificates(
        b"i", _PFX_KEY, _PFX_LEAF, [CA.cert], serialization.NoEncryption()
    )
).decode()
_POLICY = {
    "lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}}],
    "attributes": {"expiryTime": "P2Y"},
}
#: operation -> (method, path, body); NAME is the operation's own item.
REQUESTS: dict[str, tuple[str, str, Any]] = {
    "SecretSet": ("PUT", "/secrets/{name}", {"value": "new"}),
    "SecretGet": ("GET", "/secrets/{name}/", None),
    "SecretUpdate": ("PATCH", "/secrets/{name}/", {"contentType": "text/plain"}),
    "SecretList": ("GET", "/secrets", None),
    "SecretListVersions": ("GET", "/secrets/{name}/versions", None),
    "SecretDelete": ("DELETE", "/secrets/{name}", None),
    "SecretGetDeleted": ("GET", "/deletedsecrets/{name}", None),
    "SecretListDeleted": ("GET", "/deletedsecrets", None),
    "SecretRecover": ("POST", "/deletedsecrets/{name}/recover", None),
    "SecretPurge": ("DELETE", "/deletedsecrets/{name}", None),
    "SecretBackup": ("POST", "/secrets/{name}/backup", None),
    "SecretRestore": ("POST", "/secrets/restore", "BLOB"),
    "KeyCreate": ("POST", "/keys/{name}/create", {"kty": "EC", "crv": "P-256"}),
    "KeyImport": ("PUT", "/keys/{name}", {"key": EC_JWK}),
    "KeyGet": ("GET", "/keys/{name}/", None),
    "KeyUpdate": ("PATCH", "/keys/{name}/", {"tags": {"a": "b"}}),
    "KeyList": ("GET", "/keys", None),
    "KeyListVersions": ("GET", "/keys/{name}/versions", None),
    "KeyDelete": ("DELETE", "/keys/{name}", None),
    "KeyGetDeleted": ("GET", "/deletedkeys/{name}", None),
    "KeyListDeleted": ("GET", "/deletedkeys", None),
    "KeyRecover": ("POST", "/deletedkeys/{name}/recover", None),
    "KeyPurge": ("DELETE", "/deletedkeys/{name}", None),
    "KeyBackup": ("POST", "/keys/{name}/backup", None),
    "KeyRestore": ("POST", "/keys/restore", "KEYBLOB"),
    "KeyRotate": ("POST", "/keys/{name}/rotate", None),
    "KeyGetRotationPolicy": ("GET", "/keys/{name}/rotationpolicy", None),
    "KeySetRotationPolicy": ("PUT", "/keys/{name}/rotationpolicy", _POLICY),
    "KeyEncrypt": ("POST", "/keys/{name}//encrypt", {"alg": "RSA-OAEP", "value": "c2VjcmV0"}),
    "KeyDecrypt": ("POST", "/keys/{name}//decrypt", {"alg": "RSA-OAEP", "value": _CIPHERTEXT}),
    "KeySign": ("POST", "/keys/{name}//sign", {"alg": "RS256", "value": _b64u(_DIGEST)}),
    "KeyVerify": (
        "POST",
        "/keys/{name}//verify",
        {"alg": "RS256", "digest": _b64u(_DIGEST), "value": _SIGNATURE},
    ),
    "KeyWrapKey": ("POST", "/keys/{name}//wrapkey", {"alg": "RSA-OAEP", "value": _b64u(b"k" * 32)}),
    "KeyUnwrapKey": ("POST", "/keys/{name}//unwrapkey", {"alg": "RSA-OAEP", "value": _CIPHERTEXT}),
    RNG: ("POST", "/rng", {"count": 8}),
    "CertificateCreate": ("POST", "/certificates/{name}/create", {"policy": CERT_POLICY}),
    "CertificateImport": ("POST", "/certificates/{name}/import", {"value": PFX}),
    "CertificateMerge": ("POST", "/certificates/{name}/pending/merge", "MERGE"),
    "CertificateGet": ("GET", "/certificates/{name}/", None),
    "CertificateUpdate": ("PATCH", "/certificates/{name}/", {"tags": {"a": "b"}}),
    "CertificateList": ("GET", "/certificates", None),
    "CertificateListVersions": ("GET", "/certificates/{name}/versions", None),
    "CertificateDelete": ("DELETE", "/certificates/{name}", None),
    "CertificateGetDeleted": ("GET", "/deletedcertificates/{name}", None),
    "CertificateListDeleted": ("GET", "/deletedcertificates", None),
    "CertificateRecover": ("POST", "/deletedcertificates/{name}/recover", None),
    "CertificatePurge": ("DELETE", "/deletedcertificates/{name}", None),
    "CertificateBackup": ("POST", "/certificates/{name}/backup", None),
    "CertificateRestore": ("POST", "/certificates/restore", "CERTBLOB"),
    "CertificateGetOperation": ("GET", "/certificates/{name}/pending", None),
    "CertificateUpdateOperation": (
        "PATCH",
        "/certificates/{name}/pending",
        {"cancellation_requested": True},
    ),
    "CertificateDeleteOperation": ("DELETE", "/certificates/{name}/pending", None),
    "CertificateGetPolicy": ("GET", "/certificates/{name}/policy", None),
    "CertificateSetPolicy": (
        "PATCH",
        "/certificates/{name}/policy",
        {"x509_props": {"validity_months": 6}},
    ),
    "CertificateGetContacts": ("GET", "/certificates/contacts", None),
    "CertificateSetContacts": ("PUT", "/certificates/contacts", {"contacts": [{"email": "a@b.c"}]}),
    "CertificateDeleteContacts": ("DELETE", "/certificates/contacts", None),
    "CertificateGetIssuer": ("GET", "/certificates/issuers/{name}", None),
    "CertificateListIssuers": ("GET", "/certificates/issuers", None),
    "CertificateSetIssuer": ("PUT", "/certificates/issuers/{name}", {"provider": "DigiCert"}),
    "CertificateDeleteIssuer": ("DELETE", "/certificates/issuers/{name}", None),
    CERT_SECRET_GET: ("GET", "/secrets/{name}/", None),
    CERT_KEY_GET: ("GET", "/keys/{name}/", None),
    CERT_KEY_SIGN: ("POST", "/keys/{name}//sign", {"alg": "ES256", "value": _b64u(_DIGEST)}),
}
SCOPES = ("vault", "item")


def item(op: str) -> str:
    """The item an operation works on: ``get`` (secrets), ``key-get`` (keys), ``cert-get``
    (certificates; also the certificate whose secret or key the linked reads use)."""
    if op.startswith("Secret"):
        return op.lower().removeprefix("secret")
    if op.startswith("Certificate"):
        return "cert-" + op.lower().removeprefix("certificate")
    return "key-" + op.lower().removeprefix("key")


def scope_of(op: str) -> str:
    """The item scope of ``op``'s item (a certificate's secret and key are items of the
    secrets and keys of the vault: an assignment on the certificate does not reach them)."""
    if op.startswith("Secret") or op == CERT_SECRET_GET:
        return f"/secrets/{item(op)}"
    if op.startswith("Key") or op in (CERT_KEY_GET, CERT_KEY_SIGN):
        return f"/keys/{item(op)}"
    return f"/certificates/{item(op)}"


@dataclass(frozen=True)
class Case:
    vault: str
    token: str
    principal: str
    blob: str  # a backup of a purged secret, for restore
    key_blob: str  # a backup of a purged key, for restore
    cert_blob: str  # a backup of a purged certificate, for restore
    merge: dict[str, Any]  # the x5c that completes cert-merge's pending operation


async def _prepare(kv: Kvault, index: int, role: str, scope: str) -> Case:
    """A vault where one principal holds ``role`` at ``scope`` for each operation's item, and
    every item is in the state its operation needs to succeed."""
    vault, principal = f"m{index}-{scope}", f"user-{index}-{scope}"
    assignments = [
        RoleAssignment(principal, role, "/" if scope == "vault" else scope_of(op))
        for op in REQUESTS
    ]
    await kv.vaults.create(vault, retention_days=7, role_assignments=assignments)
    s = kv.secrets
    for op in ("SecretGet", "SecretUpdate", "SecretListVersions", "SecretDelete", "SecretBackup"):
        await s.set(vault, item(op), "v")
    for op in ("SecretGetDeleted", "SecretRecover", "SecretPurge"):
        await s.set(vault, item(op), "v")
        await s.delete(vault, item(op))
    await s.set(vault, "restored", "v")
    blob = await s.backup(vault, "restored")
    await s.delete(vault, "restored")
    await s.purge(vault, "restored")
    encoded = base64.urlsafe_b64encode(blob).decode().rstrip("=")

    k = kv.keys
    for op in KEY_CRYPTO:
        await k.import_key(vault, item(op), RSA_JWK)
    for op in (
        "KeyGet",
        "KeyUpdate",
        "KeyListVersions",
        "KeyDelete",
        "KeyBackup",
        "KeyRotate",
        "KeyGetRotationPolicy",
        "KeySetRotationPolicy",
    ):
        await k.create(vault, item(op), "EC")
    for op in ("KeyGetDeleted", "KeyRecover", "KeyPurge"):
        await k.create(vault, item(op), "EC")
        await k.delete(vault, item(op))
    await k.create(vault, "key-restored", "EC")
    key_blob = await k.backup(vault, "key-restored")
    await k.delete(vault, "key-restored")
    await k.purge(vault, "key-restored")

    c = kv.certificates
    for op in (
        "CertificateGet",
        "CertificateUpdate",
        "CertificateListVersions",
        "CertificateDelete",
        "CertificateBackup",
        "CertificateGetOperation",
        "CertificateGetPolicy",
        "CertificateSetPolicy",
        CERT_SECRET_GET,
        CERT_KEY_GET,
        CERT_KEY_SIGN,
    ):
        await c.create(vault, item(op), CERT_POLICY)
    for op in ("CertificateGetDeleted", "CertificateRecover", "CertificatePurge"):
        await c.create(vault, item(op), CERT_POLICY)
        await c.delete(vault, item(op))
    for op in ("CertificateUpdateOperation", "CertificateDeleteOperation", "CertificateMerge"):
        await c.create(vault, item(op), PENDING_POLICY)
    csr = (await c.get_operation(vault, item("CertificateMerge"))).csr
    assert csr is not None
    leaf = CA.sign_csr(x509.load_der_x509_csr(csr)).public_bytes(serialization.Encoding.DER)
    merge = {"x5c": [base64.b64encode(leaf).decode()]}
    await c.create(vault, "cert-restored", CERT_POLICY)
    cert_blob = await c.backup(vault, "cert-restored")
    await c.delete(vault, "cert-restored")
    await c.purge(vault, "cert-restored")
    await c.set_contacts(vault, [{"email": "ops@example.com", "name": "Ops"}])
    for op in ("CertificateGetIssuer", "CertificateDeleteIssuer"):
        await c.set_issuer(vault, item(op), {"provider": "DigiCert"})
    return Case(
        vault,
        f"token-{index}-{scope}",
        principal,
        encoded,
        _b64u(key_blob),
        _b64u(cert_blob),
        merge,
    )


@pytest.fixture
async def matrix(domain: Kvault) -> AsyncIterator[tuple[TestClient[Any, Any], dict[str, Case]]]:
    cases = {}
    for i, role in enumerate(ROLES):
        for scope in SCOPES:
            cases[f"{role}|{scope}"] = await _prepare(domain, i, role, scope)
    tokens = StaticTokens({c.token: Principal(c.principal) for c in cases.values()})
    app = build_app(ApiConfig(domain, tokens))
    async with TestClient(TestServer(app)) as client:
        yield client, cases


def _audit_lines(kv: Kvault) -> list[dict[str, Any]]:
    path = kv.core.auditor.path  # type: ignore[attr-defined]
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_roles_by_operation_and_scope(
    matrix: tuple[TestClient[Any, Any], dict[str, Case]], domain: Kvault
) -> None:
    client, cases = matrix
    assert set(EXPECTED) == set(ROLES)
    # Every key operation kvault knows is in the matrix ("Set" is import's alias, no route).
    assert {"Key" + verb for verb in KIND_ACTIONS["Key"]} - {"KeySet"} <= set(REQUESTS)
    # And every certificate operation (Renew is the scheduler's, with no route).
    cert_ops = {"Certificate" + verb for verb in KIND_ACTIONS["Certificate"]}
    assert cert_ops - {"CertificateSet", "CertificateRenew"} <= set(REQUESTS)
    outcomes: dict[tuple[str, str, str], tuple[int, str | None, str]] = {}
    for key, case in cases.items():
        role, scope = key.split("|")
        for op, (method, path, body) in REQUESTS.items():
            payload = (
                {
                    "BLOB": {"value": case.blob},
                    "KEYBLOB": {"value": case.key_blob},
                    "CERTBLOB": {"value": case.cert_blob},
                    "MERGE": case.merge,
                }.get(body, body)
                if isinstance(body, str)
                else body
            )
            async with client.request(
                method,
                path.format(name=item(op)) + "?api-version=7.5",
                json=payload,
                headers={
                    "Authorization": f"Bearer {case.token}",
                    "Host": f"{case.vault}.localhost",
                },
            ) as r:
                doc = await r.json() if r.status != 204 else {}
                inner = doc.get("error", {}).get("innererror", {}).get("code")
                if r.status >= 300 and inner is None:
                    inner = doc.get("error", {}).get("code")
                outcomes[(role, scope, op)] = (r.status, inner, r.headers["x-ms-request-id"])

    audit = {(a["request_id"], a["operation"]): a for a in _audit_lines(domain)}
    wrong: list[str] = []
    for (role, scope, op), (status, inner, request_id) in outcomes.items():
        allowed = op in EXPECTED[role] and (scope == "vault" or op not in VAULT_LEVEL)
        where = f"{role} at {scope} scope, {op}"
        audited = AUDITED.get(op, op)
        if allowed:
            if status not in (200, 201, 202, 204):
                wrong.append(f"{where}: expected success, got {status} {inner}")
                continue
            assert audit[(request_id, audited)]["outcome"] == "ok", where
        else:
            if (status, inner) != (403, "ForbiddenByRbac"):
                wrong.append(f"{where}: expected 403 ForbiddenByRbac, got {status} {inner}")
                continue
            line = audit[(request_id, audited)]
            assert line["outcome"] == "ForbiddenByRbac", where
            assert line["principal"] == cases[f"{role}|{scope}"].principal, where
    assert wrong == []
    assert len(outcomes) == len(ROLES) * len(SCOPES) * len(REQUESTS)
    denied = sum(1 for s, _, _ in outcomes.values() if s == 403)
    assert 0 < denied < len(outcomes)
