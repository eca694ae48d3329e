"""JSON views of certificates, their operations, issuers and contacts, as the Key Vault REST
API spells them: ``cer`` is standard base64 DER, ``x5t`` base64url SHA-1, and the
certificate names its key (``kid``) and secret (``sid``) of the same version."""

from __future__ import annotations

import base64
from typing import Any

from kvault.api.shapes import attributes, deletion
from kvault.vault.certificates.records import IssuerRecord
from kvault.vault.model import (
    Certificate,
    CertificateOperation,
    CertificateProperties,
    DeletedCertificate,
)


def cert_id(base: str, p: CertificateProperties, *, versioned: bool = True) -> str:
    return (
        f"{base}/certificates/{p.name}/{p.version}"
        if versioned
        else f"{base}/certificates/{p.name}"
    )


def _common(p: CertificateProperties) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": attributes(p)}
    if p.x5t:
        out["x5t"] = p.x5t
    if p.tags:
        out["tags"] = dict(p.tags)
    return out


def item(base: str, p: CertificateProperties, *, versioned: bool = True) -> dict[str, Any]:
    """CertificateItem: what listings return (versionless ids in ``GET /certificates``)."""
    return {"id": cert_id(base, p, versioned=versioned), **_common(p)}


def bundle(base: str, cert: Certificate) -> dict[str, Any]:
    """CertificateBundle: the leaf, its key and secret ids, and the policy (latest only)."""
    p = cert.properties
    out: dict[str, Any] = {"id": cert_id(base, p)}
    if cert.pending:
        out["pending"] = {"id": f"{base}/certificates/{p.name}/pending"}
    else:
        out["kid"] = f"{base}/keys/{p.name}/{p.version}"
        out["sid"] = f"{base}/secrets/{p.name}/{p.version}"
        out["cer"] = base64.b64encode(cert.cer).decode()
    out.update(_common(p))
    if cert.policy is not None:
        out["policy"] = cert.policy.to_response(policy_id(base, p.name))
    return out


def deleted(base: str, d: DeletedCertificate) -> dict[str, Any]:
    """DeletedCertificateBundle (with the certificate: delete, get-deleted) or -Item."""
    p = d.properties
    body = item(base, p, versioned=False) if d.certificate is None else bundle(base, d.certificate)
    return {
        **body,
        **deletion(base, "certificates", p.name, d.deleted_date, d.scheduled_purge_date),
    }


def policy_id(base: str, name: str) -> str:
    return f"{base}/certificates/{name}/policy"


def operation(base: str, op: CertificateOperation) -> dict[str, Any]:
    """CertificateOperation: the poller reads ``status`` (always present)."""
    out: dict[str, Any] = {
        "id": f"{base}/certificates/{op.name}/pending",
        "issuer": {"name": op.issuer},
        "cancellation_requested": op.cancellation_requested,
        "status": op.status,
        "request_id": op.request_id,
    }
    if op.csr is not None:
        out["csr"] = base64.b64encode(op.csr).decode()
    if op.status_details:
        out["status_details"] = op.status_details
    if op.error:
        out["error"] = dict(op.error)
    if op.status == "completed":
        out["target"] = f"{base}/certificates/{op.name}"
    return out


def issuer(base: str, record: IssuerRecord) -> dict[str, Any]:
    """IssuerBundle; the password is write-only."""
    out: dict[str, Any] = {
        "id": f"{base}/certificates/issuers/{record.name}",
        "provider": record.provider,
        "attributes": {
            "enabled": record.enabled,
            "created": record.created,
            "updated": record.updated,
        },
    }
    if record.account_id:
        out["credentials"] = {"account_id": record.account_id}
    if record.org_id or record.admins:
        out["org_details"] = {"id": record.org_id, "admin_details": list(record.admins)}
    return out


def issuer_item(base: str, record: IssuerRecord) -> dict[str, Any]:
    return {"id": f"{base}/certificates/issuers/{record.name}", "provider": record.provider}


def contacts(base: str, entries: list[dict[str, str]]) -> dict[str, Any]:
    return {"id": f"{base}/certificates/contacts", "contacts": entries}
