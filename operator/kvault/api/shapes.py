"""JSON views of domain objects, exactly as the Key Vault REST API spells them."""

from __future__ import annotations

from typing import Any

from kvault.vault.model import DeletedSecret, ItemProperties, Secret, SecretProperties


def attributes(p: ItemProperties) -> dict[str, Any]:
    """The ``attributes`` object every item kind shares."""
    out: dict[str, Any] = {"enabled": p.enabled}
    if p.not_before is not None:
        out["nbf"] = p.not_before
    if p.expires is not None:
        out["exp"] = p.expires
    out["created"] = p.created
    out["updated"] = p.updated
    out["recoveryLevel"] = p.recovery_level
    out["recoverableDays"] = p.recoverable_days
    return out


def secret_id(base: str, p: SecretProperties, *, versioned: bool = True) -> str:
    return f"{base}/secrets/{p.name}/{p.version}" if versioned else f"{base}/secrets/{p.name}"


def properties(base: str, p: SecretProperties, *, versioned: bool = True) -> dict[str, Any]:
    """SecretItem (and SecretBundle without ``value``): what lists, PATCH and recover return."""
    out: dict[str, Any] = {"id": secret_id(base, p, versioned=versioned)}
    if p.content_type is not None:
        out["contentType"] = p.content_type
    out["attributes"] = attributes(p)
    if p.tags:
        out["tags"] = dict(p.tags)
    if p.managed:  # a certificate's secret: Azure names its key
        out["managed"] = True
        out["kid"] = f"{base}/keys/{p.name}/{p.version}"
    return out


def bundle(base: str, secret: Secret) -> dict[str, Any]:
    """SecretBundle: the value with its version's metadata."""
    return {"value": secret.value, **properties(base, secret.properties)}


def deletion(base: str, plural: str, name: str, deleted: int, purge: int) -> dict[str, Any]:
    """The fields a deleted item of any kind adds: where to recover it, and when."""
    return {
        "recoveryId": f"{base}/deleted{plural}/{name}",
        "deletedDate": deleted,
        "scheduledPurgeDate": purge,
    }


def deleted(base: str, d: DeletedSecret, *, versioned: bool = True) -> dict[str, Any]:
    """DeletedSecretBundle / DeletedSecretItem: the metadata plus where to recover it from."""
    return {
        **properties(base, d.properties, versioned=versioned),
        **deletion(base, "secrets", d.properties.name, d.deleted_date, d.scheduled_purge_date),
    }
