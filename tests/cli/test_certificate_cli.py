"""The ``kvault certificate`` verbs against a real ``kvault server --dev`` over TLS."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from kvault.cli.certificate_cmd import DEFAULT_POLICY, policy_body
from tests.fixtures.devserver import DevServer

V = ("--vault-name", "dev")
PEM_TYPE = "application/x-pem-file"
PFX_TYPE = "application/x-pkcs12"


def kvault(
    server: DevServer, *args: str, group: str = "certificate"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", group, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **server.env},
        check=False,
        timeout=60,
    )


def ok(server: DevServer, *args: str, group: str = "certificate") -> Any:
    """Run a verb that must succeed; its JSON output (``None`` when it prints nothing)."""
    result = kvault(server, *args, group=group)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def fails(server: DevServer, code: int, *args: str) -> str:
    """Run a verb that must fail with ``code`` and one ``ERROR:`` line; that line."""
    result = kvault(server, *args)
    assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR:"), result.stderr
    return lines[0]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def policy(subject: str, **x509_props: Any) -> dict[str, Any]:
    """az's default policy with another subject (and other X.509 members)."""
    doc: dict[str, Any] = json.loads(json.dumps(DEFAULT_POLICY))
    doc["x509CertificateProperties"].update(subject=subject, **x509_props)
    return doc


def self_signed(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, cn: str) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


@pytest.fixture
def server(dev_server: DevServer) -> DevServer:
    return dev_server


# -- policies: az's JSON to the wire form (no server) -------------------------------------------


def test_az_policy_becomes_the_wire_policy() -> None:
    body = policy_body(policy("CN=a", subjectAlternativeNames={"dnsNames": ["a.example"]}))
    assert body == {
        "issuer": {"name": "Self"},
        "key_props": {"exportable": True, "key_size": 2048, "kty": "RSA", "reuse_key": True},
        "lifetime_actions": [
            {"action": {"action_type": "AutoRenew"}, "trigger": {"days_before_expiry": 90}}
        ],
        "secret_props": {"contentType": PFX_TYPE},
        "x509_props": {
            "key_usage": DEFAULT_POLICY["x509CertificateProperties"]["keyUsage"],
            "sans": {"dns_names": ["a.example"]},
            "subject": "CN=a",
            "validity_months": 12,
        },
    }
    # snake_case (as az reads it) and the wire form itself come out the same
    snake = {"x509_certificate_properties": {"subject": "CN=b", "validity_in_months": 3}}
    wire = {"x509_props": {"subject": "CN=b", "validity_months": 3}}
    assert policy_body(snake) == policy_body(wire) == wire


# -- the verbs ----------------------------------------------------------------------------------


def test_self_signed_from_a_policy_file(server: DevServer, tmp_path: Path) -> None:
    name = unique("self")
    n = ("-n", name)
    default = ok(server, "get-default-policy")
    assert default["issuerParameters"]["name"] == "Self"
    assert default["x509CertificateProperties"]["subject"] == "CN=CLIGetDefaultPolicy"
    scaffold = ok(server, "get-default-policy", "--scaffold")
    assert "Contoso" in scaffold["x509CertificateProperties"]["subject"]

    policy_file = tmp_path / "policy.json"
    default["x509CertificateProperties"]["subject"] = f"CN={name}"
    policy_file.write_text(json.dumps(default))
    op = ok(server, "create", *V, *n, "--policy", f"@{policy_file}", "--tags", "team=a")
    assert op["status"] == "completed" and op["target"].endswith(f"/certificates/{name}")
    assert op["issuerParameters"]["name"] == "Self"

    cert = ok(server, "show", *V, *n)
    assert cert["name"] == name and cert["tags"] == {"team": "a"}
    assert cert["contentType"] == PFX_TYPE and cert["attributes"]["enabled"] is True
    version = cert["id"].rsplit("/", 1)[1]
    assert cert["kid"].endswith(f"/keys/{name}/{version}")
    assert cert["sid"].endswith(f"/secrets/{name}/{version}")
    props = cert["policy"]["x509CertificateProperties"]
    assert props["subject"] == f"CN={name}" and props["validityInMonths"] == 12
    assert cert["policy"]["keyProperties"]["keyType"] == "RSA"
    der = base64.b64decode(cert["cer"])
    assert cert["x509ThumbprintHex"] == hashlib.sha1(der).hexdigest().upper()

    listed = ok(server, "list", *V, "--query", f"[?name=='{name}']")
    assert [i["id"] for i in listed] == [cert["id"].rsplit("/", 1)[0]]
    versions = ok(server, "list-versions", *V, *n, "--query", "[].id")
    assert versions == [cert["id"]]
    by_id = ok(server, "show", "--id", cert["id"])
    assert by_id["id"] == cert["id"] and by_id["cer"] == cert["cer"]

    pem, der_file = tmp_path / "c.pem", tmp_path / "c.der"
    assert ok(server, "download", *V, *n, "--file", str(pem)) is None
    ok(server, "download", *V, *n, "--version", version, "--file", str(der_file), "-e", "DER")
    loaded = x509.load_pem_x509_certificate(pem.read_bytes())
    assert loaded.public_bytes(serialization.Encoding.DER) == der == der_file.read_bytes()
    assert loaded.subject.rfc4514_string() == f"CN={name}"
    assert isinstance(loaded.public_key(), rsa.RSAPublicKey)


