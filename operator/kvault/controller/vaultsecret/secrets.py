"""The ``Secret`` source: vault secrets by name (and version), or all that match a prefix
or a tag."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import Ref
from kvault.controller.vaultsecret.source import Projected, Reading
from kvault.errors import ItemDisabled, NotFound


class SecretSource:
    kind = "Secret"
    get_operation = "SecretGet"
    list_operation = "SecretList"

    def scope(self, name: str) -> str:
        return f"secrets/{name}"

    async def _names(self, reading: Reading) -> list[tuple[str, Mapping[str, str]]]:
        """Every enabled secret's name and tags (all pages)."""
        out: list[tuple[str, Mapping[str, str]]] = []
        token: str | None = None
        while True:
            page = await reading.kv.secrets.list(
                reading.plan.vault, token=token, caller=reading.caller
            )
            out += [(p.name, p.tags) for p in page.items if p.enabled]
            token = page.next_token
            if token is None:
                return out

    async def find(self, reading: Reading, selector: Mapping[str, Any]) -> list[Ref]:
        names = await self._names(reading)
        if "prefix" in selector:
            prefix = str(selector["prefix"]).lower()
            return [Ref(n, n, "") for n, _ in names if n.lower().startswith(prefix)]
        if "tag" in selector:
            tag = selector["tag"] or {}
            tname, tvalue = str(tag.get("name")), str(tag.get("value"))
            return [Ref(n, n, "") for n, tags in names if tags.get(tname) == tvalue]
        return []

    async def get(self, reading: Reading, ref: Ref) -> Projected:
        plan = reading.plan
        try:
            secret = await reading.kv.secrets.get(
                plan.vault, ref.name, ref.version, caller=reading.caller
            )
        # A missing or disabled item keeps the last projection (as ESO's default Retain
        # does): pods keep working while someone fixes the vault. Only a denial or a missing
        # identity takes the Secret away.
        except NotFound:
            shown = f"{ref.name}/{ref.version}" if ref.version else ref.name
            raise Refused(
                "ItemNotFound",
                f"secret {shown!r} was not found in vault {plan.vault_ref}",
                drop=False,
            ) from None
        except ItemDisabled:
            raise Refused(
                "ItemNotFound",
                f"secret {ref.name!r} of vault {plan.vault_ref} is disabled",
                drop=False,
            ) from None
        return Projected(secret.value, secret.properties.version)
