"""Secrets: a thin kind on the items engine (:mod:`kvault.vault.items`).

A secret's value is a string (UTF-8, at most the configured size); its own metadata field
is ``contentType``. Everything else (versions, soft delete, backup...) is the engine's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kvault.vault import names
from kvault.vault.core import LOCAL, Caller, Core
from kvault.vault.items.base import UNSET
from kvault.vault.items.engine import Items
from kvault.vault.items.kind import ItemKind
from kvault.vault.items.paging import MAX_PAGE
from kvault.vault.items.records import Codec, ItemMeta
from kvault.vault.model import DeletedSecret, Secret, SecretProperties, VaultInfo

__all__ = ["MAX_PAGE", "SECRET", "SecretMeta", "Secrets"]


@dataclass(frozen=True, slots=True)
class SecretMeta(ItemMeta):
    content_type: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return {**ItemMeta.to_doc(self), "contentType": self.content_type}

    @classmethod
    def own_fields(cls, doc: dict[str, Any]) -> tuple[Any, ...]:
        return (doc["contentType"],)

    def properties(self, vault: VaultInfo) -> SecretProperties:
        return SecretProperties(**self.common(vault), content_type=self.content_type)


class _Value:
    def to_doc(self, value: str) -> dict[str, Any]:
        return {"value": value}

    def from_doc(self, doc: dict[str, Any]) -> str:
        value = doc.pop("value", None)
        if not isinstance(value, str):
            raise ValueError("value")
        return value


def _attributes(given: Mapping[str, Any]) -> dict[str, Any]:
    return {k: names.content_type(v) for k, v in given.items()}


SECRET: ItemKind[SecretMeta, str, SecretProperties, Secret, DeletedSecret] = ItemKind(
    name="secret",
    plural="secrets",
    title="Secret",
    codec=Codec(SecretMeta, _Value(), "secret"),
    check_value=names.secret_value,
    attributes=_attributes,
    properties=SecretMeta.properties,
    item=Secret,
    deleted=DeletedSecret,
    disabled_code="SecretDisabled",
)


class Secrets(Items[SecretMeta, str, SecretProperties, Secret, DeletedSecret]):
    def __init__(self, core: Core) -> None:
        super().__init__(core, SECRET)

    async def set(
        self,
        vault_name: str,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
        enabled: bool = True,
        not_before: int | None = None,
        expires: int | None = None,
        caller: Caller = LOCAL,
    ) -> Secret:
        """Add a new version; it becomes the current one."""
        return await self.set_version(
            vault_name,
            name,
            value,
            attributes={"content_type": content_type},
            tags=tags,
            enabled=enabled,
            not_before=not_before,
            expires=expires,
            caller=caller,
        )

    async def update(
        self,
        vault_name: str,
        name: str,
        version: str = "",
        *,
        enabled: bool | None = None,
        not_before: int | None = UNSET,
        expires: int | None = UNSET,
        content_type: str | None = UNSET,
        tags: Mapping[str, str] | None = None,
        caller: Caller = LOCAL,
    ) -> SecretProperties:
        """Change a version's attributes (omitted ones are kept; ``tags`` replaces all tags)."""
        return await self.update_version(
            vault_name,
            name,
            version,
            attributes={} if content_type is UNSET else {"content_type": content_type},
            enabled=enabled,
            not_before=not_before,
            expires=expires,
            tags=tags,
            caller=caller,
        )
