"""A vault's item counts for its status."""

from __future__ import annotations

from kvault.vault.model import VaultInfo
from kvault.vault.service import Kvault


async def item_counts(kv: Kvault, info: VaultInfo) -> dict[str, int]:
    """Counted by the domain from row keys alone: nothing is decrypted."""
    return await kv.item_counts(info)
