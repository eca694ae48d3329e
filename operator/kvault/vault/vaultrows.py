"""Every row a vault holds, by class: where it lives below the vault's prefix, what its
ciphertext is bound to, what a whole-vault backup counts it as, and how a restore checks it.

The classes are derived from :mod:`kvault.vault.layout` (one per item kind for heads,
versions and deleted items, plus the keys' rotation policies and the certificates' companion
rows), so a row below a vault's prefix that no class claims is a row this code does not
know: a backup refuses to leave it behind rather than miss it silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kvault.barrier.context import Context
from kvault.vault import layout, names
from kvault.vault.certificates.policy import CertificatePolicy
from kvault.vault.certificates.records import IssuerRecord, PendingRecord, decode_contacts
from kvault.vault.certificates.schedules import DoneRecord
from kvault.vault.items.kind import ItemKind
from kvault.vault.keys.kind import KEY, KeyValue
from kvault.vault.keys.policies import PolicyRecord
from kvault.vault.records import load

#: One segment of a row key below a class prefix: a lower-cased item or issuer name, or the
#: contacts row's fixed name.
_SEGMENT = re.compile(r"[0-9a-z-]{1,127}")
_ANY_ID = "0" * 32


def _below(prefix_of: Callable[[str], str]) -> str:
    """A prefix of :mod:`kvault.vault.layout` relative to the vault's own prefix."""
    full, vault = prefix_of(_ANY_ID), layout.vault_prefix(_ANY_ID)
    assert full.startswith(vault)
    return full[len(vault) :]


#: ``check(name, version, plaintext)``: raise (ValueError, KeyError, TypeError or
#: IntegrityError) unless the record reads back and names the row it is in.
Check = Callable[[str, str, bytes], None]


def _no_keys(raw: bytes) -> list[KeyValue]:
    return []


@dataclass(frozen=True, slots=True)
class RowClass:
    label: str  # what a backup's counts call it: secrets, secretVersions, deletedSecrets...
    prefix: str  # below the vault's prefix, e.g. "s/"
    context: Callable[[str, str, str], Context]  # (vault id, name, version)
    versioned: bool
    check: Check
    #: The key material a row holds (an HSM-held key's handle matters to a restore).
    key_values: Callable[[bytes], list[KeyValue]] = _no_keys


def _item_classes(kind: ItemKind[Any, Any, Any, Any, Any]) -> list[RowClass]:
    rows, codec, plural = kind.layout, kind.codec, kind.plural

    def named(meta_name: Any, name: str) -> None:
        if names.item_name(meta_name, kind.name) != name:
            raise ValueError("the record names another item than its row")

    def head(deleted: bool) -> Check:
        def check(name: str, version: str, raw: bytes) -> None:
            record = codec.decode_head(raw)
            named(record.meta.name, name)
            names.version(record.meta.version)
            if (record.deleted_date is not None) != deleted:
                raise ValueError("deletion state")

        return check

    def version_check(name: str, version: str, raw: bytes) -> None:
        record = codec.decode_version(raw)
        named(record.meta.name, name)
        if record.meta.version != version:
            raise ValueError("the record names another version than its row")

    key_values = _no_keys
    if kind.name == KEY.name:

        def key_values(raw: bytes) -> list[KeyValue]:
            return [KEY.codec.decode_version(raw).value]

    title = plural[:1].upper() + plural[1:]
    return [
        RowClass(
            plural, _below(rows.heads), lambda v, n, _: rows.head_context(v, n), False, head(False)
        ),
        RowClass(
            f"{kind.name}Versions",
            _below(rows.all_versions),
            rows.version_context,
            True,
            version_check,
            key_values,
        ),
        RowClass(
            f"deleted{title}",
            _below(rows.deleted),
            lambda v, n, _: rows.deleted_context(v, n),
            False,
            head(True),
        ),
    ]


def _decodes(decode: Callable[[bytes], object]) -> Check:
    def check(name: str, version: str, raw: bytes) -> None:
        decode(raw)

    return check


def _pending_keys(raw: bytes) -> list[KeyValue]:
    key = PendingRecord.decode(raw).key
    return [] if key is None else [KEY.codec.decode_value(key)]


def _companion(
    label: str, what: str, check: Check, keys: Callable[[bytes], list[KeyValue]] | None = None
) -> RowClass:
    return RowClass(
        label,
        _below(lambda v: layout.certificate_rows(v, what)),
        lambda v, n, _: layout.certificate_context(v, what, n),
        False,
        check,
        keys or _no_keys,
    )


def _companions() -> list[RowClass]:
    return [
        RowClass(
            "keyRotationPolicies",
            _below(layout.key_policies),
            lambda v, n, _: layout.key_policy_context(v, n),
            False,
            _decodes(PolicyRecord.decode),
        ),
        _companion(
            "certificatePolicies",
            "cp",
            _decodes(lambda raw: CertificatePolicy.from_doc(load(raw, "certificate policy"))),
        ),
        _companion("certificateOperations", "co", _decodes(PendingRecord.decode), _pending_keys),
        _companion("certificateSchedules", "cs", _decodes(DoneRecord.decode)),
        _companion("certificateIssuers", "ci", _decodes(IssuerRecord.decode)),
        _companion("certificateContacts", "cc", _decodes(decode_contacts)),
    ]


class VaultRows:
    """The row classes of a vault whose item kinds are ``kinds``."""

    def __init__(self, kinds: Iterable[ItemKind[Any, Any, Any, Any, Any]]) -> None:
        self.classes: tuple[RowClass, ...] = tuple(
            [c for kind in kinds for c in _item_classes(kind)] + _companions()
        )
        prefixes = [c.prefix for c in self.classes]
        assert len(set(prefixes)) == len(prefixes)

    def labels(self) -> dict[str, int]:
        """Every class's label with a zero count (a backup's counts name all of them)."""
        return {c.label: 0 for c in self.classes}

    def classify(self, suffix: str) -> tuple[RowClass, str, str] | None:
        """The class of the row at ``suffix`` (below the vault's prefix), its name and
        version; ``None`` for a key no class has (or of the wrong shape)."""
        for cls in self.classes:
            if suffix.startswith(cls.prefix):
                rest = suffix[len(cls.prefix) :]
                name, _, version = rest.partition("/")
                if not _SEGMENT.fullmatch(name):
                    return None
                if cls.versioned:
                    if not names.VERSION.fullmatch(version):
                        return None
                elif version or "/" in rest:
                    return None
                return cls, name, version
        return None
