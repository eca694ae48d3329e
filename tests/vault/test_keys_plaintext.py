"""No key material on disk: after creating, importing, using, backing up, restoring, rotating,
deleting, recovering and purging keys (software and HSM types, on each HSM plugin), no file
under the data directory (database, WAL, audit log) holds a private component (RSA d, p, q,
dp, dq, qi; EC d; oct k) in raw, base64, base64url or hex form, nor a PEM or DER private key,
nor a plaintext given to encrypt or wrapKey.

The private components of generated keys are known to the test because it watches
:func:`kvault.crypto.keys.generate` (what both the software keys and the software plugin's
"HSM" keys are made with); pkcs11 ``-HSM`` keys never leave the token, so there is nothing to
watch there."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kvault.crypto import keys as jose
from kvault.vault.keys.operations import KeyInput
from kvault.vault.service import Kvault
from tests.vault.test_plaintext import _scan

#: The DER AlgorithmIdentifier contents of PKCS#8 RSA and EC keys (rsaEncryption with NULL;
#: id-ecPublicKey with P-256, P-384, P-521, secp256k1): a DER key in clear would show one.
KEY_HEADERS = tuple(
    bytes.fromhex(h)
    for h in (
        "06092a864886f70d0101010500",
        "06072a8648ce3d020106082a8648ce3d030107",
        "06072a8648ce3d020106052b81040022",
        "06072a8648ce3d020106052b81040023",
        "06072a8648ce3d020106052b8104000a",
    )
)
PEM_MARKERS = (b"-----BEGIN", b"PRIVATE KEY-----")


def binary_forms(raw: bytes) -> set[bytes]:
    """``raw`` as raw bytes, hex, and base64/base64url at every alignment (a value inside a
    longer encoded string is still found), padded or not."""
    forms = {raw, raw.hex().encode(), raw.hex().upper().encode()}
    for pad in range(3):
        enc = base64.b64encode(b"\0" * pad + raw)
        core = enc[4 if pad else 0 :][:-4]  # drop the blocks that mix in neighbours
        forms.add(core)
        forms.add(core.replace(b"+", b"-").replace(b"/", b"_"))
    return {f for f in forms if len(f) >= 12}


def _int(value: int, width: int | None = None) -> bytes:
    return value.to_bytes(width or (value.bit_length() + 7) // 8, "big")


def private_components(key: Any) -> dict[str, bytes]:
    """Every private member of ``key`` (as JWK would carry it), and its DER/PEM encodings."""
    if isinstance(key, jose.OctKey):
        return {"k": key.secret}
    out: dict[str, bytes] = {}
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        out = {m: _int(v) for m, v in (("d", n.d), ("p", n.p), ("q", n.q))}
        out |= {m: _int(v) for m, v in (("dp", n.dmp1), ("dq", n.dmq1), ("qi", n.iqmp))}
        for label, fmt in (
            ("pkcs8", serialization.PrivateFormat.PKCS8),
            ("pkcs1", serialization.PrivateFormat.TraditionalOpenSSL),
        ):
            der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
            out[f"der-{label}"] = der[-48:]  # the tail: qi, not the shared header
    elif isinstance(key, ec.EllipticCurvePrivateKey):  # (an EC DER ends with the public point)
        width = (key.curve.key_size + 7) // 8
        out = {"d": _int(key.private_numbers().private_value, width)}
    return out


def scan_binary(
    directory: Path, secrets: dict[str, bytes], *, own_keys: tuple[str, ...] = ()
) -> list[str]:
    """Leaks of ``secrets`` in any form, and any PEM or DER private key; files under the
    ``own_keys`` subdirectories (the server's own TLS key) may hold PEM/DER keys."""
    leaks = []
    forms = {name: binary_forms(value) for name, value in secrets.items()}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for name, candidates in forms.items():
            if any(f in data for f in candidates):
                leaks.append(f"{path} holds {name}")
        if path.relative_to(directory).parts[0] in own_keys:
            continue
        for header in KEY_HEADERS:
            if any(f in data for f in binary_forms(header)):
                leaks.append(f"{path} holds a DER key header {header.hex()}")
        for marker in PEM_MARKERS:
            if marker in data:
                leaks.append(f"{path} holds {marker!r}")
    return leaks


@pytest.fixture
def generated(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every key :func:`kvault.crypto.keys.generate` makes during the test."""
    made: list[Any] = []
    real = jose.generate

    def spy(*args: Any, **kwargs: Any) -> Any:
        key = real(*args, **kwargs)
        made.append(key)
        return key

    monkeypatch.setattr(jose, "generate", spy)
    return made


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def rsa_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    n = key.private_numbers()
    pairs = (("n", n.public_numbers.n), ("e", n.public_numbers.e), ("d", n.d), ("p", n.p))
    pairs += (("q", n.q), ("dp", n.dmp1), ("dq", n.dmq1), ("qi", n.iqmp))
    return {"kty": "RSA", **{m: _b64u(_int(v)) for m, v in pairs}}


def ec_jwk(key: ec.EllipticCurvePrivateKey, crv: str) -> dict[str, str]:
    n = key.private_numbers()
    width = (key.curve.key_size + 7) // 8
    return {
        "kty": "EC",
        "crv": crv,
        "x": _b64u(_int(n.public_numbers.x, width)),
        "y": _b64u(_int(n.public_numbers.y, width)),
        "d": _b64u(_int(n.private_value, width)),
    }


async def test_no_key_material_reaches_the_data_directory(
    kv: Kvault, tmp_path: Path, generated: list[Any]
) -> None:
    await kv.vaults.create("p1", sku="premium", retention_days=7)
    await kv.vaults.create("p2", sku="premium", retention_days=7)
    keys = kv.keys
    imported: list[Any] = []
    markers = [f"PLAINTEXT{os.urandom(10).hex()}" for _ in range(6)]
    sha256 = hashes.Hash(hashes.SHA256())
    sha256.update(b"message")
    digest = sha256.finalize()

    # Import: software and HSM, every key type; the private parts are what we look for.
    for i, hsm in enumerate((False, True)):
        r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        e = ec.generate_private_key(ec.SECP384R1())
        secret = os.urandom(32)
        imported += [r, e, jose.OctKey(secret)]
        await keys.import_key("p1", f"irsa{i}", rsa_jwk(r), hsm=hsm, tags={"t": "scan"})
        await keys.import_key("p1", f"iec{i}", ec_jwk(e, "P-384"), hsm=hsm)
        await keys.import_key("p1", f"ioct{i}", {"kty": "oct", "k": _b64u(secret)}, hsm=hsm)

    # Create every type (software and HSM); rotate some.
    for kty, extra in (
        ("RSA", {"size": 2048}),
        ("RSA-HSM", {"size": 2048}),
        ("EC", {"crv": "P-256K"}),
        ("EC-HSM", {"crv": "P-521"}),
        ("oct", {"size": 128}),
        ("oct-HSM", {"size": 256}),
    ):
        name = f"c{kty.lower()}"
        await keys.create("p1", name, kty, **extra)
        await keys.rotate("p1", name)

    # Use them, with plaintext markers.
    def op(verb: str, name: str, alg: str, value: bytes, **extra: Any) -> Any:
        return keys.operate("p1", name, "", verb, alg, KeyInput(value, **extra))

    for i in (0, 1):
        sealed = await op("Encrypt", f"irsa{i}", "RSA-OAEP", markers[0].encode())
        opened = await op("Decrypt", f"irsa{i}", "RSA-OAEP", sealed.value)
        assert opened.value == markers[0].encode()
        wrapped = await op("WrapKey", f"irsa{i}", "RSA-OAEP-256", markers[1].encode())
        unwrapped = await op("UnwrapKey", f"irsa{i}", "RSA-OAEP-256", wrapped.value)
        assert unwrapped.value == markers[1].encode()
        await op("Sign", f"irsa{i}", "PS256", digest)
        await op("Sign", f"iec{i}", "ES384", os.urandom(48))
        gcm = await op("Encrypt", f"ioct{i}", "A256GCM", markers[2].encode(), aad=b"a")
        await op("Decrypt", f"ioct{i}", "A256GCM", gcm.value, iv=gcm.iv, aad=b"a", tag=gcm.tag)
        cbc = await op("Encrypt", f"ioct{i}", "A256CBCPAD", markers[3].encode(), iv=os.urandom(16))
        await op("Decrypt", f"ioct{i}", "A256CBCPAD", cbc.value, iv=cbc.iv)
        await op("WrapKey", f"ioct{i}", "CKM_AES_KEY_WRAP_PAD", markers[4].encode())
    sealed = await op("Encrypt", "crsa-hsm", "RSA1_5", markers[5].encode())
    await op("Decrypt", "crsa-hsm", "RSA1_5", sealed.value)

    # Backup, restore elsewhere, delete/recover, purge, update, rotation policy.
    blobs = {n: await keys.backup("p1", n) for n in ("irsa0", "iec1", "ioct0", "coct-hsm")}
    for blob in blobs.values():
        await keys.restore("p2", blob)
    await keys.delete("p1", "iec0")
    await keys.recover("p1", "iec0")
    await keys.delete("p1", "ioct1")
    await keys.purge("p1", "ioct1")
    await keys.update("p1", "irsa1", enabled=False)
    await keys.set_rotation_policy(
        "p1",
        "crsa",
        {
            "lifetimeActions": [
                {"trigger": {"timeAfterCreate": "P30D"}, "action": {"type": "Rotate"}}
            ],
            "attributes": {"expiryTime": "P90D"},
        },
    )
    await keys.rotate("p1", "crsa")
    for n, blob in blobs.items():
        (tmp_path / "data" / f"{n}.backup").write_bytes(blob)  # a user's backup files

    secrets: dict[str, bytes] = {}
    for i, key in enumerate(imported + generated):
        secrets |= {f"key{i}.{m}": v for m, v in private_components(key).items()}
    assert len(generated) >= 6  # software keys and the software plugin's "HSM" keys
    data = tmp_path / "data"
    leaks = scan_binary(data, secrets) + _scan(data, markers)
    await kv.close()
    leaks += scan_binary(data, secrets) + _scan(data, markers)  # after checkpoint
    assert leaks == []


def test_the_binary_scanner_finds_what_it_looks_for(tmp_path: Path) -> None:
    secret = os.urandom(32)
    (tmp_path / "a").write_bytes(b"x" + base64.urlsafe_b64encode(b"12" + secret) + b"y")
    (tmp_path / "b").write_bytes(secret.hex().upper().encode())
    (tmp_path / "c").write_bytes(b"z" + secret)
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "d").write_bytes(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "e").write_text("-----BEGIN PRIVATE KEY-----")
    leaks = scan_binary(tmp_path, {"s": secret})
    assert {leak.split()[0].rsplit("/", 1)[-1] for leak in leaks} == {"a", "b", "c", "d", "e"}
