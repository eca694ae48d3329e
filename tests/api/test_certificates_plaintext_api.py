"""No certificate private key at rest in the clear. End to end through the SDK and ``kvault
server --dev`` on each HSM plugin: after creating (Self, Unknown + merge, a kvault CA and its
leaf; software and HSM keys), importing (PFX with a password, PEM), backing up (the blobs kept
in the data directory, as a user would), purging and restoring certificates, neither the data
directory (database, WAL, audit log, backups) nor what the server printed holds a private key:
no PEM or DER private key, no PKCS#8, no PFX (its bytes, which are the key under the empty
password), no raw private number (RSA d, p, q, dp, dq, qi; EC d) in raw, hex or base64 form.
Renewal has no REST route: it is checked in process (``Certificates.renew`` with the data
directory of a ``kv_factory`` kvault, each plugin), where every generated software key is
known too."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.certificates import (
    CertificateContentType,
    CertificatePolicy,
    KeyType,
    KeyVaultCertificate,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from kvault.vault.service import Kvault
from tests.api.certs_support import (
    PEM,
    PKCS12,
    TestCA,
    ca_policy,
    cert_client,
    create_raw,
    csr_of,
    open_secret,
    secret_client,
)
from tests.api.keys_support import KINDS, settled_output, start_key_server
from tests.fixtures.devserver import stop
from tests.fixtures.softhsm import SoftHSMEnv
from tests.vault.test_keys_plaintext import (
    binary_forms,
    generated,
    private_components,
    scan_binary,
)

__all__ = ["generated"]


def key_secrets(label: str, key: Any) -> dict[str, bytes]:
    """The private numbers of ``key`` and its PKCS#8/PKCS#1 DER tails, by name."""
    return {f"{label}.{m}": v for m, v in private_components(key).items()}


def bundle_secrets(label: str, value: str, content_type: str) -> dict[str, bytes]:
    """What of a certificate-backed secret's value must never be on disk: its key, the PEM
    key block, and the PFX bytes (slices from the start, the middle and the end)."""
    opened = open_secret(value, content_type)
    out: dict[str, bytes] = {}
    if opened.key is not None:
        out |= key_secrets(label, opened.key)
    if content_type == PEM:
        head, sep, _ = value.partition("-----END PRIVATE KEY-----")
        if sep:
            block = head.split("-----BEGIN PRIVATE KEY-----")[1].replace("\n", "")
            out[f"{label}.pem-key-line"] = base64.b64decode(block)[40:88]
    else:
        pfx = opened.raw
        middle = len(pfx) // 2
        out[f"{label}.pfx-head"] = pfx[:48]
        out[f"{label}.pfx-middle"] = pfx[middle : middle + 48]
        out[f"{label}.pfx-tail"] = pfx[-48:]
    return out


def scan(directory: Path, secrets: dict[str, bytes], **kwargs: Any) -> list[str]:
    """:func:`scan_binary`, and the same search in every file with its line breaks removed:
    a PEM body (or any base64 wrapped at 64 columns) hides a long value across lines."""
    leaks = scan_binary(directory, secrets, **kwargs)
    forms = {name: binary_forms(value) for name, value in secrets.items()}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes().replace(b"\r", b"").replace(b"\n", b"")
        for name, candidates in forms.items():
            if any(f in data for f in candidates):
                leaks.append(f"{path} holds {name} (across lines)")
    return sorted(set(leaks))


def output_leaks(output: bytes, secrets: dict[str, bytes]) -> list[str]:
    leaks = [
        f"the server printed {name}"
        for name, value in secrets.items()
        if any(form in output for form in binary_forms(value))
    ]
    if b"PRIVATE KEY-----" in output:
        leaks.append("the server printed a PEM private key")
    return leaks


