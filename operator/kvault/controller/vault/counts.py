"""A vault's item counts for its status."""

from __future__ import annotations

from kvault.vault import layout
from kvault.vault.model import VaultInfo
from kvault.vault.service import Kvault


async def item_counts(kv: Kvault, info: VaultInfo) -> dict[str, int]:
    """Counted from row keys alone: nothing is decrypted."""
    secrets = await kv.storage.list(layout.heads(info.id))
    deleted = await kv.storage.list(layout.deleted(info.id))
    return {"secrets": len(secrets), "deletedSecrets": len(deleted)}
