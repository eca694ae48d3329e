"""The source interface (as ESO's provider clients): one implementation per item kind a
VaultSecret can project. Projecting keys or certificates is a new source module registered
in :mod:`kvault.controller.vaultsecret.sources`, not a new branch in the reconcile."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kvault.controller.vaultsecret.plan import Plan, Ref
from kvault.vault.core import Caller
from kvault.vault.service import Kvault


@dataclass(frozen=True, slots=True)
class Reading:
    """One reconcile's read: the vault and plan, and who reads (for the domain's audit)."""

    kv: Kvault
    plan: Plan
    caller: Caller


@dataclass(frozen=True, slots=True)
class Projected:
    """One item's value, and the version it came from (reported in status)."""

    value: str
    version: str


class Source(Protocol):
    #: ``remoteRef.kind`` this source reads.
    kind: str
    #: The operations authorised before reading one item, and before listing the vault.
    get_operation: str
    list_operation: str

    def scope(self, name: str) -> str:
        """The role-assignment scope of item ``name`` (e.g. ``secrets/<name>``)."""
        ...

    async def find(self, reading: Reading, selector: Mapping[str, Any]) -> list[Ref]:
        """The items a ``dataFrom`` entry selects, each projected under its own name."""
        ...

    async def get(self, reading: Reading, ref: Ref) -> Projected:
        """The item ``ref`` names; raises ``Refused`` when it is missing or disabled."""
        ...
