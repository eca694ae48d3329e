"""The plaintext form of stored records (sealed by the barrier before they reach storage)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from kvault.errors import IntegrityError
from kvault.vault.model import RoleAssignment, SecretProperties, VaultInfo


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _load(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise IntegrityError(f"stored {what} is malformed") from None
    if not isinstance(doc, dict):
        raise IntegrityError(f"stored {what} is malformed")
    return doc


@dataclass(frozen=True, slots=True)
class VersionMeta:
    """A secret version's metadata, shared by version, head and deleted records."""

    name: str  # as the user spelled it
    version: str
    enabled: bool
    created: int
    updated: int
    not_before: int | None = None
    expires: int | None = None
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "enabled": self.enabled,
            "created": self.created,
            "updated": self.updated,
            "nbf": self.not_before,
            "exp": self.expires,
            "contentType": self.content_type,
            "tags": self.tags,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> VersionMeta:
        try:
            return cls(
                name=doc["name"],
                version=doc["version"],
                enabled=doc["enabled"],
                created=doc["created"],
                updated=doc["updated"],
                not_before=doc["nbf"],
                expires=doc["exp"],
                content_type=doc["contentType"],
                tags=dict(doc["tags"]),
            )
        except (KeyError, TypeError):
            raise IntegrityError("stored secret metadata is malformed") from None

    def properties(self, vault: VaultInfo) -> SecretProperties:
        return SecretProperties(
            vault=vault.name,
            name=self.name,
            version=self.version,
            enabled=self.enabled,
            created=self.created,
            updated=self.updated,
            not_before=self.not_before,
            expires=self.expires,
            content_type=self.content_type,
            tags=dict(self.tags),
            recovery_level=vault.recovery_level,
            recoverable_days=vault.retention_days,
        )


@dataclass(frozen=True, slots=True)
class VersionRecord:
    meta: VersionMeta
    value: str

    def encode(self) -> bytes:
        return _dump({**self.meta.to_doc(), "value": self.value})

    @classmethod
    def decode(cls, raw: bytes) -> VersionRecord:
        doc = _load(raw, "secret version")
        value = doc.pop("value", None)
        if not isinstance(value, str):
            raise IntegrityError("stored secret version is malformed")
        return cls(VersionMeta.from_doc(doc), value)


@dataclass(frozen=True, slots=True)
class HeadRecord:
    """Points at the current version and copies its metadata, so listings read one row."""

    meta: VersionMeta
    deleted_date: int | None = None
    scheduled_purge_date: int | None = None

    def encode(self) -> bytes:
        return _dump(
            {
                **self.meta.to_doc(),
                "deletedDate": self.deleted_date,
                "scheduledPurgeDate": self.scheduled_purge_date,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> HeadRecord:
        doc = _load(raw, "secret")
        deleted, purge = doc.pop("deletedDate", None), doc.pop("scheduledPurgeDate", None)
        return cls(VersionMeta.from_doc(doc), deleted, purge)

    def undeleted(self) -> HeadRecord:
        return replace(self, deleted_date=None, scheduled_purge_date=None)


def encode_vault(info: VaultInfo) -> bytes:
    return _dump(
        {
            "name": info.name,
            "id": info.id,
            "created": info.created,
            "sku": info.sku,
            "retentionDays": info.retention_days,
            "purgeProtection": info.purge_protection,
            "roleAssignments": [
                {"principal": r.principal, "role": r.role, "scope": r.scope}
                for r in info.role_assignments
            ],
            "deletedDate": info.deleted_date,
            "scheduledPurgeDate": info.scheduled_purge_date,
        }
    )


def decode_vault(raw: bytes) -> VaultInfo:
    doc = _load(raw, "vault")
    try:
        return VaultInfo(
            name=doc["name"],
            id=doc["id"],
            created=doc["created"],
            sku=doc["sku"],
            retention_days=doc["retentionDays"],
            purge_protection=doc["purgeProtection"],
            role_assignments=tuple(
                RoleAssignment(r["principal"], r["role"], r["scope"])
                for r in doc["roleAssignments"]
            ),
            deleted_date=doc["deletedDate"],
            scheduled_purge_date=doc["scheduledPurgeDate"],
        )
    except (KeyError, TypeError):
        raise IntegrityError("stored vault is malformed") from None
