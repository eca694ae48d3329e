"""What the engine stores for a certificate version: its metadata (with the leaf's
thumbprint) and value (the leaf and the chain above it, DER). The private key is not here:
it is the same-named, same-version key (``kid``), and the PFX/PEM bundle is the secret
(``sid``); the certificate owns both (:class:`~kvault.vault.items.kind.Link`)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kvault.errors import BadParameter
from kvault.vault.items.kind import ItemKind, Link
from kvault.vault.items.records import Codec, ItemMeta
from kvault.vault.model import (
    Certificate,
    CertificateProperties,
    DeletedCertificate,
    VaultInfo,
)


@dataclass(frozen=True, slots=True)
class CertMeta(ItemMeta):
    x5t: str = ""

    def to_doc(self) -> dict[str, Any]:
        return {**ItemMeta.to_doc(self), "x5t": self.x5t}

    @classmethod
    def own_fields(cls, doc: dict[str, Any]) -> tuple[Any, ...]:
        return (doc["x5t"],)

    def properties(self, vault: VaultInfo) -> CertificateProperties:
        return CertificateProperties(**self.common(vault), x5t=self.x5t)


@dataclass(frozen=True, slots=True)
class CertValue:
    cer: bytes
    chain: tuple[bytes, ...] = ()


class _Value:
    def to_doc(self, value: CertValue) -> dict[str, Any]:
        return {
            "cer": base64.b64encode(value.cer).decode(),
            "chain": [base64.b64encode(c).decode() for c in value.chain],
        }

    def from_doc(self, doc: dict[str, Any]) -> CertValue:
        cer, chain = doc.pop("cer", None), doc.pop("chain", None)
        if not isinstance(cer, str) or not isinstance(chain, list):
            raise ValueError("certificate")
        return CertValue(
            base64.b64decode(cer, validate=True),
            tuple(base64.b64decode(c, validate=True) for c in chain),
        )


def _attributes(given: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name != "x5t" or not isinstance(value, str):
            raise BadParameter(f"unknown certificate attribute {name!r}")
        out[name] = value
    return out


def _check_value(value: CertValue, limit: int) -> None:
    """Certificate values are built (or parsed) by kvault, never stored as given."""


CERTIFICATE: ItemKind[
    CertMeta, CertValue, CertificateProperties, Certificate, DeletedCertificate
] = ItemKind(
    name="certificate",
    plural="certificates",
    title="Certificate",
    codec=Codec(CertMeta, _Value(), "certificate"),
    check_value=_check_value,
    attributes=_attributes,
    properties=CertMeta.properties,
    item=lambda props, value: Certificate(props, value.cer, value.chain),
    deleted=DeletedCertificate,
    disabled_code="CertificateDisabled",
    links=(Link("key"), Link("secret")),
    public=True,
    verbs=(
        "Create",
        "Import",
        "Merge",
        "GetOperation",
        "UpdateOperation",
        "DeleteOperation",
        "GetPolicy",
        "SetPolicy",
        "GetContacts",
        "SetContacts",
        "DeleteContacts",
        "GetIssuer",
        "ListIssuers",
        "SetIssuer",
        "DeleteIssuer",
        "Renew",
    ),
    mutating=("Create", "Import", "Merge", "SetPolicy", "Renew"),
)