@pytest.mark.parametrize("kind", KINDS)
def test_no_certificate_key_on_disk_or_in_the_output(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    token = None
    if kind == "pkcs11":
        softhsm: SoftHSMEnv = request.getfixturevalue("softhsm")
        token = softhsm.init_token()
    data = tmp_path / "data"
    server = start_key_server(kind, data, token)
    secrets: dict[str, bytes] = {}
    external = TestCA.make("plaintext test CA")
    try:
        with cert_client(server) as certs, secret_client(server) as values:

            def remember(name: str) -> None:
                secret = values.get_secret(name)
                assert secret.value is not None
                ct = secret.properties.content_type
                assert ct is not None
                secrets.update(
                    bundle_secrets(f"{name}@{secret.properties.version}", secret.value, ct)
                )

            # Create: Self (software and HSM keys, PFX and PEM).
            for name, kty, ct, exportable in (
                ("self-rsa", "RSA", PKCS12, True),
                ("self-ec", "EC", PEM, True),
                ("self-rsa-hsm", "RSA-HSM", PKCS12, False),
                ("self-ec-hsm", "EC-HSM", PEM, False),
            ):
                cert = certs.begin_create_certificate(
                    name,
                    CertificatePolicy(
                        "Self",
                        subject=f"CN={name}",
                        key_type=KeyType(kty),
                        exportable=exportable,
                        content_type=CertificateContentType(ct),
                    ),
                ).result()
                assert isinstance(cert, KeyVaultCertificate)
                remember(name)
                certs.begin_create_certificate(
                    name, certs.get_certificate_policy(name)
                ).result()  # a second version
                remember(name)

            # Unknown + merge (the key waits sealed in the pending operation meanwhile).
            certs.begin_create_certificate(
                "merged",
                CertificatePolicy(
                    "Unknown", subject="CN=merged", content_type=CertificateContentType.pem
                ),
            ).result()
            leaf = external.sign_csr(csr_of(certs.get_certificate_operation("merged")))
            certs.merge_certificate("merged", [leaf.public_bytes(serialization.Encoding.DER)])
            remember("merged")
            # A pending operation cancelled and deleted: its waiting key is destroyed.
            certs.begin_create_certificate(
                "abandoned", CertificatePolicy("Unknown", subject="CN=abandoned")
            ).result()
            certs.cancel_certificate_operation("abandoned")
            certs.delete_certificate_operation("abandoned")

            # A kvault CA (HSM key) and a leaf it signs.
            create_raw(certs, "ca", ca_policy("CN=plaintext CA", "RSA-HSM"))
            certs.create_issuer("ca-issuer", "kvault-ca", account_id="ca")
            certs.begin_create_certificate(
                "ca-leaf", CertificatePolicy("ca-issuer", subject="CN=ca-leaf")
            ).result()
            remember("ca-leaf")

            # Import: PFX with a password, PEM.
            rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            ec_key = ec.generate_private_key(ec.SECP384R1())
            secrets |= key_secrets("imported-rsa", rsa_key)
            secrets |= key_secrets("imported-ec", ec_key)
            _, rsa_leaf = external.leaf("imported-rsa", key=rsa_key)
            _, ec_leaf = external.leaf("imported-ec", key=ec_key)
            pfx = pkcs12.serialize_key_and_certificates(
                b"i",
                rsa_key,
                rsa_leaf,
                [external.cert],
                serialization.BestAvailableEncryption(b"import password"),
            )
            certs.import_certificate("imported-pfx", pfx, password="import password")
            remember("imported-pfx")
            pem = ec_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ) + ec_leaf.public_bytes(serialization.Encoding.PEM)
            certs.import_certificate(
                "imported-pem",
                pem,
                policy=CertificatePolicy(
                    "Unknown", subject="CN=x", content_type=CertificateContentType.pem
                ),
            )
            remember("imported-pem")

            # Backups a user keeps in the data directory; purge and restore the software ones.
            for name in ("self-rsa", "self-ec", "merged", "imported-pfx", "self-rsa-hsm"):
                blob = certs.backup_certificate(name)
                (data / f"{name}.backup").write_bytes(blob)
            for name in ("self-rsa", "imported-pem"):
                blob = certs.backup_certificate(name)
                certs.begin_delete_certificate(name).result()
                certs.purge_deleted_certificate(name)
                certs.restore_certificate_backup(blob)
                remember(name)
            certs.begin_delete_certificate("self-ec").result()
            certs.begin_recover_deleted_certificate("self-ec").result()
    finally:
        stop(server)

    assert len(secrets) > 30
    leaks = scan(data, secrets, own_keys=("tls",))
    leaks += output_leaks(settled_output(server).encode(), secrets)
    assert leaks == []
    assert (data / "kvault.db").exists() and (data / "audit.log").stat().st_size > 0


def _policy(kty: str, content_type: str, **key: Any) -> dict[str, Any]:
    return {
        "key_props": {"kty": kty, "exportable": not kty.endswith("-HSM"), **key},
        "secret_props": {"contentType": content_type},
        "x509_props": {"subject": f"CN=renew-{kty.lower()}", "validity_months": 1},
        "issuer": {"name": "Self"},
    }


