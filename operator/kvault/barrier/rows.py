"""Every storage row key kvault writes, in one place (the barrier is the only door to storage).

System rows live under ``sys/``: the keyrings (``sys/kek/<vault-id>``), the vault records
(``sys/vault/<name>``), the token-signing keys and the TLS CA that every replica serves
under. A vault's items live under ``v/<vault-id>/``, three prefixes per item kind: the
heads (current version's metadata), the versions (each with its value) and the deleted
items. Keys hold only ids and lower-cased
item names, never anything secret. These strings are the persisted format: changing one
orphans existing data.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM = "sys"
KEYRINGS = "sys/kek/"
VAULTS = "sys/vault/"
SIGNING_KEY = "sys/identity/signing-key"
TLS_CA = "sys/tls/ca"
ITEMS = "v/"


def keyring(vault_id: str) -> str:
    return KEYRINGS + vault_id


def vault_record(name: str) -> str:
    return VAULTS + name


def vault_items(vault_id: str) -> str:
    """Everything a vault holds (deleted with the vault when it is purged)."""
    return f"{ITEMS}{vault_id}/"


@dataclass(frozen=True, slots=True)
class ItemRows:
    """The three row prefixes of one item kind inside a vault."""

    heads: str
    versions: str
    deleted: str

    def head_prefix(self, vault_id: str) -> str:
        return f"{ITEMS}{vault_id}/{self.heads}/"

    def version_prefix(self, vault_id: str, lname: str) -> str:
        return f"{ITEMS}{vault_id}/{self.versions}/{lname}/"

    def all_versions_prefix(self, vault_id: str) -> str:
        """Every version of every item of the kind (``<lname>/<version>`` below it)."""
        return f"{ITEMS}{vault_id}/{self.versions}/"

    def deleted_prefix(self, vault_id: str) -> str:
        return f"{ITEMS}{vault_id}/{self.deleted}/"


def key_policies(vault_id: str) -> str:
    """The keys' rotation policies (one per key name, beside the key's own rows)."""
    return f"{ITEMS}{vault_id}/kp/"


def key_policy(vault_id: str, lname: str) -> str:
    return key_policies(vault_id) + lname


def certificate_rows(vault_id: str, what: str) -> str:
    """A certificate name's companion rows, by ``what``: ``cp`` its policy, ``co`` its
    pending operation, ``cs`` the lifetime actions done for its current version; ``ci`` the
    vault's issuers, ``cc`` its contacts (one row)."""
    assert what in ("cp", "co", "cs", "ci", "cc")
    return f"{ITEMS}{vault_id}/{what}/"


#: Per item kind. Keys and certificates are reserved here so that no two kinds can collide.
ITEM_ROWS: dict[str, ItemRows] = {
    "secret": ItemRows("s", "sv", "ds"),
    "key": ItemRows("k", "kv", "dk"),
    "certificate": ItemRows("c", "cv", "dc"),
}
