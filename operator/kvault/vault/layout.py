"""Where each record lives (row keys from :mod:`kvault.barrier.rows`) and what its ciphertext
is bound to.

Row keys use the lower-cased item name (names are case-insensitive); the barrier context
repeats vault id, kind, name and version, so a row copied to another key fails to open. The
context kinds of an item kind ``k`` are ``k`` (head), ``k-version`` and ``deleted-k``: the
persisted format, unchanged since the first release for secrets.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from kvault.barrier import rows
from kvault.barrier.context import Context

SYSTEM = rows.SYSTEM
VAULTS = rows.VAULTS
#: Row keys and contexts kept per kind, by their exact inputs (every read of an item needs
#: two; each is a few strings and a frozen :class:`Context`); the oldest go first.
ROWS_KEPT = 8192


def _make_room(cache: OrderedDict[tuple[str, ...], tuple[str, Context]]) -> None:
    if len(cache) >= ROWS_KEPT:
        cache.popitem(last=False)  # the oldest (O(1), unlike a dict's first key)


def vault_row(name: str) -> tuple[str, Context]:
    return rows.vault_record(name), Context(SYSTEM, "vault", name)


def vault_prefix(vault_id: str) -> str:
    return rows.vault_items(vault_id)


@dataclass(frozen=True, slots=True)
class KindLayout:
    """The rows and contexts of one item kind."""

    kind: str
    rows: rows.ItemRows
    _heads: OrderedDict[tuple[str, ...], tuple[str, Context]] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )
    _versions: OrderedDict[tuple[str, ...], tuple[str, Context]] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )

    @classmethod
    def of(cls, kind: str) -> KindLayout:
        return cls(kind, rows.ITEM_ROWS[kind])

    def heads(self, vault_id: str) -> str:
        return self.rows.head_prefix(vault_id)

    def head_context(self, vault_id: str, lname: str) -> Context:
        return Context(vault_id, self.kind, lname)

    def head_row(self, vault_id: str, lname: str) -> tuple[str, Context]:
        key = (vault_id, lname)
        found = self._heads.get(key)
        if found is None:
            found = (self.heads(vault_id) + lname, Context(vault_id, self.kind, lname))
            _make_room(self._heads)
            self._heads[key] = found
        return found

    def deleted(self, vault_id: str) -> str:
        return self.rows.deleted_prefix(vault_id)

    def deleted_context(self, vault_id: str, lname: str) -> Context:
        return Context(vault_id, "deleted-" + self.kind, lname)

    def deleted_row(self, vault_id: str, lname: str) -> tuple[str, Context]:
        return self.deleted(vault_id) + lname, self.deleted_context(vault_id, lname)

    def versions(self, vault_id: str, lname: str) -> str:
        return self.rows.version_prefix(vault_id, lname)

    def all_versions(self, vault_id: str) -> str:
        return self.rows.all_versions_prefix(vault_id)

    def version_context(self, vault_id: str, lname: str, version: str) -> Context:
        return Context(vault_id, self.kind + "-version", lname, version)

    def version_row(self, vault_id: str, lname: str, version: str) -> tuple[str, Context]:
        key = (vault_id, lname, version)
        found = self._versions.get(key)
        if found is None:
            found = (
                self.versions(vault_id, lname) + version,
                self.version_context(vault_id, lname, version),
            )
            _make_room(self._versions)
            self._versions[key] = found
        return found


def key_policies(vault_id: str) -> str:
    return rows.key_policies(vault_id)


def key_policy_context(vault_id: str, lname: str) -> Context:
    return Context(vault_id, "key-rotation-policy", lname)


def key_policy_row(vault_id: str, lname: str) -> tuple[str, Context]:
    return rows.key_policy(vault_id, lname), key_policy_context(vault_id, lname)


#: A certificate name's companion rows (see :func:`kvault.barrier.rows.certificate_rows`).
_CERT_CONTEXTS = {
    "cp": "certificate-policy",
    "co": "certificate-operation",
    "cs": "certificate-schedule",
    "ci": "certificate-issuer",
    "cc": "certificate-contacts",
}


def certificate_rows(vault_id: str, what: str) -> str:
    return rows.certificate_rows(vault_id, what)


def certificate_context(vault_id: str, what: str, lname: str) -> Context:
    return Context(vault_id, _CERT_CONTEXTS[what], lname)


def certificate_row(vault_id: str, what: str, lname: str) -> tuple[str, Context]:
    return certificate_rows(vault_id, what) + lname, certificate_context(vault_id, what, lname)


SECRETS = KindLayout.of("secret")
# The secrets' rows by their historical names (tests and tools address rows directly).
heads = SECRETS.heads
head_row = SECRETS.head_row
deleted = SECRETS.deleted
deleted_row = SECRETS.deleted_row
versions = SECRETS.versions
version_row = SECRETS.version_row
