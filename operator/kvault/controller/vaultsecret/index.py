"""Which VaultSecrets a vault write concerns: an index from vault items to the VaultSecrets
that project them, fed by the vault's in-process change feed (a write re-syncs within
milliseconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kvault.controller.workqueue import Key
from kvault.vault.changes import Change


@dataclass
class ProjectionIndex:
    """(vault, item) -> VaultSecrets that read it; vault -> those that list it or all."""

    _items: dict[tuple[str, str], set[Key]] = field(default_factory=dict)
    _vaults: dict[str, set[Key]] = field(default_factory=dict)
    _listers: dict[str, set[Key]] = field(default_factory=dict)
    _of: dict[Key, tuple[str, frozenset[str], bool]] = field(default_factory=dict)

    def put(self, key: Key, vault: str, items: set[str], lists: bool) -> None:
        entry = (vault, frozenset(items), lists)
        if self._of.get(key) == entry:
            return
        self.drop(key)
        self._of[key] = entry
        self._vaults.setdefault(vault, set()).add(key)
        for item in items:
            self._items.setdefault((vault, item), set()).add(key)
        if lists:
            self._listers.setdefault(vault, set()).add(key)

    def drop(self, key: Key) -> None:
        entry = self._of.pop(key, None)
        if entry is None:
            return
        vault, items, _ = entry
        for bucket in (
            [self._vaults.get(vault)]
            + [self._items.get((vault, i)) for i in items]
            + [self._listers.get(vault)]
        ):
            if bucket is not None:
                bucket.discard(key)

    def affected(self, change: Change) -> set[Key]:
        if not change.item:  # a vault-wide change: roles, deletion, recovery
            return set(self._vaults.get(change.vault, ()))
        return set(self._items.get((change.vault, change.item.lower()), ())) | set(
            self._listers.get(change.vault, ())
        )
