"""The source interface (as ESO's provider clients): one implementation per item kind a
VaultSecret can project. Projecting keys or certificates is a new source module registered
in :mod:`kvault.controller.vaultsecret.sources`, not a new branch in the reconcile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from kvault.controller.vaultsecret.plan import Plan, Ref
from kvault.controller.vaultsecret.values import Value
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
    #: A source that writes several Secret keys for one ``data[]`` entry (a ``Certificate``:
    #: ``tls.crt``, ``tls.key``, ``ca.crt``, and its PKCS#12 keystores as
    #: :class:`~.values.Binary` values) gives them here, Secret key -> value, and leaves
    #: ``value`` empty.
    parts: Mapping[str, Value] = field(default_factory=dict)
    #: What the VaultSecret's status reports about the item besides its version (names,
    #: serial numbers, times: never values).
    facts: Mapping[str, Any] | None = None


class Need(NamedTuple):
    """One operation authorised before an item is read: on ``scope`` (``secrets/<name>``);
    ``note`` is added to a denial's message (why this operation, which role grants it)."""

    operation: str
    scope: str
    note: str = ""


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


@runtime_checkable
class NeedsMore(Protocol):
    """A source whose read of one item needs more than ``get_operation`` on its scope (a
    certificate's private key is read from its secret: ``SecretGet`` on ``secrets/<name>``,
    as Azure's ``Key Vault Certificate User`` role grants; its keystores' password from
    the secret ``keystores.pkcs12.passwordRef`` names)."""

    def also_needs(self, ref: Ref) -> Sequence[Need]:
        """The further operations authorised before the entry ``ref`` is read."""
        ...


def needs(source: Source, ref: Ref) -> list[Need]:
    """Everything authorised before ``source`` reads the entry ``ref``: its
    ``get_operation`` on the item's scope, then what a :class:`NeedsMore` source adds."""
    out = [Need(source.get_operation, source.scope(ref.name))]
    if isinstance(source, NeedsMore):
        out += source.also_needs(ref)
    return out
