"""Writer half of the crash test: write forever, report what was acknowledged.

Run as ``python crash_writer.py DB SEED``. Prints ``ready`` once the store is open; then for
each commit ``intent SEQ KEY SHA256`` lines (``-`` for a delete) before calling ``commit()``
and ``ack SEQ KEY SHA256`` lines after it returns. Every line is flushed before moving on, so the
parent knows exactly which commits were acknowledged when it SIGKILLs this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
from pathlib import Path

from kvault.storage.base import Delete, Op, Put
from kvault.storage.sqlite import SQLiteStorage

KEYS = 150
SIZES = (0, 1, 32, 300, 3000, 20_000, 70_000)


def emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


async def main(path: Path, seed: int) -> None:
    rng = random.Random(seed)
    storage = SQLiteStorage(path)
    await storage.open()
    emit("ready\n")
    seq = 0
    while True:
        seq += 1
        ops: list[Op] = []
        lines: list[str] = []
        for _ in range(1 if rng.random() < 0.5 else rng.randint(2, 8)):
            key = f"k/{rng.randrange(KEYS):03d}"
            if rng.random() < 0.15:
                ops.append(Delete(key))
                lines.append(f"{seq} {key} -")
            else:
                value = rng.randbytes(rng.choice(SIZES))
                ops.append(Put(key, value))
                lines.append(f"{seq} {key} {hashlib.sha256(value).hexdigest()}")
        emit("".join(f"intent {line}\n" for line in lines))
        await storage.commit(ops)
        emit("".join(f"ack {line}\n" for line in lines))
        if rng.random() < 0.03:
            await storage.checkpoint()  # also die in the middle of checkpoints


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
