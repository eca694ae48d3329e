"""The plaintext form of an item's rows, for any kind: version, head and deleted records.

A version row is the version's metadata and its value's fields in one flat JSON object
(sorted keys); a head (or deleted) row is the current version's metadata plus the deletion
dates. A kind extends :class:`ItemMeta` with its own metadata fields (a secret's
``contentType``) and supplies a :class:`ValueCodec` for its value's fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, Self, TypeVar

from kvault.errors import IntegrityError
from kvault.vault.model import VaultInfo
from kvault.vault.records import dump, load

V = TypeVar("V")
M = TypeVar("M", bound="ItemMeta")


@dataclass(frozen=True, slots=True)
class ItemMeta:
    """A version's metadata, shared by its version, head and deleted records."""

    name: str  # as the user spelled it
    version: str
    enabled: bool
    created: int
    updated: int
    not_before: int | None = None
    expires: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    #: Owned by an item of another kind (a certificate's key and secret): written only
    #: through its owner. Stored only when true (the persisted format of other items is
    #: unchanged).
    managed: bool = False

    def to_doc(self) -> dict[str, Any]:
        doc = {
            "name": self.name,
            "version": self.version,
            "enabled": self.enabled,
            "created": self.created,
            "updated": self.updated,
            "nbf": self.not_before,
            "exp": self.expires,
            "tags": self.tags,
        }
        if self.managed:
            doc["managed"] = True
        return doc

    def common(self, vault: VaultInfo) -> dict[str, Any]:
        """The fields of :class:`~kvault.vault.model.ItemProperties` (a kind's view adds its
        own)."""
        return {
            "vault": vault.name,
            "name": self.name,
            "version": self.version,
            "enabled": self.enabled,
            "created": self.created,
            "updated": self.updated,
            "not_before": self.not_before,
            "expires": self.expires,
            "tags": dict(self.tags),
            "recovery_level": vault.recovery_level,
            "recoverable_days": vault.retention_days,
            "managed": self.managed,
        }

    @classmethod
    def own_fields(cls, doc: dict[str, Any]) -> tuple[Any, ...]:
        """A kind's own fields from ``doc``, in the order they follow ``tags`` (positional:
        this runs for every row read)."""
        return ()

    @classmethod
    def from_doc(cls, doc: dict[str, Any], what: str) -> Self:
        try:
            return cls(
                doc["name"],
                doc["version"],
                doc["enabled"],
                doc["created"],
                doc["updated"],
                doc["nbf"],
                doc["exp"],
                dict(doc["tags"]),
                doc.get("managed", False) is True,
                *cls.own_fields(doc),
            )
        except (KeyError, TypeError, ValueError):
            raise IntegrityError(f"stored {what} metadata is malformed") from None


class ValueCodec(Protocol[V]):
    """A kind's value as fields of its version record (never in a head row or a log)."""

    def to_doc(self, value: V) -> dict[str, Any]: ...

    def from_doc(self, doc: dict[str, Any]) -> V:
        """Pop the value's fields from ``doc``; raise ``ValueError`` when they are malformed."""
        ...


@dataclass(frozen=True, slots=True)
class VersionRecord(Generic[M, V]):
    meta: M
    value: V


@dataclass(frozen=True, slots=True)
class HeadRecord(Generic[M]):
    """Points at the current version and copies its metadata, so listings read one row."""

    meta: M
    deleted_date: int | None = None
    scheduled_purge_date: int | None = None

    def undeleted(self) -> HeadRecord[M]:
        return replace(self, deleted_date=None, scheduled_purge_date=None)


@dataclass(frozen=True, slots=True)
class Codec(Generic[M, V]):
    """Encodes and decodes one kind's records (``what`` names the kind in errors)."""

    meta: type[M]
    value: ValueCodec[V]
    what: str

    def encode_version(self, record: VersionRecord[M, V]) -> bytes:
        return dump({**record.meta.to_doc(), **self.value.to_doc(record.value)})

    def decode_version(self, raw: bytes) -> VersionRecord[M, V]:
        doc = load(raw, f"{self.what} version")
        try:
            value = self.value.from_doc(doc)
        except ValueError:
            raise IntegrityError(f"stored {self.what} version is malformed") from None
        return VersionRecord(self.meta.from_doc(doc, self.what), value)

    def decode_version_known(self, raw: bytes, meta: M | None) -> tuple[VersionRecord[M, V], M]:
        """:meth:`decode_version` with the version's metadata as decoded before from the same
        stored bytes (``None``: decode it too), and that metadata (to keep: no value)."""
        if meta is None:
            record = self.decode_version(raw)
            return record, record.meta
        doc = load(raw, f"{self.what} version")
        try:
            value = self.value.from_doc(doc)
        except ValueError:
            raise IntegrityError(f"stored {self.what} version is malformed") from None
        return VersionRecord(meta, value), meta

    def encode_value(self, value: V) -> bytes:
        """A value alone (a certificate's key waiting in its pending operation)."""
        return dump(self.value.to_doc(value))

    def decode_value(self, raw: bytes) -> V:
        try:
            return self.value.from_doc(load(raw, f"{self.what} value"))
        except ValueError:
            raise IntegrityError(f"stored {self.what} value is malformed") from None

    def encode_head(self, head: HeadRecord[M]) -> bytes:
        return dump(
            {
                **head.meta.to_doc(),
                "deletedDate": head.deleted_date,
                "scheduledPurgeDate": head.scheduled_purge_date,
            }
        )

    def decode_head(self, raw: bytes) -> HeadRecord[M]:
        doc = load(raw, self.what)
        deleted, purge = doc.pop("deletedDate", None), doc.pop("scheduledPurgeDate", None)
        return HeadRecord(self.meta.from_doc(doc, self.what), deleted, purge)
