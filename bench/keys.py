"""Keys benchmark: cryptographic operations over REST, beside a secret GET and beside the
same operation in ``cryptography``, on both HSM plugins, all in one run.

For each plugin a ``kvault server --dev`` serves (its vault is premium, so the keys are
``-HSM`` keys: inside SoftHSM2 with ``pkcs11``, in process with ``software``). The load
generator of :mod:`bench.api` keeps 32 keep-alive TLS connections busy on ``GET`` of a
secret, then on each operation (ES256 and RS256 sign, RSA-OAEP-256 decrypt, A256KW
unwrap). Ratios are taken within one run, so they hold on any machine:
``<op>_vs_secret_get`` (goal >= 0.75 for ES256 sign and A256KW unwrap: the crypto is not the
bottleneck) and ``pkcs11_vs_software`` per operation (goal >= 0.5 for ES256 sign).
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from bench import api
from bench.softhsm import softhsm_token
from bench.timing import ops_per_second
from kvault.crypto import keys as jose
from kvault.crypto.jwk import b64url

_API = "api-version=7.5"
DIGEST = hashlib.sha256(b"kvault bench").digest()


async def _call(
    session: aiohttp.ClientSession, env: dict[str, str], method: str, path: str, body: Any
) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=env["KVAULT_CA_FILE"])
    url = f"{env['KVAULT_ENDPOINT']}{path}?{_API}"
    async with session.request(method, url, json=body, ssl=ctx) as response:
        doc: dict[str, Any] = await response.json()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {doc}")
        return doc


async def _prepare(env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Create the keys and inputs; returns operation -> (path, JSON body)."""
    headers = {"Authorization": f"Bearer {env['KVAULT_TOKEN']}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        await _call(s, env, "PUT", "/secrets/bench", {"value": "x" * 64})
        ec_key = await _call(s, env, "POST", "/keys/ec/create", {"kty": "EC-HSM", "crv": "P-256"})
        rsa_key = await _call(s, env, "POST", "/keys/rsa/create", {"kty": "RSA-HSM"})
        await _call(s, env, "POST", "/keys/oct/create", {"kty": "oct-HSM", "key_size": 256})
        public = jose.public_from_jwk(rsa_key["key"])
        cipher = jose.encrypt(public, "RSA-OAEP-256", b"k" * 32).value
        wrapped = await _call(
            s, env, "POST", "/keys/oct//wrapkey", {"alg": "A256KW", "value": b64url(b"k" * 32)}
        )
    ec_version = ec_key["key"]["kid"].rsplit("/", 1)[1]
    rsa_version = rsa_key["key"]["kid"].rsplit("/", 1)[1]
    digest = b64url(DIGEST)
    return {
        "es256_sign": (
            f"/keys/ec/{ec_version}/sign",
            json.dumps({"alg": "ES256", "value": digest}),
        ),
        "rs256_sign": (
            f"/keys/rsa/{rsa_version}/sign",
            json.dumps({"alg": "RS256", "value": digest}),
        ),
        "rsa_oaep_256_decrypt": (
            f"/keys/rsa/{rsa_version}/decrypt",
            json.dumps({"alg": "RSA-OAEP-256", "value": b64url(cipher)}),
        ),
        "a256kw_unwrap": (
            f"/keys/oct/{wrapped['kid'].rsplit('/', 1)[1]}/unwrapkey",
            json.dumps({"alg": "A256KW", "value": wrapped["value"]}),
        ),
    }


async def _plugin(extra: tuple[str, ...], seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kvault-bench-keys-") as tmp:
        proc, env = api._start_server(Path(tmp) / "data", *extra)
        try:
            ops = await _prepare(env)
            base = env["KVAULT_ENDPOINT"]
            out: dict[str, Any] = {
                "secret_get": api._measure(f"{base}/secrets/bench/?{_API}", env, seconds)
            }
            for name, (path, body) in ops.items():
                out[name] = api._measure(f"{base}{path}?{_API}", env, seconds, body)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    get = out["secret_get"]["req_per_s"] or 1.0
    out["ratios_vs_secret_get"] = {name: round(out[name]["req_per_s"] / get, 3) for name in ops}
    return out


def _local(seconds: float) -> dict[str, float]:
    """The same operations in ``cryptography`` in this process (no server, no HSM)."""
    eck = ec.generate_private_key(ec.SECP256R1())
    rsak = rsa.generate_private_key(65537, 2048)
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    cipher = rsak.public_key().encrypt(b"k" * 32, oaep)
    kek = os.urandom(32)
    wrapped = aes_key_wrap(kek, b"k" * 32)
    es = jose.generate("EC", crv="P-256")  # the same raw r||s path the server uses
    return {
        "es256_sign": round(ops_per_second(lambda: jose.sign(es, "ES256", DIGEST), seconds)),
        "ecdsa_der_sign": round(
            ops_per_second(lambda: eck.sign(DIGEST, ec.ECDSA(hashes.SHA256())), seconds)
        ),
        "rs256_sign": round(
            ops_per_second(lambda: rsak.sign(DIGEST, padding.PKCS1v15(), hashes.SHA256()), seconds)
        ),
        "rsa_oaep_256_decrypt": round(ops_per_second(lambda: rsak.decrypt(cipher, oaep), seconds)),
        "a256kw_unwrap": round(ops_per_second(lambda: aes_key_unwrap(kek, wrapped), seconds)),
    }


async def run(seconds: float) -> dict[str, Any]:
    duration = max(3.0, seconds * 3)
    software = await _plugin(("--hsm", "software"), duration)
    with (
        tempfile.TemporaryDirectory(prefix="kvault-bench-hsm-") as tmp,
        softhsm_token(Path(tmp)) as options,
    ):
        flags = tuple(
            arg for key, value in options.items() for arg in ("--hsm-option", f"{key}={value}")
        )
        pkcs11 = await _plugin(("--hsm", "pkcs11", *flags), duration)
    ops = list(software["ratios_vs_secret_get"])
    return {
        "transport": "HTTPS keep-alive, loopback",
        "connections": api.CONNECTIONS,
        "seconds_each": duration,
        "cores": os.cpu_count(),
        "software": software,
        "pkcs11": pkcs11,
        "cryptography_ops_per_s": _local(seconds),
        "pkcs11_vs_software": {
            op: round(pkcs11[op]["req_per_s"] / (software[op]["req_per_s"] or 1.0), 3) for op in ops
        },
        "goals": {
            "es256_sign_vs_secret_get": 0.75,
            "a256kw_unwrap_vs_secret_get": 0.75,
            "pkcs11_vs_software_es256_sign": 0.5,
        },
    }
