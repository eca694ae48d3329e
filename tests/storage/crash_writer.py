"""Writer half of the crash tests: write forever, report what was acknowledged.

Run as ``python crash_writer.py TARGET SEED``: ``TARGET`` is a SQLite database path, or
``postgresql`` for the database whose DSN is in ``KVAULT_CRASH_DSN`` (never in argv). Prints
``ready`` once the store is open; then for each commit ``intent SEQ KEY SHA256`` lines (``-``
for a delete) before calling ``commit()`` and ``ack SEQ KEY SHA256`` lines after it returns.
Every line is flushed before moving on, so the parent knows exactly which commits were
acknowledged when it SIGKILLs this process. If the store becomes unavailable (the database
server was killed) it prints ``unavailable SEQ`` and exits with status 3: that commit may or
may not have landed, entirely or not at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys
from pathlib import Path

from kvault.errors import Unavailable
from kvault.storage.base import Delete, Op, Put, Storage
from kvault.storage.postgresql import PostgreSQLStorage
from kvault.storage.sqlite import SQLiteStorage

KEYS = 150
SIZES = (0, 1, 32, 300, 3000, 20_000, 70_000)
EXIT_UNAVAILABLE = 3


def emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


async def main(target: str, seed: int) -> int:
    rng = random.Random(seed)
    storage: Storage
    if target == "postgresql":
        storage = PostgreSQLStorage(os.environ["KVAULT_CRASH_DSN"], pool_size=2, timeout=5)
        await storage.open()
    else:
        sqlite = SQLiteStorage(Path(target))
        await sqlite.open()
        storage = sqlite
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
        try:
            await storage.commit(ops)
        except Unavailable:
            emit(f"unavailable {seq}\n")
            return EXIT_UNAVAILABLE
        emit("".join(f"ack {line}\n" for line in lines))
        if isinstance(storage, SQLiteStorage) and rng.random() < 0.03:
            await storage.checkpoint()  # also die in the middle of checkpoints


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]))))
