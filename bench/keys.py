"""Keys benchmark: cryptographic operations over REST, beside a secret GET and beside the
same operation in ``cryptography``, on both HSM plugins, all in one run.

Two ``kvault server --dev`` processes serve at once, one per plugin (their vault is premium,
so the keys are ``-HSM`` keys: inside SoftHSM2 with ``pkcs11``, in process with
``software``). The load generator of :mod:`bench.api` keeps 32 keep-alive TLS connections
busy on one thing at a time: a secret GET or an operation (ES256 and RS256 sign,
RSA-OAEP-256 decrypt, A256KW unwrap). Each operation takes turns with the secret GET of both
servers for :data:`bench.api.ROUNDS` rounds, so a change in the host's speed moves both
sides of a ratio alike; each ratio is the median over the rounds of the two rates measured
side by side, and each figure carries the server's CPU time per request.

Goals: ``ratios_vs_secret_get`` of the software server >= 0.75 for ES256 sign and A256KW
unwrap (the crypto is not the bottleneck); ``pkcs11_vs_software`` >= 0.5 for ES256 sign.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import ssl
import tempfile
from collections.abc import Iterator
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


@contextlib.contextmanager
def _server(data_dir: Path, *extra: str) -> Iterator[tuple[int, dict[str, str]]]:
    proc, env = api._start_server(data_dir, *extra)
    try:
        yield proc.pid, env
    finally:
        api._stop(proc)


async def _arms(plugin: str, pid: int, env: dict[str, str]) -> dict[str, api.Arm]:
    """The secret GET and each operation, on one server, named ``<plugin>/<what>``."""
    ops = await _prepare(env)
    base = env["KVAULT_ENDPOINT"]
    arms = {f"{plugin}/secret_get": api.Arm(pid, env, f"{base}/secrets/bench/?{_API}")}
    for name, (path, body) in ops.items():
        arms[f"{plugin}/{name}"] = api.Arm(pid, env, f"{base}{path}?{_API}", body)
    return arms


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
    duration = max(5.0, seconds * 5)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kvault-bench-keys-")))
        options = stack.enter_context(softhsm_token(tmp / "hsm"))
        flags = [
            arg for key, value in options.items() for arg in ("--hsm-option", f"{key}={value}")
        ]
        servers = {
            "software": stack.enter_context(_server(tmp / "software", "--hsm", "software")),
            "pkcs11": stack.enter_context(_server(tmp / "pkcs11", "--hsm", "pkcs11", *flags)),
        }
        arms: dict[str, api.Arm] = {}
        for plugin, (pid, env) in servers.items():
            arms |= await _arms(plugin, pid, env)
        ops = [name.split("/", 1)[1] for name in arms if name.startswith("software/")][1:]
        # Each operation takes turns with the secret GET of both servers (its baseline).
        per_op = {
            op: api.interleaved(
                {n: arms[n] for n in (f"{p}/{w}" for p in servers for w in ("secret_get", op))},
                duration,
            )
            for op in ops
        }
    out: dict[str, Any] = {
        "transport": "HTTPS keep-alive, loopback",
        "connections": api.CONNECTIONS,
        "seconds_each": duration,
        "rounds": api.ROUNDS,
        "cores": os.cpu_count(),
    }
    for plugin in servers:
        get = f"{plugin}/secret_get"
        mine: dict[str, Any] = {
            "secret_get": api.summary([w for runs in per_op.values() for w in runs[get]])
        }
        for op, runs in per_op.items():
            mine[op] = api.summary(runs[f"{plugin}/{op}"])
        mine["ratios_vs_secret_get"] = {
            op: api.ratio(runs[f"{plugin}/{op}"], runs[get]) for op, runs in per_op.items()
        }
        out[plugin] = mine
    out["pkcs11_vs_software"] = {
        op: api.ratio(runs[f"pkcs11/{op}"], runs[f"software/{op}"]) for op, runs in per_op.items()
    }
    out["cryptography_ops_per_s"] = _local(seconds)
    software_ratios = out["software"]["ratios_vs_secret_get"]
    measured = {
        "software_es256_sign_vs_secret_get": (software_ratios["es256_sign"], 0.75),
        "software_a256kw_unwrap_vs_secret_get": (software_ratios["a256kw_unwrap"], 0.75),
        "pkcs11_vs_software_es256_sign": (out["pkcs11_vs_software"]["es256_sign"], 0.5),
    }
    out["goals"] = {
        name: {"measured": got, "goal": goal, "met": got >= goal}
        for name, (got, goal) in measured.items()
    }
    return out
