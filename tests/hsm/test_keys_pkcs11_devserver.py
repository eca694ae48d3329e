"""Premium-vault keys on the pkcs11 plugin, end to end: ``kvault server --dev --hsm pkcs11``
on a SoftHSM2 token, driven by the official SDK. The HSM keys it makes are token objects that
are sensitive and never extractable (checked in a separate process that logs into the token
while no server runs: never two users of PKCS#11 at once); their private values cannot be read;
they keep working across a server restart (same data directory, same token); and delete +
purge removes them from the token. Software keys never appear in the token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.keys import JsonWebKey, KeyVaultKey
from azure.keyvault.keys.crypto import EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.api.keys_support import (
    crypto_client,
    digest,
    key_client,
    remote_crypto,
    settled_output,
    start_key_server,
)
from tests.api.test_keys_sdk import check_ec_signature, check_rsa_signature, ec_jwk, rsa_jwk
from tests.fixtures.devserver import DevServer, stop
from tests.fixtures.softhsm import SoftHSMEnv, SoftHSMToken

# Runs in its own process: what the token really holds, and what it lets a user read.
INSPECT = textwrap.dedent(
    """
    import json, sys
    import pkcs11
    from pkcs11 import Attribute, ObjectClass
    from pkcs11 import exceptions as e
    module, label, pin = sys.argv[1:4]
    token = pkcs11.lib(module).get_token(token_label=label)
    FLAGS = (Attribute.TOKEN, Attribute.PRIVATE, Attribute.SENSITIVE, Attribute.EXTRACTABLE,
             Attribute.ALWAYS_SENSITIVE, Attribute.NEVER_EXTRACTABLE)
    SECRET_PARTS = {
        ObjectClass.PRIVATE_KEY: (Attribute.PRIVATE_EXPONENT, Attribute.PRIME_1,
                                  Attribute.PRIME_2, Attribute.VALUE),
        ObjectClass.SECRET_KEY: (Attribute.VALUE,),
    }
    out = []
    with token.open(user_pin=pin) as s:
        for obj in s.get_objects():
            cls = obj[Attribute.CLASS]
            if cls not in (ObjectClass.PRIVATE_KEY, ObjectClass.SECRET_KEY,
                           ObjectClass.PUBLIC_KEY):
                continue
            row = {"label": obj[Attribute.LABEL], "class": cls.name,
                   "key_type": obj[Attribute.KEY_TYPE].name}
            if cls != ObjectClass.PUBLIC_KEY:
                for a in FLAGS:
                    row[a.name] = bool(obj[a])
                readable = []
                for a in SECRET_PARTS[cls]:
                    try:
                        obj[a]
                        readable.append(a.name)
                    except (e.AttributeSensitive, e.AttributeTypeInvalid):
                        pass
                row["readable"] = readable
            out.append(row)
    print(json.dumps(out))
    """
)


def inspect(env: SoftHSMEnv, token: SoftHSMToken) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-c", INSPECT, token.module, token.label, token.pin],
        env={**os.environ, "SOFTHSM2_CONF": str(env.conf)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    objects: list[dict[str, Any]] = json.loads(proc.stdout)
    return objects


def objects_of(objects: list[dict[str, Any]], key: KeyVaultKey) -> list[dict[str, Any]]:
    """The token objects of one key version (kvault labels them ``kvault-key-…-<version>``)."""
    version = key.properties.version or "?"
    return [o for o in objects if o["label"].startswith("kvault-key-") and version in o["label"]]


def start(env: SoftHSMEnv, token: SoftHSMToken, data: Path) -> DevServer:
    assert os.environ.get("SOFTHSM2_CONF") == str(env.conf)
    return start_key_server("pkcs11", data, token)


def test_hsm_keys_are_non_extractable_token_objects_that_survive_a_restart(
    softhsm: SoftHSMEnv, tmp_path: Path
) -> None:
    token = softhsm.init_token()
    data = tmp_path / "data"
    before: dict[str, Any] = {}

    server = start(softhsm, token, data)
    try:
        with key_client(server) as client:
            made = {
                "rsa": client.create_rsa_key("hsm-rsa", size=2048, hardware_protected=True),
                "ec": client.create_ec_key("hsm-ec", curve="P-384", hardware_protected=True),
                "oct": client.create_oct_key("hsm-oct", size=256, hardware_protected=True),
                "rsa-import": client.import_key(
                    "hsm-rsa-import",
                    rsa_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
                    hardware_protected=True,
                ),
                "ec-import": client.import_key(
                    "hsm-ec-import",
                    ec_jwk(ec.generate_private_key(ec.SECP256R1()), "P-256"),
                    hardware_protected=True,
                ),
                "oct-import": client.import_key(
                    "hsm-oct-import",
                    JsonWebKey(kty="oct", k=os.urandom(16)),
                    hardware_protected=True,
                ),
                "software": client.create_rsa_key("soft-rsa", size=2048),
            }
            made["rsa-rotated"] = client.rotate_key("hsm-rsa")
            # Work made before the restart, to be finished after it.
            with crypto_client(server, made["rsa"]) as c:
                before["rsa"] = c.encrypt(EncryptionAlgorithm.rsa_oaep, b"before restart")
                before["rsa-wrap"] = c.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"w" * 32)
            with remote_crypto(server, made["oct"]) as c:
                before["oct"] = c.encrypt(EncryptionAlgorithm.a256_gcm, b"before restart")
                before["oct-wrap"] = c.wrap_key(KeyWrapAlgorithm.aes_256, b"c" * 32)
            with remote_crypto(server, made["oct-import"]) as c:
                iv = os.urandom(16)
                before["oct-import"] = c.encrypt(EncryptionAlgorithm.a128_cbcpad, b"pad me", iv=iv)
    finally:
        stop(server)

    objects = inspect(softhsm, token)
    for which, key in made.items():
        mine = objects_of(objects, key)
        if which == "software":
            assert mine == [], "a software key must not live in the token"
            continue
        private = [o for o in mine if o["class"] in ("PRIVATE_KEY", "SECRET_KEY")]
        assert len(private) == 1, f"{which}: {mine}"
        (obj,) = private
        assert obj["key_type"] == {"rsa": "RSA", "ec": "EC", "oct": "AES"}[which.split("-")[0]]
        assert obj["TOKEN"] and obj["PRIVATE"], f"{which}: {obj}"
        assert obj["SENSITIVE"] and not obj["EXTRACTABLE"], f"{which}: {obj}"
        if "import" not in which:  # generated in the token: never anything else
            assert obj["ALWAYS_SENSITIVE"] and obj["NEVER_EXTRACTABLE"], f"{which}: {obj}"
        assert obj["readable"] == [], f"{which}: the token let us read {obj['readable']}"
        if which.startswith(("rsa", "ec")):
            assert any(o["class"] == "PUBLIC_KEY" for o in mine), f"{which}: no public half"
    # A rotation made a second object; the old version's is still there.
    assert objects_of(objects, made["rsa"]) and objects_of(objects, made["rsa-rotated"])
    assert any(o["label"].startswith("kvault-root-") for o in objects)  # root key untouched

    server = start(softhsm, token, data)  # same data directory, same token (a new port)
    try:
        with key_client(server) as client:
            again = {
                which: client.get_key(key.name, key.properties.version)
                for which, key in made.items()
            }
            for which in ("rsa", "rsa-rotated", "rsa-import"):
                key = client.get_key(made[which].name, made[which].properties.version)
                assert key.key.n == made[which].key.n
                with crypto_client(server, key) as c:
                    d = digest("PS384")
                    check_rsa_signature(
                        key, "PS384", d, c.sign(SignatureAlgorithm.ps384, d).signature
                    )
            with crypto_client(server, again["rsa"]) as c:
                opened = c.decrypt(EncryptionAlgorithm.rsa_oaep, before["rsa"].ciphertext)
                assert opened.plaintext == b"before restart"
                unwrapped = c.unwrap_key(
                    KeyWrapAlgorithm.rsa_oaep_256, before["rsa-wrap"].encrypted_key
                )
                assert unwrapped.key == b"w" * 32
            for which, alg in (("ec", "ES384"), ("ec-import", "ES256")):
                with crypto_client(server, again[which]) as c:
                    d = digest(alg)
                    signed = c.sign(SignatureAlgorithm(alg), d)
                    check_ec_signature(again[which], alg, d, signed.signature)
                    assert c.verify(SignatureAlgorithm(alg), d, signed.signature).is_valid
            with remote_crypto(server, again["oct"]) as c:
                sealed = before["oct"]
                opened = c.decrypt(
                    EncryptionAlgorithm.a256_gcm,
                    sealed.ciphertext,
                    iv=sealed.iv,
                    authentication_tag=sealed.tag,
                )
                assert opened.plaintext == b"before restart"
                unwrapped = c.unwrap_key(KeyWrapAlgorithm.aes_256, before["oct-wrap"].encrypted_key)
                assert unwrapped.key == b"c" * 32
            with remote_crypto(server, again["oct-import"]) as c:
                sealed = before["oct-import"]
                opened = c.decrypt(EncryptionAlgorithm.a128_cbcpad, sealed.ciphertext, iv=sealed.iv)
                assert opened.plaintext == b"pad me"

            # Soft delete keeps the objects (recoverable); purge destroys them.
            for name in ("hsm-rsa", "hsm-ec", "hsm-oct"):
                client.begin_delete_key(name).wait()
            recovered = client.begin_recover_deleted_key("hsm-ec").result()
            with crypto_client(server, recovered) as c:
                d = digest("ES384")
                assert c.verify(
                    SignatureAlgorithm.es384, d, c.sign(SignatureAlgorithm.es384, d).signature
                ).is_valid
            client.begin_delete_key("hsm-ec").wait()
            for name in ("hsm-rsa", "hsm-ec", "hsm-oct"):
                client.purge_deleted_key(name)
                try:
                    client.get_deleted_key(name)
                    raise AssertionError(f"{name} still deleted-but-present after purge")
                except ResourceNotFoundError:
                    pass
    finally:
        stop(server)

    objects = inspect(softhsm, token)
    for which in ("rsa", "rsa-rotated", "ec", "oct"):
        assert objects_of(objects, made[which]) == [], f"{which}: still in the token after purge"
    for which in ("rsa-import", "ec-import", "oct-import"):
        assert objects_of(objects, made[which]), f"{which}: gone though never purged"
    assert any(o["label"].startswith("kvault-root-") for o in objects)


DESTROY = textwrap.dedent(
    """
    import sys
    import pkcs11
    from pkcs11 import Attribute
    module, label, pin, version = sys.argv[1:5]
    token = pkcs11.lib(module).get_token(token_label=label)
    with token.open(rw=True, user_pin=pin) as s:
        for obj in list(s.get_objects()):
            if obj[Attribute.LABEL].endswith(version):
                obj.destroy()
    """
)


def test_a_key_whose_token_object_vanished_fails_loudly(
    softhsm: SoftHSMEnv, tmp_path: Path
) -> None:
    """An operator deleted the object from the token behind kvault's back: using the key is a
    server-side fault (5xx, not a 4xx blaming the caller), and the operator's log says so,
    as the error message promises ("the operator's log has the details")."""
    token = softhsm.init_token()
    data = tmp_path / "data"
    server = start(softhsm, token, data)
    try:
        with key_client(server) as client:
            key = client.create_ec_key("doomed", curve="P-256", hardware_protected=True)
    finally:
        stop(server)
    subprocess.run(
        [
            sys.executable,
            "-c",
            DESTROY,
            token.module,
            token.label,
            token.pin,
            key.properties.version or "?",
        ],
        env={**os.environ, "SOFTHSM2_CONF": str(softhsm.conf)},
        check=True,
        timeout=120,
    )
    assert objects_of(inspect(softhsm, token), key) == []

    server = start(softhsm, token, data)
    try:
        with key_client(server) as client:
            again = client.get_key("doomed")
            request_ids: list[str] = []
            with remote_crypto(server, again) as c:
                try:
                    c.sign(
                        SignatureAlgorithm.es256,
                        digest("ES256"),
                        raw_response_hook=lambda r: request_ids.append(
                            r.http_response.headers.get("x-ms-request-id", "")
                        ),
                    )
                    raise AssertionError("signing with a key whose HSM object is gone succeeded")
                except HttpResponseError as e:
                    assert e.status_code is not None and e.status_code >= 500, e.message
    finally:
        stop(server)
    printed = settled_output(server)
    logged = printed.split("Ctrl-C to stop", 1)[-1]  # after the announcement
    assert request_ids[-1] in logged or "HSMError" in logged, (
        f"nothing logged for request {request_ids[-1]} (HTTP 500); the server printed:\n{printed}"
    )
