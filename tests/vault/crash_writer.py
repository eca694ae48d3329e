"""A writer that acknowledges each secret write on stdout, to be SIGKILLed by test_crash."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import sys
from pathlib import Path

from kvault.app.backends import open_kvault
from kvault.errors import Conflict
from kvault.hsm.registry import load
from kvault.vault.service import Kvault


async def main(data_dir: Path, key_file: Path, seed: int) -> None:
    rng = random.Random(seed)
    kv = await open_kvault(data_dir, load("software", {"key_file": str(key_file)}))
    with contextlib.suppress(Conflict):
        await kv.vaults.create("crash", retention_days=7)
    print("ready", flush=True)
    # Several writers at once: commits and audit lines of different requests interleave.
    await asyncio.gather(*(_writer(kv, random.Random(rng.random()), w) for w in range(WRITERS)))


WRITERS = 4


async def _writer(kv: Kvault, rng: random.Random, writer: int) -> None:
    i = 0
    while True:
        i += 1
        name = f"s{rng.randrange(25)}"
        value = os.urandom(rng.randrange(1, 2048)).hex()
        with contextlib.suppress(Conflict):  # two writers on one name: one may conflict
            s = await kv.secrets.set("crash", name, value, tags={"n": f"{writer}-{i}"})
            digest = hashlib.sha256(value.encode()).hexdigest()
            sys.stdout.write(f"ack {name} {s.properties.version} {digest}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))
