"""An in-process feed of what changed, so projections follow a write at once (no polling)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Vault operations that change what a reader would see; each item kind adds its own
#: (:attr:`kvault.vault.items.kind.ItemKind.mutations`).
VAULT_MUTATIONS = frozenset(
    {
        "VaultCreate",
        "VaultUpdate",
        "VaultDelete",
        "VaultRecover",
        "VaultPurge",
    }
)


@dataclass(frozen=True, slots=True)
class Change:
    vault: str
    operation: str
    item: str = ""  # the item's name as spelled by the writer; "" for vault-wide changes
    version: str = ""
    remote: bool = False  # made by another replica (heard through the shared storage)


Subscriber = Callable[[Change], None]


class ChangeFeed:
    """Subscribers are called synchronously after each successful mutation; they must be
    quick (hand the change to a queue) and never see values."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; returns the function that removes it again."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def publish(self, change: Change) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(change)
            except Exception:  # a broken subscriber must not fail the write that succeeded
                log.exception("change subscriber failed for %s %s", change.operation, change.vault)