def test_ec_certificate_attributes_and_policy(server: DevServer) -> None:
    name = unique("ec")
    n = ("-n", name)
    doc = policy(f"CN={name}", keyUsage=["digitalSignature"])
    doc["keyProperties"] = {"keyType": "EC", "curve": "P-256", "exportable": True}
    doc["secretProperties"] = {"contentType": PEM_TYPE}
    assert ok(server, "create", *V, *n, "-p", json.dumps(doc), "--query", "status") == "completed"
    cert = ok(server, "show", *V, *n)
    assert cert["policy"]["keyProperties"]["curve"] == "P-256"
    public = x509.load_der_x509_certificate(base64.b64decode(cert["cer"])).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    secret = ok(server, "show", *V, *n, group="secret")
    assert secret["contentType"] == PEM_TYPE and "BEGIN PRIVATE KEY" in secret["value"]

    changed = ok(
        server,
        "set-attributes",
        *V,
        *n,
        "--enabled",
        "false",
        "--tags",
        "stage=old",
        "--policy",
        '{"x509CertificateProperties": {"validityInMonths": 6}}',
    )
    assert changed["id"] == cert["id"] and changed["attributes"]["enabled"] is False
    assert changed["tags"] == {"stage": "old"}
    assert changed["policy"]["x509CertificateProperties"]["validityInMonths"] == 6
    assert changed["policy"]["x509CertificateProperties"]["subject"] == f"CN={name}"
    again = ok(server, "set-attributes", *V, *n, "--enabled", "true")
    assert again["attributes"]["enabled"] is True and again["tags"] == {"stage": "old"}
    assert again["policy"]["x509CertificateProperties"]["validityInMonths"] == 6


def test_import_pfx_and_pem(server: DevServer, tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pfx_cert = self_signed(rsa_key, "pfx.example")
    pfx = tmp_path / "c.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"c", rsa_key, pfx_cert, None, serialization.BestAvailableEncryption(b"s3cret")
        )
    )
    name = unique("pfx")
    imported = ok(
        server,
        "import",
        *V,
        "-n",
        name,
        "--file",
        str(pfx),
        "--password",
        "s3cret",
        "--tags",
        "a=b",
    )
    assert imported["contentType"] == PFX_TYPE and imported["tags"] == {"a": "b"}
    assert base64.b64decode(imported["cer"]) == pfx_cert.public_bytes(serialization.Encoding.DER)
    assert imported["policy"]["x509CertificateProperties"]["subject"] == "CN=pfx.example"
    assert imported["policy"]["issuerParameters"]["name"] == "Unknown"
    line = fails(server, 2, "import", *V, "-n", unique("pfx"), "-f", str(pfx), "--password", "no")
    assert "--password" in line
    assert "--password" in fails(server, 2, "import", *V, "-n", unique("pfx"), "-f", str(pfx))

    ec_key = ec.generate_private_key(ec.SECP384R1())
    pem_cert = self_signed(ec_key, "pem.example")
    pem = tmp_path / "c.pem"
    pem.write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + pem_cert.public_bytes(serialization.Encoding.PEM)
    )
    name = unique("pem")
    imported = ok(server, "import", *V, "-n", name, "-f", str(pem), "--disabled", "false")
    assert imported["contentType"] == PEM_TYPE  # sniffed, as az does
    assert imported["policy"]["keyProperties"]["curve"] == "P-384"
    secret = ok(server, "show", *V, "-n", name, group="secret")
    assert secret["contentType"] == PEM_TYPE
    assert secret["value"].startswith("-----BEGIN PRIVATE KEY-----")
    assert "--file" in fails(server, 2, "import", *V, "-n", unique("pem"), "-f", str(pem) + ".x")


