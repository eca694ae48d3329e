"""What the parts of the certificates kind share: the engines of the key and secret it owns,
the key material, and its companion rows (policy, pending operation, issuers, contacts)."""

from __future__ import annotations

import uuid

from kvault.vault import layout
from kvault.vault.certificates.kind import CERTIFICATE, CertMeta, CertValue
from kvault.vault.certificates.policy import CertificatePolicy
from kvault.vault.certificates.records import PendingRecord
from kvault.vault.core import Core
from kvault.vault.items.base import ItemBase
from kvault.vault.keys import Keys
from kvault.vault.model import (
    Certificate,
    CertificateOperation,
    CertificateProperties,
    DeletedCertificate,
    VaultInfo,
)
from kvault.vault.records import load
from kvault.vault.secrets import Secrets


class CertBase(
    ItemBase[CertMeta, CertValue, CertificateProperties, Certificate, DeletedCertificate]
):
    def __init__(
        self, core: Core, keys: Keys, secrets: Secrets, validity_floor: int | None = None
    ) -> None:
        super().__init__(core, CERTIFICATE)
        self._keys, self._secrets = keys, secrets
        self._ops = CERTIFICATE.operations
        #: The dev validity floor (seconds) that lets policies give ``validity_seconds``.
        self._validity_floor = validity_floor

    async def _companion(self, vault: VaultInfo, what: str, lname: str) -> tuple[int, bytes] | None:
        key, ctx = layout.certificate_row(vault.id, what, lname)
        return await self._core.read(key, ctx)

    async def _policy(self, vault: VaultInfo, lname: str) -> tuple[int, CertificatePolicy] | None:
        found = await self._companion(vault, "cp", lname)
        return (
            None
            if found is None
            else (found[0], CertificatePolicy.from_doc(load(found[1], "certificate policy")))
        )

    async def _pending(self, vault: VaultInfo, lname: str) -> tuple[int, PendingRecord] | None:
        found = await self._companion(vault, "co", lname)
        return None if found is None else (found[0], PendingRecord.decode(found[1]))


def new_request_id() -> str:
    return uuid.uuid4().hex


def operation_view(name: str, record: PendingRecord) -> CertificateOperation:
    return CertificateOperation(
        name=name,
        issuer=record.issuer,
        status=record.status,
        request_id=record.request_id,
        csr=record.csr,
        cancellation_requested=record.cancellation_requested,
        status_details=record.status_details,
        error=record.error,
        version=record.version,
    )