async def test_renew_leaves_no_private_key_in_the_data_directory(
    kv: Kvault, tmp_path: Path, generated: list[Any]
) -> None:
    """``Certificates.renew`` (the scheduler's AutoRenew; no REST route) on each plugin, with
    and without ``reuse_key``, software and HSM keys; then backup, restore, delete, purge."""
    await kv.vaults.create("p1", sku="premium", retention_days=7)
    await kv.vaults.create("p2", sku="premium", retention_days=7)
    certs = kv.certificates
    known: dict[str, bytes] = {}
    cases = {
        "rsa": _policy("RSA", PKCS12),
        "ec": _policy("EC", PEM, crv="P-256"),
        "rsa-reuse": _policy("RSA", PEM, reuse_key=True),
        "rsa-hsm": _policy("RSA-HSM", PKCS12),
        "ec-hsm": _policy("EC-HSM", PEM, reuse_key=True),
    }
    versions: dict[str, list[str]] = {}
    for name, policy in cases.items():
        op = await certs.create("p1", name, policy)
        assert op.status == "completed"
        for _ in range(2):
            renewed = await certs.renew("p1", name)
            versions.setdefault(name, []).append(renewed.properties.version)
        for version in versions[name]:
            secret = await kv.secrets.get("p1", name, version)
            ct = policy["secret_props"]["contentType"]
            known |= bundle_secrets(f"{name}@{version}", secret.value, ct)
            opened = open_secret(secret.value, ct)
            assert (opened.key is not None) is policy["key_props"]["exportable"]
    # reuse_key keeps the key: the same public key in every version.
    reused = [(await certs.get("p1", "rsa-reuse", v)).cer for v in versions["rsa-reuse"]]
    assert len(set(reused)) == 2  # two certificates...
    publics = {
        open_secret((await kv.secrets.get("p1", "rsa-reuse", v)).value, PEM)
        .certs[0]
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        for v in versions["rsa-reuse"]
    }
    assert len(publics) == 1  # ...for one key

    # A key waiting (sealed in the operation row) for a merge that never comes, and a kvault
    # CA with a leaf: their generated keys are in ``generated`` too.
    waiting = {**_policy("RSA", PEM), "issuer": {"name": "Unknown"}}
    assert (await certs.create("p1", "waiting", waiting)).status == "inProgress"
    ca = _policy("EC", PEM)
    ca["x509_props"] |= {"basic_constraints": {"ca": True}, "key_usage": ["keyCertSign"]}
    await certs.create("p1", "ca", ca)
    await certs.set_issuer(
        "p1", "ca-issuer", {"provider": "kvault-ca", "credentials": {"account_id": "ca"}}
    )
    await certs.create("p1", "leaf", {**_policy("RSA", PKCS12), "issuer": {"name": "ca-issuer"}})
    await certs.renew("p1", "leaf")

    blobs = {n: await certs.backup("p1", n) for n in ("rsa", "ec-hsm")}
    for blob in blobs.values():
        await certs.restore("p2", blob)
    for name, blob in blobs.items():
        (tmp_path / "data" / f"{name}.backup").write_bytes(blob)
    await certs.delete("p1", "ec")
    await certs.purge("p1", "ec")

    for i, key in enumerate(generated):
        known |= key_secrets(f"generated{i}", key)
    assert generated, "no software key was generated"
    data = tmp_path / "data"
    leaks = scan(data, known)
    await kv.close()
    leaks += scan(data, known)  # after the checkpoint
    assert leaks == []


def test_the_bundle_scan_finds_a_bundle_written_to_disk(tmp_path: Path) -> None:
    """The scan above is not vacuous: a PEM or PFX secret value, or just its key, written
    anywhere under the directory (raw, or inside other text) is found."""
    ca = TestCA.make("scanner CA")
    key, leaf = ca.leaf(
        "scanner", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    pem = (
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + leaf.public_bytes(serialization.Encoding.PEM)
    ).decode()
    pfx = base64.b64encode(
        pkcs12.serialize_key_and_certificates(b"s", key, leaf, None, serialization.NoEncryption())
    ).decode()
    found = {}
    for label, value, ct in (("pem", pem, PEM), ("pfx", pfx, PKCS12)):
        known = bundle_secrets(label, value, ct)
        d = tmp_path / label
        d.mkdir()
        (d / "row").write_bytes(b'{"v":"' + value.encode() + b'"}')
        found[label] = scan(d, known)
    assert any("pem.d (across lines)" in leak for leak in found["pem"])
    assert any("PRIVATE KEY" in leak for leak in found["pem"])
    assert any("pfx.pfx-middle" in leak for leak in found["pfx"])