@pytest.mark.parametrize("encoding", ["PEM", "DER"])
def test_pending_csr_signed_by_a_ca_then_merged(
    server: DevServer, tmp_path: Path, encoding: str
) -> None:
    name = unique("csr")
    n = ("-n", name)
    doc = {
        "issuerParameters": {"name": "Unknown"},
        "x509CertificateProperties": {
            "subject": f"CN={name}",
            "subjectAlternativeNames": {"dnsNames": [f"{name}.example"]},
        },
    }
    op = ok(server, "create", *V, *n, "--policy", json.dumps(doc))
    assert op["status"] == "inProgress" and op["cancellationRequested"] is False
    assert op["statusDetails"] == (
        "Pending certificate created. Please Perform Merge to complete the request."
    )
    pending = ok(server, "pending", "show", *V, *n)
    assert pending["status"] == "inProgress" and pending["csr"] == op["csr"]
    csr = x509.load_der_x509_csr(base64.b64decode(pending["csr"]))
    assert csr.is_signature_valid and csr.subject.rfc4514_string() == f"CN={name}"

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = self_signed(ca_key, "kvault test CA")
    now = datetime.datetime.now(datetime.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .sign(ca_key, hashes.SHA256())
    )
    chain = tmp_path / f"chain.{encoding.lower()}"
    form = {"PEM": serialization.Encoding.PEM, "DER": serialization.Encoding.DER}[encoding]
    chain.write_bytes(leaf.public_bytes(form) + ca.public_bytes(form))

    merged = ok(server, "pending", "merge", *V, *n, "--file", str(chain), "--tags", "ca=test")
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    assert base64.b64decode(merged["cer"]) == leaf_der and merged["tags"] == {"ca": "test"}
    shown = ok(server, "show", *V, *n)
    assert shown["id"] == merged["id"] and base64.b64decode(shown["cer"]) == leaf_der
    assert shown["policy"]["issuerParameters"]["name"] == "Unknown"
    assert ok(server, "pending", "show", *V, *n, "--query", "status") == "completed"


def test_pending_cancel_and_delete(server: DevServer) -> None:
    name = unique("cancel")
    n = ("-n", name)
    doc = {"issuer": {"name": "Unknown"}, "x509_props": {"subject": f"CN={name}"}}  # wire form
    ok(server, "create", *V, *n, "-p", json.dumps(doc), "-o", "none")
    cancelled = ok(server, "pending", "cancel", *V, *n)
    assert cancelled["cancellationRequested"] is True
    deleted = ok(server, "pending", "delete", *V, *n)
    assert deleted["id"].endswith(f"/certificates/{name}/pending")
    line = fails(server, 3, "pending", "show", *V, *n)
    assert line.startswith("ERROR: (PendingCertificateNotFound)")


def test_contacts(server: DevServer) -> None:
    first, second = f"{unique('a')}@example.com", f"{unique('b')}@example.com"
    added = ok(server, "contact", "add", *V, "--email", first, "--name", "A B", "--phone", "1")
    assert {"emailAddress": first, "name": "A B", "phone": "1"} in added["contactList"]
    ok(server, "contact", "add", *V, "--email", second, "-o", "none")
    assert "already exists" in fails(server, 1, "contact", "add", *V, "--email", second)
    listed = ok(server, "contact", "list", *V, "--query", "contactList[].emailAddress")
    assert first in listed and second in listed
    ok(server, "contact", "delete", *V, "--email", first, "-o", "none")
    listed = ok(server, "contact", "list", *V, "--query", "contactList[].emailAddress")
    assert first not in listed and second in listed
    assert "not found" in fails(server, 3, "contact", "delete", *V, "--email", first)
    ok(server, "contact", "delete", *V, "--email", second, "-o", "none")
    assert "--email" in fails(server, 2, "contact", "add", *V, "--email", "no-at-sign")


