"""What the vault domain returns: frozen views of items and vaults, never storage rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kvault.identity.model import RoleAssignment

T = TypeVar("T")
DAY = 86400
#: Azure's error code for a vault that does not exist (or is deleted).
VAULT_NOT_FOUND = "VaultNotFound"

__all__ = [
    "Certificate",
    "CertificateOperation",
    "CertificateProperties",
    "DeletedCertificate",
    "DeletedKey",
    "DeletedSecret",
    "ItemProperties",
    "Key",
    "KeyProperties",
    "Page",
    "RoleAssignment",
    "Secret",
    "SecretProperties",
    "VaultInfo",
]


@dataclass(frozen=True, slots=True)
class VaultInfo:
    name: str
    id: str
    created: int
    sku: str = "standard"
    retention_days: int = 90
    purge_protection: bool = False
    role_assignments: tuple[RoleAssignment, ...] = ()
    deleted_date: int | None = None
    scheduled_purge_date: int | None = None

    def purge_date(self, deleted: int) -> int:
        """When something deleted at ``deleted`` (the vault, or an item in it) is purged."""
        return deleted + self.retention_days * DAY

    @property
    def recovery_level(self) -> str:
        """Azure's ``recoveryLevel`` string for items of this vault."""
        level = "Recoverable" if self.purge_protection else "Recoverable+Purgeable"
        return level if self.retention_days == 90 else "CustomizedRecoverable" + level[11:]


@dataclass(frozen=True, slots=True)
class ItemProperties:
    """One version's metadata, as every item kind has it (the kinds add their own fields)."""

    vault: str
    name: str
    version: str
    enabled: bool
    created: int
    updated: int
    not_before: int | None = None
    expires: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    recovery_level: str = "Recoverable+Purgeable"
    recoverable_days: int = 90
    #: Owned by a certificate (its key or secret): written only through it.
    managed: bool = False


@dataclass(frozen=True, slots=True)
class SecretProperties(ItemProperties):
    """Everything about a secret version but its value."""

    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Secret:
    properties: SecretProperties
    value: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class DeletedSecret:
    properties: SecretProperties
    deleted_date: int
    scheduled_purge_date: int


@dataclass(frozen=True, slots=True)
class KeyProperties(ItemProperties):
    """A key version's metadata; ``kty`` as Azure spells it (``RSA``, ``EC-HSM``...)."""

    kty: str = "RSA"
    key_ops: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Key:
    """A key version as callers see it: metadata and the public JWK members only."""

    properties: KeyProperties
    public: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class DeletedKey:
    properties: KeyProperties
    deleted_date: int
    scheduled_purge_date: int
    #: The deleted version's public JWK members (delete and get-deleted return the key).
    public: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class KeyResult:
    """What a cryptographic operation returns: the version used and the output bytes
    (``iv``/``tag`` for AES-GCM and CBC encryption)."""

    version: str
    value: bytes = field(repr=False)
    iv: bytes | None = None
    tag: bytes | None = None
    aad: bytes | None = None
    #: A verification's answer.
    valid: bool | None = None


@dataclass(frozen=True, slots=True)
class CertificateProperties(ItemProperties):
    """A certificate version's metadata; ``x5t`` is the leaf's SHA-1 thumbprint (base64url)."""

    x5t: str = ""


@dataclass(frozen=True, slots=True)
class Certificate:
    """A certificate version: its leaf (DER) and chain above it (DER, leaf's issuer first);
    ``policy`` is the certificate's policy document when asked for the latest version."""

    properties: CertificateProperties
    cer: bytes
    chain: tuple[bytes, ...] = ()
    policy: Any = None  # the CertificatePolicy, with the latest version only
    #: A version waiting for ``merge`` (no certificate yet: ``cer`` is empty).
    pending: bool = False


@dataclass(frozen=True, slots=True)
class DeletedCertificate:
    properties: CertificateProperties
    deleted_date: int
    scheduled_purge_date: int
    #: The deleted version itself (delete and get-deleted return it).
    certificate: Certificate | None = None


@dataclass(frozen=True, slots=True)
class CertificateOperation:
    """The pending (or finished) create operation of a certificate name."""

    name: str
    issuer: str
    status: str  # inProgress | completed | cancelled | failed
    request_id: str
    csr: bytes | None = None
    cancellation_requested: bool = False
    status_details: str | None = None
    error: Mapping[str, str] | None = None
    #: The version the operation creates (``target`` once completed).
    version: str = ""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_token`` back for the next (``None``: last page)."""

    items: list[T]
    next_token: str | None = None
