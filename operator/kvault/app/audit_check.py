"""The audit log against the vault's state: every stored item version must be named by an
audit line (its ``committing`` line, written durably before the commit, or its ``ok`` line),
or come back with its item through a restore (one line names the item, not each version).

Run by ``kvault audit verify FILE --against DATA_DIR``: the data directory is opened with
the same HSM plugin as the server (the vault records are sealed), read only; version ids
are random, so a line naming the version (in the same vault, for the same item) can only
be its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvault.vault.service import Kvault

#: Audit outcomes that mean the change may have been stored.
_STORED = frozenset({"ok", "committing"})


@dataclass(frozen=True, slots=True)
class Unaudited:
    """A stored version no audit line accounts for."""

    vault: str
    kind: str
    item: str  # lower-cased, as storage keys it
    version: str


def audit_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The lines of an audit log as objects (the chain is :func:`kvault.audit.verify`'s)."""
    with path.open("rb") as f:
        for raw in f:
            if raw.strip():
                line = json.loads(raw)
                if isinstance(line, dict):
                    yield line


async def unaudited_versions(kv: Kvault, lines: Iterable[dict[str, Any]]) -> list[Unaudited]:
    """Every version stored in ``kv`` (live and deleted vaults, live and deleted items, every
    kind) that no line of ``lines`` accounts for."""
    named: set[tuple[str, str, str]] = set()
    restored: set[tuple[str, str]] = set()
    for line in lines:
        if line.get("outcome") not in _STORED:
            continue
        where, item = str(line.get("vault", "")), str(line.get("item", "")).lower()
        if str(line.get("operation", "")).endswith("Restore"):
            restored.add((where, item))
        if line.get("version"):
            named.add((where, item, str(line["version"])))
    missing = []
    for vault in [*await kv.vaults.list(), *await kv.vaults.list(deleted=True)]:
        for engine in kv.kinds:
            prefix = engine.kind.layout.all_versions(vault.id)
            for row in await kv.storage.list(prefix):
                item, _, version = row.key[len(prefix) :].partition("/")
                if (vault.name, item, version) in named or (vault.name, item) in restored:
                    continue
                missing.append(Unaudited(vault.name, engine.kind.name, item, version))
    return missing
