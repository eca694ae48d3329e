"""One racer of ``test_conflicting_processes_exactly_one_wins``: a separate process (a replica).

Run as ``python cas_racer.py ID ROUNDS START_AT`` with the DSN in ``KVAULT_RACE_DSN``. Waits
until the wall-clock time ``START_AT``, then for each round tries to create ``race/N`` with
``expect=ABSENT`` and prints ``N:won`` or ``N:lost``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from kvault.errors import StorageConflict
from kvault.storage.base import ABSENT, Put
from kvault.storage.postgresql import PostgreSQLStorage


async def main(ident: int, rounds: int, start_at: float) -> None:
    storage = PostgreSQLStorage(os.environ["KVAULT_RACE_DSN"], pool_size=1)
    await storage.open()
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        for n in range(rounds):
            try:
                await storage.commit([Put(f"race/{n}", b"%d" % ident, expect=ABSENT)])
                print(f"{n}:won")
            except StorageConflict:
                print(f"{n}:lost")
    finally:
        await storage.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
