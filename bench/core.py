"""Core benchmark: envelope encryption per 1 KiB item beside raw AES-256-GCM, per HSM plugin.

Reported as ratios measured in the same run, so they hold on any machine:
``read_vs_raw`` = raw AES-GCM decrypts/s divided by envelope opens/s (goal <= 2.5) and
``pkcs11_read_vs_software`` = software opens/s divided by pkcs11 opens/s (goal <= 1.1).
Reads are measured warm (the item's DEK cached, as for a hot secret) and cold (every DEK
unwrapped by the KEK). Full ``vault`` get/set through SQLite are reported for context.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.softhsm import softhsm_token
from bench.timing import aops_per_second, ops_per_second
from kvault.app.backends import open_kvault
from kvault.barrier.context import Context
from kvault.hsm.registry import load

ITEM = 1024
COLD = 20000


def raw_aes_gcm(seconds: float) -> dict[str, float]:
    aead = AESGCM(AESGCM.generate_key(256))
    data, aad = os.urandom(ITEM), b"vault\x1fsecret-version\x1fname\x1fversion"
    nonce = os.urandom(12)
    blob = aead.encrypt(nonce, data, aad)
    return {
        "encrypt_ops": ops_per_second(lambda: aead.encrypt(os.urandom(12), data, aad), seconds),
        "decrypt_ops": ops_per_second(lambda: aead.decrypt(nonce, blob, aad), seconds),
    }


async def plugin(kind: str, options: dict[str, str], work: Path, seconds: float) -> dict[str, Any]:
    kv = await open_kvault(work / kind, load(kind, options))
    try:
        await kv.vaults.create("bench", retention_days=7)
        vault = await kv.vaults.get("bench")
        ctx = Context(vault.id, "secret-version", "item", "0" * 32)
        data = os.urandom(ITEM)
        blob = await kv.barrier.seal(ctx, data)
        value = os.urandom(ITEM // 2).hex()
        await kv.secrets.set("bench", "item", value)
        counter = iter(range(10**9))
        cold_blobs = [await kv.barrier.seal(ctx, data) for _ in range(COLD)]
        kv.barrier.clear_caches()
        start = time.perf_counter()
        for blob_ in cold_blobs:  # every DEK unwrapped, the KEK once (one HSM call)
            await kv.barrier.open(ctx, blob_)
        cold = COLD / (time.perf_counter() - start)
        return {
            "envelope_read_cold_dek_ops": cold,
            "envelope_write_ops": await aops_per_second(
                lambda: kv.barrier.seal(ctx, data), seconds
            ),
            "envelope_read_ops": await aops_per_second(lambda: kv.barrier.open(ctx, blob), seconds),
            "vault_get_ops": await aops_per_second(
                lambda: kv.secrets.get("bench", "item"), seconds
            ),
            "vault_set_ops": await aops_per_second(
                lambda: kv.secrets.set("bench", f"w{next(counter) % 50}", value), seconds
            ),
        }
    finally:
        await kv.close()


async def run(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kvault-bench-") as tmp:
        work = Path(tmp)
        raw = raw_aes_gcm(seconds)
        software = await plugin("software", {"key_file": str(work / "root.key")}, work, seconds)
        with softhsm_token(work / "softhsm") as options:
            pkcs11 = await plugin("pkcs11", options, work, seconds)
    result: dict[str, Any] = {
        "item_bytes": ITEM,
        "raw_aes_gcm": {k: round(v) for k, v in raw.items()},
        "software": {k: round(v) for k, v in software.items()},
        "pkcs11": {k: round(v) for k, v in pkcs11.items()},
    }
    result["ratios"] = {
        "software_read_vs_raw": round(raw["decrypt_ops"] / software["envelope_read_ops"], 2),
        "software_write_vs_raw": round(raw["encrypt_ops"] / software["envelope_write_ops"], 2),
        "pkcs11_read_vs_raw": round(raw["decrypt_ops"] / pkcs11["envelope_read_ops"], 2),
        "software_cold_dek_read_vs_raw": round(
            raw["decrypt_ops"] / software["envelope_read_cold_dek_ops"], 2
        ),
        "pkcs11_read_vs_software": round(
            software["envelope_read_ops"] / pkcs11["envelope_read_ops"], 2
        ),
    }
    result["goals"] = {
        "read_vs_raw_max": 2.5,
        "pkcs11_read_vs_software_max": 1.1,
        "met": result["ratios"]["software_read_vs_raw"] <= 2.5
        and result["ratios"]["pkcs11_read_vs_raw"] <= 2.5
        and result["ratios"]["pkcs11_read_vs_software"] <= 1.1,
    }
    return result
