"""The ``kvault key`` verbs against a real ``kvault server --dev`` over TLS."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.fixtures.devserver import DevServer

V = ("--vault-name", "dev")


def kvault(server: DevServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", "key", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **server.env},
        check=False,
        timeout=60,
    )


def ok(server: DevServer, *args: str) -> Any:
    """Run a verb that must succeed; its JSON output (``None`` when it prints nothing)."""
    result = kvault(server, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def raw(std_b64: str) -> bytes:
    return base64.b64decode(std_b64)


@pytest.fixture
def server(dev_server: DevServer) -> DevServer:
    return dev_server


def test_lifecycle_round_trip(server: DevServer) -> None:
    name = unique("life")
    n = ("-n", name)
    created = ok(server, "create", *V, *n, "--ops", "sign", "verify", "--tags", "team=a")
    key = created["key"]
    assert key["kty"] == "RSA" and key["keyOps"] == ["sign", "verify"]
    assert raw(key["e"]) == b"\x01\x00\x01" and len(raw(key["n"])) == 256  # 2048 bits
    assert key["d"] is None and created["tags"] == {"team": "a"}
    version = key["kid"].rsplit("/", 1)[1]
    assert len(version) == 32

    shown = kvault(server, "show", *V, *n, "--version", version, "--query", "key.kid", "-o", "tsv")
    assert shown.returncode == 0 and shown.stdout == key["kid"] + "\n"
    listed = ok(server, "list", *V, "--query", f"[?name=='{name}']")
    assert len(listed) == 1 and listed[0]["kid"].endswith(f"/keys/{name}")

    changed = ok(
        server,
        "set-attributes",
        *V,
        *n,
        "--expires",
        "2030-01-01T00:00:00Z",
        "--ops",
        "verify",
        "--tags",
        "team=b",
    )
    assert changed["attributes"]["expires"] == "2030-01-01T00:00:00+00:00"
    assert changed["key"]["keyOps"] == ["verify"] and changed["tags"] == {"team": "b"}

    deleted = ok(server, "delete", *V, *n)
    assert deleted["recoveryId"].endswith(f"/deletedkeys/{name}") and deleted["deletedDate"]
    gone = ok(server, "list-deleted", *V, "--query", f"[?name=='{name}'].recoveryId")
    assert gone == [deleted["recoveryId"]]
    assert ok(server, "show-deleted", "--id", deleted["recoveryId"])["key"]["kid"] == key["kid"]
    recovered = ok(server, "recover", *V, *n)
    assert recovered["key"]["kid"] == key["kid"]

    ok(server, "delete", *V, *n, "-o", "none")
    assert ok(server, "purge", *V, *n) is None
    missing = kvault(server, "show", *V, *n)
    assert missing.returncode == 3, missing.stderr
    assert missing.stderr.startswith("ERROR: (KeyNotFound)")
    assert len(missing.stderr.strip().splitlines()) == 1


def test_disable_answers_with_the_disabled_key(server: DevServer) -> None:
    name = unique("off")
    ok(server, "create", *V, "-n", name, "--kty", "EC")
    changed = ok(server, "set-attributes", *V, "-n", name, "--enabled", "false")
    assert changed["attributes"]["enabled"] is False


def test_rotate_backup_restore(server: DevServer, tmp_path: Path) -> None:
    name = unique("rot")
    n = ("-n", name)
    first = ok(server, "create", *V, *n, "--curve", "P-384")
    assert first["key"]["kty"] == "EC" and first["key"]["crv"] == "P-384"
    second = ok(server, "rotate", *V, *n)
    assert second["key"]["crv"] == "P-384" and second["key"]["kid"] != first["key"]["kid"]
    kids = sorted(ok(server, "list-versions", *V, *n, "--query", "[].kid"))
    assert kids == sorted([first["key"]["kid"], second["key"]["kid"]])

    backup = tmp_path / "key.bak"
    ok(server, "backup", *V, *n, "--file", str(backup))
    assert backup.stat().st_size > 0
    ok(server, "delete", *V, *n, "-o", "none")
    ok(server, "purge", *V, *n)
    restored = ok(server, "restore", *V, "--file", str(backup))
    assert restored["key"]["kid"] == second["key"]["kid"]
    assert sorted(ok(server, "list-versions", *V, *n, "--query", "[].kid")) == kids


def test_encrypt_then_decrypt(server: DevServer) -> None:
    name = unique("enc")
    ok(server, "create", *V, "-n", name, "--kty", "RSA", "--size", "3072")
    sealed = ok(
        server,
        "encrypt",
        *V,
        "-n",
        name,
        "-a",
        "RSA-OAEP-256",
        "--value",
        "reindeer flotilla",
        "--data-type",
        "plaintext",
    )
    assert sealed["algorithm"] == "RSA-OAEP-256" and len(raw(sealed["result"])) == 384
    assert f"/keys/{name}/" in sealed["kid"]
    opened = ok(
        server,
        "decrypt",
        "--id",
        sealed["kid"],
        "-a",
        "RSA-OAEP-256",
        "--value",
        sealed["result"],
        "--data-type",
        "plaintext",
    )
    assert opened["result"] == "reindeer flotilla"


def test_sign_verify_and_download(server: DevServer, tmp_path: Path) -> None:
    name = unique("sig")
    n = ("-n", name)
    key = ok(server, "create", *V, *n, "--kty", "EC", "--curve", "P-256")["key"]
    digest = hashlib.sha256(b"the message").digest()
    b64 = base64.b64encode(digest).decode()
    signed = ok(server, "sign", *V, *n, "-a", "ES256", "--digest", b64)
    assert signed["algorithm"] == "ES256" and signed["keyId"] == key["kid"]
    signature = raw(signed["signature"])
    assert len(signature) == 64  # raw r||s

    good = ok(
        server, "verify", *V, *n, "-a", "ES256", "--digest", b64, "--signature", signed["signature"]
    )
    assert good == {"algorithm": "ES256", "isValid": True, "keyId": key["kid"]}
    other = base64.b64encode(hashlib.sha256(b"another message").digest()).decode()
    bad = ok(
        server,
        "verify",
        *V,
        *n,
        "-a",
        "ES256",
        "--digest",
        other,
        "--signature",
        signed["signature"],
    )
    assert bad["isValid"] is False

    pem = tmp_path / "public.pem"
    ok(server, "download", *V, *n, "--file", str(pem))
    public = serialization.load_pem_public_key(pem.read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    numbers = public.public_numbers()
    assert numbers.x == int.from_bytes(raw(key["x"]), "big")
    assert numbers.y == int.from_bytes(raw(key["y"]), "big")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    public.verify(encode_dss_signature(r, s), b"the message", ec.ECDSA(hashes.SHA256()))


def test_import_pem_then_sign(server: DevServer, tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    name = unique("imp")
    imported = ok(
        server, "import", *V, "-n", name, "--pem-file", str(pem), "--pem-password", "s3cret"
    )
    assert imported["key"]["kty"] == "RSA" and imported["key"]["d"] is None
    assert (
        int.from_bytes(raw(imported["key"]["n"]), "big") == private.public_key().public_numbers().n
    )
    digest = hashlib.sha256(b"imported").digest()
    signed = ok(
        server, "sign", *V, "-n", name, "-a", "PS256", "--digest", base64.b64encode(digest).decode()
    )
    private.public_key().verify(
        raw(signed["signature"]),
        b"imported",
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


def test_rotation_policy_update_then_show(server: DevServer, tmp_path: Path) -> None:
    name = unique("pol")
    ok(server, "create", *V, "-n", name, "--kty", "EC")
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "lifetime_actions": [
                    {"trigger": {"time_after_create": "P90D"}, "action": {"type": "Rotate"}}
                ],
                "attributes": {"expiry_time": "P1Y"},
            }
        )
    )
    updated = ok(server, "rotation-policy", "update", *V, "-n", name, "--value", f"@{policy}")
    shown = ok(server, "rotation-policy", "show", *V, "-n", name)
    assert shown == updated
    assert shown["id"].endswith(f"/keys/{name}/rotationpolicy") and shown["expiresIn"] == "P1Y"
    rotate = [a for a in shown["lifetimeActions"] if a["action"] == "Rotate"]
    assert rotate == [{"action": "Rotate", "timeAfterCreate": "P90D", "timeBeforeExpiry": None}]


def test_bad_input_is_a_usage_error_naming_the_flag(server: DevServer) -> None:
    name = unique("bad")
    cases = [
        (("encrypt", *V, "-n", name, "-a", "A256GCM", "--value", "AA==", "--aad", "xyz"), "--aad"),
        (("sign", *V, "-n", name, "-a", "ES256", "--digest", "not base64!"), "--digest"),
        (("create", *V, "-n", name, "--kty", "RSA", "--curve", "P-256"), "--curve"),
        (("create", *V, "-n", name, "--kty", "DSA"), "--kty"),
    ]
    for args, flag in cases:
        result = kvault(server, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("ERROR:") and flag in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
