"""End to end, through the SDK and ``kvault server --dev`` on each HSM plugin: after importing,
creating, using, backing up, restoring and rotating keys, neither the data directory (database,
WAL, audit log, backups a user saved there) nor what the server printed holds a private key
component, a PEM/DER private key, or a plaintext given to encrypt/wrapKey (or returned by
decrypt/unwrapKey). The domain-level scan, which also covers generated keys, is
tests/vault/test_keys_plaintext.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.keys import JsonWebKey, KeyRotationLifetimeAction, KeyRotationPolicy
from azure.keyvault.keys.crypto import EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kvault.crypto import keys as jose
from tests.api.keys_support import (
    KINDS,
    crypto_client,
    digest,
    key_client,
    remote_crypto,
    settled_output,
    start_key_server,
)
from tests.api.test_keys_sdk import ec_jwk, rsa_jwk
from tests.fixtures.devserver import stop
from tests.fixtures.softhsm import SoftHSMEnv
from tests.vault.test_keys_plaintext import binary_forms, private_components, scan_binary
from tests.vault.test_plaintext import _forms, _scan


@pytest.mark.parametrize("kind", KINDS)
def test_no_key_material_on_disk_or_in_the_output(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    token = None
    if kind == "pkcs11":
        softhsm: SoftHSMEnv = request.getfixturevalue("softhsm")
        token = softhsm.init_token()
    data = tmp_path / "data"
    server = start_key_server(kind, data, token)
    markers = [f"PLAINTEXT{os.urandom(10).hex()}" for _ in range(6)]
    private: list[Any] = []
    try:
        with key_client(server) as client:
            for hsm in (False, True):
                r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                e = ec.generate_private_key(ec.SECP256K1())
                k = os.urandom(32)
                private += [r, e, jose.OctKey(k)]
                suffix = "h" if hsm else "s"
                keys = [
                    client.import_key(f"rsa-{suffix}", rsa_jwk(r), hardware_protected=hsm),
                    client.import_key(f"ec-{suffix}", ec_jwk(e, "P-256K"), hardware_protected=hsm),
                    client.import_key(
                        f"oct-{suffix}", JsonWebKey(kty="oct", k=k), hardware_protected=hsm
                    ),
                ]
                rsa_key, ec_key, oct_key = keys
                with (
                    crypto_client(server, rsa_key) as local,
                    remote_crypto(server, rsa_key) as remote,
                ):
                    for c in (local, remote):  # local: the server only decrypts
                        sealed = c.encrypt(EncryptionAlgorithm.rsa_oaep, markers[0].encode())
                        opened = c.decrypt(EncryptionAlgorithm.rsa_oaep, sealed.ciphertext)
                        assert opened.plaintext == markers[0].encode()
                        wrapped = c.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, markers[1].encode())
                        unwrapped = c.unwrap_key(
                            KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key
                        )
                        assert unwrapped.key == markers[1].encode()
                    remote.sign(SignatureAlgorithm.rs256, digest("RS256"))
                with remote_crypto(server, ec_key) as remote:
                    remote.sign(SignatureAlgorithm.es256_k, digest("ES256K"))
                with remote_crypto(server, oct_key) as remote:
                    gcm = remote.encrypt(EncryptionAlgorithm.a256_gcm, markers[2].encode())
                    remote.decrypt(
                        EncryptionAlgorithm.a256_gcm,
                        gcm.ciphertext,
                        iv=gcm.iv,
                        authentication_tag=gcm.tag,
                    )
                    iv = os.urandom(16)
                    cbc = remote.encrypt(
                        EncryptionAlgorithm.a256_cbcpad, markers[3].encode(), iv=iv
                    )
                    remote.decrypt(EncryptionAlgorithm.a256_cbcpad, cbc.ciphertext, iv=iv)
                    wrapped = remote.wrap_key(
                        KeyWrapAlgorithm.ckm_aes_key_wrap_pad, markers[4].encode()
                    )
                    remote.unwrap_key(KeyWrapAlgorithm.ckm_aes_key_wrap_pad, wrapped.encrypted_key)

            for kty in ("RSA", "RSA-HSM", "EC", "EC-HSM", "oct", "oct-HSM"):
                client.create_key(f"new-{kty.lower()}", kty)
                client.rotate_key(f"new-{kty.lower()}")
            client.update_key_rotation_policy(
                "new-rsa",
                KeyRotationPolicy(
                    expires_in="P90D",
                    lifetime_actions=[
                        KeyRotationLifetimeAction("Rotate", time_after_create="P30D")
                    ],
                ),
            )
            with remote_crypto(server, client.get_key("new-oct-hsm")) as remote:
                remote.encrypt(EncryptionAlgorithm.a256_gcm, markers[5].encode())

            # Backup, purge, restore (software keys: see test_keys_sdk.test_backup_restore).
            for name in ("rsa-s", "ec-s", "oct-s"):
                blob = client.backup_key(name)
                (data / f"{name}.backup").write_bytes(blob)  # what a user would keep
                client.begin_delete_key(name).wait()
                client.purge_deleted_key(name)
                client.restore_key_backup(blob)
            for name in ("rsa-h", "ec-h", "oct-h"):
                (data / f"{name}.backup").write_bytes(client.backup_key(name))
    finally:
        stop(server)

    secrets: dict[str, bytes] = {}
    for i, key in enumerate(private):
        secrets |= {f"key{i}.{m}": v for m, v in private_components(key).items()}
    leaks = scan_binary(data, secrets, own_keys=("tls",)) + _scan(data, markers)
    output = settled_output(server).encode()
    for name, value in secrets.items():
        if any(form in output for form in binary_forms(value)):
            leaks.append(f"the server printed {name}")
    for marker in markers:
        if any(form in output for form in _forms(marker)):
            leaks.append(f"the server printed {marker}")
    assert leaks == []
    assert (data / "kvault.db").exists() and (data / "audit.log").stat().st_size > 0
