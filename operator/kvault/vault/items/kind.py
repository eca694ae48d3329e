"""What makes an item kind: the description the generic engine (:mod:`.engine`) runs on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kvault.vault.items.records import Codec, ItemMeta
from kvault.vault.layout import KindLayout
from kvault.vault.model import VaultInfo

M = TypeVar("M", bound=ItemMeta)
V = TypeVar("V")
P = TypeVar("P")
I = TypeVar("I")  # noqa: E741 - the item (value and properties), as the kind returns it
D = TypeVar("D")

#: The operations every kind has; the audited name is ``title + verb`` (``SecretGet``).
VERBS = (
    "Set",
    "Get",
    "List",
    "ListVersions",
    "Update",
    "Delete",
    "GetDeleted",
    "ListDeleted",
    "Recover",
    "Purge",
    "Backup",
    "Restore",
)
#: The verbs that change what a reader sees (published on the change feed).
MUTATING_VERBS = ("Set", "Update", "Delete", "Recover", "Purge", "Restore")


@dataclass(frozen=True, slots=True)
class Link:
    """This kind owns the same-named item of kind ``kind`` (a certificate owns its key and
    its secret): deleting, recovering, purging, backing up or restoring the owner does the
    same to the linked item in the same atomic commit, and the linked item refuses writes
    through its own kind (Azure's "managed" items)."""

    kind: str


@dataclass(frozen=True, slots=True)
class ItemKind(Generic[M, V, P, I, D]):
    """One kind of vault item (secret, key, certificate) as data, not code paths.

    ``name``/``plural``/``title`` spell the kind in messages, RBAC scopes
    (``secrets/NAME``), REST collections and audited operation names. ``codec`` reads and
    writes its records; ``check_value`` validates a value against the size limit and
    ``attributes`` validates the kind's own metadata fields (keyword arguments of the
    kind's :class:`ItemMeta` subclass). ``properties``, ``item`` and ``deleted`` build the
    frozen views the domain returns. ``disabled_code`` is Azure's inner error code for a
    read of a disabled version.
    """

    name: str
    plural: str
    title: str
    codec: Codec[M, V]
    check_value: Callable[[V, int], object]
    attributes: Callable[[Mapping[str, Any]], dict[str, Any]]
    properties: Callable[[M, VaultInfo], P]
    item: Callable[[P, V], I]
    deleted: Callable[[P, int, int], D]
    disabled_code: str
    links: tuple[Link, ...] = ()
    #: The value holds nothing secret (a certificate), so a disabled version stays readable.
    public: bool = False
    #: The kind's own operations beyond :data:`VERBS` (a key's ``Sign``), and which of them
    #: change what a reader sees (``Create``, ``Rotate``).
    verbs: tuple[str, ...] = ()
    mutating: tuple[str, ...] = ()
    #: Rows kept decoded in memory (:class:`kvault.barrier.memo.Memo`), for a kind whose rows
    #: are read far more often than written; 0: none (secrets: values never outlive a read).
    memo_rows: int = 0
    layout: KindLayout = field(init=False)
    operations: Mapping[str, str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", KindLayout.of(self.name))
        object.__setattr__(self, "operations", {v: self.title + v for v in VERBS + self.verbs})

    @property
    def mutations(self) -> frozenset[str]:
        return frozenset(self.operations[v] for v in MUTATING_VERBS + self.mutating)

    @property
    def not_found_code(self) -> str:
        """Azure's error code for a missing item of this kind (``SecretNotFound``)."""
        return self.title + "NotFound"

    @property
    def backup_purpose(self) -> str:
        """What a backup blob of this kind is sealed for (it opens for nothing else)."""
        return f"{self.name}-backup"