def test_issuers(server: DevServer) -> None:
    issuer = unique("iss")
    i = ("--issuer-name", issuer)
    created = ok(server, "issuer", "create", *V, *i, "--provider-name", "Test")
    assert created["provider"] == "Test" and created["attributes"]["enabled"] is True
    assert created["id"].endswith(f"/certificates/issuers/{issuer}")
    updated = ok(
        server, "issuer", "update", *V, *i, "--organization-id", "Org", "--account-id", "acct"
    )
    assert updated["organizationDetails"]["id"] == "Org"
    assert updated["credentials"]["accountId"] == "acct" and updated["provider"] == "Test"
    disabled = ok(server, "issuer", "update", *V, *i, "--enabled", "false")
    assert disabled["attributes"]["enabled"] is False
    assert ok(server, "issuer", "show", *V, *i, "--query", "credentials.accountId") == "acct"
    listed = ok(server, "issuer", "list", *V, "--query", f"[?name=='{issuer}'].provider")
    assert listed == ["Test"]
    assert ok(server, "issuer", "delete", *V, *i, "--query", "name") == issuer
    line = fails(server, 3, "issuer", "show", *V, *i)
    assert line.startswith("ERROR: (CertificateIssuerNotFound)")


def test_delete_recover_purge_backup_restore(server: DevServer, tmp_path: Path) -> None:
    name = unique("life")
    n = ("-n", name)
    ok(server, "create", *V, *n, "-p", json.dumps(policy(f"CN={name}")), "-o", "none")
    cert = ok(server, "show", *V, *n)
    backup = tmp_path / "cert.bak"
    assert ok(server, "backup", *V, *n, "--file", str(backup)) is None
    assert backup.stat().st_size > 0

    deleted = ok(server, "delete", *V, *n)
    assert deleted["recoveryId"].endswith(f"/deletedcertificates/{name}") and deleted["deletedDate"]
    gone = ok(server, "list-deleted", *V, "--query", f"[?name=='{name}'].recoveryId")
    assert gone == [deleted["recoveryId"]]
    assert ok(server, "show-deleted", "--id", deleted["recoveryId"], "--query", "name") == name
    assert fails(server, 3, "show", *V, *n).startswith("ERROR: (CertificateNotFound)")
    recovered = ok(server, "recover", *V, *n)
    assert recovered["id"] == cert["id"] and recovered["cer"] == cert["cer"]

    ok(server, "delete", *V, *n, "-o", "none")
    assert ok(server, "purge", *V, *n) is None
    assert fails(server, 3, "show-deleted", *V, *n).startswith("ERROR: (")
    restored = ok(server, "restore", *V, "--file", str(backup))
    assert restored["id"] == cert["id"] and restored["cer"] == cert["cer"]
    assert ok(server, "list-versions", *V, *n, "--query", "[].id") == [cert["id"]]


def test_missing_certificate_is_not_found(server: DevServer) -> None:
    line = fails(server, 3, "show", *V, "-n", unique("missing"))
    assert line.startswith("ERROR: (CertificateNotFound)")


def test_bad_input_is_a_usage_error_naming_the_flag(server: DevServer, tmp_path: Path) -> None:
    name = unique("bad")
    n = ("-n", name)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x30\x03\x02\x01\x01")  # a DER SEQUENCE that is no certificate
    taken = tmp_path / "taken.pem"
    taken.write_text("")
    cases = [
        (("create", *V, *n), "--policy"),
        (("create", *V, *n, "--policy", "{not json"), "--policy"),
        (("create", *V, *n, "--policy", '{"x509Properties": {}}'), "--policy"),
        (("create", *V, *n, "--policy", "[]"), "--policy"),
        (("create", *V, *n, "-p", "{}", "--validity", "0"), "--validity"),
        (("create", *V, *n, "-p", "{}", "--disabled", "maybe"), "--disabled"),
        (("import", *V, *n, "--file", str(junk)), "--file"),
        (("download", *V, *n, "--file", str(taken)), "--file"),
        (("download", *V, *n, "--file", str(tmp_path / "x"), "-e", "CER"), "--encoding"),
        (("pending", "merge", *V, *n, "--file", str(junk)), "--file"),
        (("list", *V, "--maxresults", "0"), "--maxresults"),
        (("show", "--id", "https://dev.localhost:8443/keys/k"), "--id"),
        (("show", *V), "--name"),
        (("issuer", "create", *V, "--issuer-name", "i"), "--provider-name"),
    ]
    for args, flag in cases:
        line = fails(server, 2, *args)
        assert flag in line, (args, line)
