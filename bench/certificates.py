"""Certificates benchmark: self-signed issuance over REST beside the same build in
``cryptography``, for RSA-2048 and EC P-256, in one run.

A ``kvault server --dev`` serves (software HSM plugin). The load generator of :mod:`bench.api`
keeps its keep-alive TLS connections busy on ``POST /certificates/{name}/create`` with a
``Self`` policy; every request makes a new version of one name (key generation, X.509
signing, the secret and the key, all committed together), answered 202 with the operation.
Issuance is CPU-bound and slow next to the generator's 32 connections, so its in-window
count (``req_per_s``) is dominated by requests still queued when the window closes; the
figure used is ``issued_per_s``: versions committed, divided by the time from the first
request to the commit of the last one still in flight. ``ec_p256_pem`` is the EC row with a
PEM secret instead of the (legacy 3DES) PFX, to show what the PFX costs.

In this process the same certificate is built without a server: key generation plus
``CertificateBuilder.sign`` with the extensions a ``Self`` certificate carries, one at a time.
``rest_vs_raw`` is REST issuances/s over raw builds/s, measured in the same run, so it holds
on any machine; the absolute figures are for this one. Loopback only, bounded in time.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bench import api

_API = "api-version=7.5"
#: A measurement ends once the version count has not changed for this long (seconds) ...
SETTLED_AFTER = 2.0
#: ... or after this long at most.
SETTLE_LIMIT = 120.0
#: The policies issued over REST (the server fills Azure's defaults: PKCS#12 secret,
#: serverAuth+clientAuth, digitalSignature+keyEncipherment, 12 months).
POLICIES: dict[str, dict[str, Any]] = {
    "rsa2048": {"key_props": {"kty": "RSA", "key_size": 2048}},
    "ec_p256": {"key_props": {"kty": "EC", "crv": "P-256"}},
    # the same EC certificate with a PEM secret instead of the (legacy 3DES) PFX
    "ec_p256_pem": {
        "key_props": {"kty": "EC", "crv": "P-256"},
        "secret_props": {"contentType": "application/x-pem-file"},
    },
}
#: The raw build each REST row compares with.
_RAW_OF = {"rsa2048": "rsa2048", "ec_p256": "ec_p256", "ec_p256_pem": "ec_p256"}


def _body(kind: str) -> str:
    policy = {
        **POLICIES[kind],
        "x509_props": {"subject": f"CN=bench-{kind}"},
        "issuer": {"name": "Self"},
    }
    return json.dumps({"policy": policy})


async def _versions(env: dict[str, str], name: str) -> int:
    """How many versions of ``name`` exist (every successful create made one)."""
    ctx = ssl.create_default_context(cafile=env["KVAULT_CA_FILE"])
    headers = {"Authorization": f"Bearer {env['KVAULT_TOKEN']}"}
    url: str | None = f"{env['KVAULT_ENDPOINT']}/certificates/{name}/versions?{_API}&maxresults=25"
    count = 0
    async with aiohttp.ClientSession(headers=headers) as session:
        while url:
            async with session.get(url, ssl=ctx) as response:
                doc: dict[str, Any] = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"GET versions of {name}: {response.status} {doc}")
            count += len(doc.get("value") or [])
            url = doc.get("nextLink")
    return count


async def _settled(env: dict[str, str], name: str) -> tuple[int, float]:
    """Wait until the creates still in flight when the load generator stopped are committed:
    the final version count and when it was first seen."""
    count, changed_at = -1, time.perf_counter()
    deadline = changed_at + SETTLE_LIMIT
    while time.perf_counter() < deadline:
        now_count = await _versions(env, name)
        now = time.perf_counter()
        if now_count != count:
            count, changed_at = now_count, now
        elif now - changed_at >= SETTLED_AFTER:
            break
        await asyncio.sleep(0.2)
    return count, changed_at


async def _rest(seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kvault-bench-certs-") as tmp:
        proc, env = api._start_server(Path(tmp) / "data", "--hsm", "software")
        try:
            base = env["KVAULT_ENDPOINT"]
            for kind in POLICIES:
                name = f"bench-{kind.replace('_', '-')}"
                url = f"{base}/certificates/{name}/create?{_API}"
                start = time.perf_counter()
                result = api._measure(url, env, seconds, _body(kind))
                versions, done = await _settled(env, name)
                result["versions_created"] = versions
                result["issued_per_s"] = round(versions / (done - start), 1)
                out[kind] = result
        finally:
            api._stop(proc)
    return out


def _self_signed(new_key: Callable[[], rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey]) -> None:
    """What a Self policy's issuance signs: a new key and its self-signed certificate."""
    key = new_key()
    public = key.public_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=10)
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _per_second(op: Callable[[], None], seconds: float) -> dict[str, float]:
    """Run ``op`` one at a time until ``seconds`` have passed (at least 3 times)."""
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < seconds:
        op()
        n += 1
    elapsed = time.perf_counter() - start
    return {"builds": n, "per_s": round(n / elapsed, 1)}


def _raw(seconds: float) -> dict[str, dict[str, float]]:
    return {
        "rsa2048": _per_second(
            lambda: _self_signed(lambda: rsa.generate_private_key(65537, 2048)), seconds
        ),
        "ec_p256": _per_second(
            lambda: _self_signed(lambda: ec.generate_private_key(ec.SECP256R1())), seconds
        ),
    }


async def run(seconds: float) -> dict[str, Any]:
    duration = max(3.0, seconds * 3)
    rest = await _rest(duration)
    raw = _raw(duration)
    return {
        "transport": "HTTPS keep-alive, loopback",
        "connections": api.CONNECTIONS,
        "seconds_each": duration,
        "cores": os.cpu_count(),
        "rest_create": rest,
        "cryptography_builds": raw,
        "rest_vs_raw": {
            kind: round(rest[kind]["issued_per_s"] / (raw[_RAW_OF[kind]]["per_s"] or 1.0), 4)
            for kind in rest
        },
    }
