"""Purging what has expired, as Azure does by itself: deleted items and deleted vaults whose
scheduled purge date has passed. Run by the replica holding the Lease, like the other
schedulers; every due date is stored with the deleted item, so nothing is lost to a restart.
"""

from __future__ import annotations

import asyncio
import logging

from kvault.errors import KvaultError
from kvault.vault.schedule import DEFAULT_INTERVAL, run_passes
from kvault.vault.service import Kvault

log = logging.getLogger(__name__)


class ExpiryScheduler:
    """Each pass purges, in every active vault and for every kind, the deleted items past
    their date (an owner's purge takes its managed items along), then the expired vaults.
    Each purge is audited (principal ``kvault``) by the domain."""

    def __init__(self, kv: Kvault) -> None:
        self._kv = kv

    async def tick(self) -> dict[str, list[str]]:
        """What was purged: ``<vault>/<plural>`` -> item names, ``vaults`` -> vault names."""
        purged: dict[str, list[str]] = {}
        for vault in await self._kv.vaults.list():
            for engine in self._kv.kinds:
                try:
                    names = await engine.purge_expired(vault.name)
                except KvaultError as exc:
                    log.warning(
                        "expired %s of vault %s not purged: %s",
                        engine.kind.plural,
                        vault.name,
                        exc.outcome,
                    )
                    continue
                if names:
                    purged[f"{vault.name}/{engine.kind.plural}"] = names
        vaults = await self._kv.vaults.purge_expired()
        if vaults:
            purged["vaults"] = vaults
        return purged

    async def run(self, stop: asyncio.Event, interval: float = DEFAULT_INTERVAL) -> None:
        await run_passes(self.tick, stop, interval, "expired-item purge")
