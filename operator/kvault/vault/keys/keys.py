"""Keys: Azure Key Vault keys on the items engine.

The engine gives versions, attributes, soft delete, recover, purge, backup and restore;
this kind adds creation (material generated after the caller is authorised, for the
version it will belong to), import, rotation with its policy, and the cryptographic
operations. Every operation, including each use of a key, is one audit line naming the key
and version and never a plaintext, ciphertext, digest or signature.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from kvault.barrier.view import Txn
from kvault.crypto import keys as jose
from kvault.crypto.jwk import unb64url
from kvault.errors import BadParameter
from kvault.vault import layout
from kvault.vault.core import LOCAL, Caller
from kvault.vault.items.base import UNSET
from kvault.vault.items.engine import Items
from kvault.vault.items.lifecycle import After
from kvault.vault.items.records import HeadRecord
from kvault.vault.keys.base import jose_errors
from kvault.vault.keys.kind import DEFAULT_OPS, KEY, KeyMeta, KeyValue
from kvault.vault.keys.operations import KeyOperations
from kvault.vault.keys.rotation import expiry_for_new_version
from kvault.vault.keys.schedules import KeyPolicies
from kvault.vault.model import DeletedKey, Key, KeyProperties, VaultInfo

__all__ = ["KEY", "Keys"]


class Keys(KeyOperations, KeyPolicies, Items[KeyMeta, KeyValue, KeyProperties, Key, DeletedKey]):
    """Every operation on keys: the engine's, new versions (here), the cryptographic ones
    (:mod:`.operations`) and rotation policies (:mod:`.schedules`)."""

    # -- new versions ---------------------------------------------------------------------

    async def create(
        self,
        vault_name: str,
        name: str,
        kty: str,
        *,
        size: int | None = None,
        crv: str | None = None,
        public_exponent: int | None = None,
        key_ops: Any = None,
        enabled: bool = True,
        not_before: int | None = None,
        expires: int | None = None,
        tags: Mapping[str, str] | None = None,
        caller: Caller = LOCAL,
    ) -> Key:
        """Generate a key of ``kty`` (``-HSM`` types inside the HSM, premium vaults only)."""

        def check() -> None:
            jose_errors(lambda: jose.base_kty(kty))

        async def make(vault: VaultInfo, meta: KeyMeta) -> KeyValue:
            return await self._material.generate(
                vault, meta.version, kty, size=size, crv=crv, public_exponent=public_exponent
            )

        return await self.add_version(
            vault_name,
            name,
            make,
            operation=self._create,
            check=check,
            attributes=self._attrs(kty, key_ops),
            tags=tags,
            enabled=enabled,
            not_before=not_before,
            expires=expires,
            caller=caller,
            discard=self._material.destroy,
        )

    async def import_key(
        self,
        vault_name: str,
        name: str,
        jwk: Any,
        *,
        hsm: bool | None = None,
        enabled: bool = True,
        not_before: int | None = None,
        expires: int | None = None,
        tags: Mapping[str, str] | None = None,
        caller: Caller = LOCAL,
    ) -> Key:
        """Import a JWK with its private members; ``hsm`` (or a ``-HSM`` ``kty``) puts it
        into the HSM as a non-extractable object."""
        if not isinstance(jwk, Mapping):
            jwk = {}
        parsed: list[jose.Private] = []
        kty = jwk.get("kty")

        def check() -> None:
            if hsm is not None and not isinstance(hsm, bool):
                raise BadParameter("Hsm must be true or false")
            parsed.append(jose_errors(lambda: jose.private_from_jwk(jwk)))

        base = kty.removesuffix("-HSM") if isinstance(kty, str) else "RSA"
        stored_kty = (
            f"{base}-HSM" if hsm or (isinstance(kty, str) and kty.endswith("-HSM")) else base
        )
        ops = jwk.get("key_ops")

        async def make(vault: VaultInfo, meta: KeyMeta) -> KeyValue:
            return await self._material.imported(vault, meta.version, stored_kty, parsed[0])

        return await self.add_version(
            vault_name,
            name,
            make,
            operation=self._import,
            check=check,
            attributes=self._attrs(stored_kty, ops),
            tags=tags,
            enabled=enabled,
            not_before=not_before,
            expires=expires,
            caller=caller,
            discard=self._material.destroy,
        )

    @staticmethod
    def _attrs(kty: Any, ops: Any) -> dict[str, Any]:
        base = kty.removesuffix("-HSM") if isinstance(kty, str) else ""
        return {"kty": kty, "key_ops": DEFAULT_OPS.get(base, ()) if ops is None else ops}

    async def rotate(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> Key:
        """A new version with the current one's type, size, curve, ``key_ops`` and tags; its
        expiry comes from the rotation policy's ``expiryTime``."""
        current: list[KeyValue] = []

        async def derive(vault: VaultInfo, lname: str) -> dict[str, Any]:
            head = await self._head(vault, lname)
            found = (
                None if head is None else await self._version(vault, lname, head[1].meta.version)
            )
            if found is None:
                raise self._not_found(name)
            meta = found[1].meta
            current.append(found[1].value)
            policy = await self._policy(vault, lname)
            now = self._core.now()
            return {
                "name": meta.name,
                "kty": meta.kty,
                "key_ops": meta.key_ops,
                "tags": dict(meta.tags),
                "expires": None if policy is None else expiry_for_new_version(policy.policy, now),
            }

        async def make(vault: VaultInfo, meta: KeyMeta) -> KeyValue:
            return await self._material.generate(
                vault, meta.version, meta.kty, **_params(current[0])
            )

        return await self.add_version(
            vault_name,
            name,
            make,
            operation=self._rotate,
            attributes={},
            derive=derive,
            caller=caller,
            discard=self._material.destroy,
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
        key_ops: Any = UNSET,
        tags: Mapping[str, str] | None = None,
        caller: Caller = LOCAL,
    ) -> Key:
        """Change a version's attributes or ``key_ops``; the key material never changes.
        Returns the key as Azure does (also when the change disabled it)."""
        props = await self.update_version(
            vault_name,
            name,
            version,
            attributes={} if key_ops is UNSET else {"key_ops": key_ops},
            enabled=enabled,
            not_before=not_before,
            expires=expires,
            tags=tags,
            caller=caller,
        )
        return await self.with_public(vault_name, props)

    async def with_public(self, vault_name: str, props: KeyProperties) -> Key:
        """The key ``props`` describes, with its version's public JWK: what Azure returns
        after recover, restore and update (read after the audited operation that authorised
        it; a disabled version is returned too)."""
        vault = await self._core.active_vault(vault_name)
        found = await self._version(vault, self._lname(props.name), props.version)
        return Key(props, {} if found is None else found[1].value.public)

    async def delete(self, vault_name: str, name: str, *, caller: Caller = LOCAL) -> DeletedKey:
        return await self._with_public(
            vault_name, await super().delete(vault_name, name, caller=caller)
        )

    async def get_deleted(
        self, vault_name: str, name: str, *, caller: Caller = LOCAL
    ) -> DeletedKey:
        gone = await super().get_deleted(vault_name, name, caller=caller)
        return await self._with_public(vault_name, gone)

    async def _with_public(self, vault_name: str, gone: DeletedKey) -> DeletedKey:
        """The deleted version's public JWK (Azure returns the key with its deletion)."""
        key = await self.with_public(vault_name, gone.properties)
        return replace(gone, public=key.public)

    async def release_vault(self, vault: VaultInfo) -> Callable[[], Awaitable[None]]:
        """Before a vault is purged: its keys' HSM objects, to destroy once its rows are gone
        (software keys go with the rows)."""
        rows = await self._core.store.scan(
            self._rows.all_versions(vault.id),
            lambda suffix: self._rows.version_context(vault.id, *suffix.split("/", 1)),
        )
        held = [
            v for v in (self._codec.decode_version(r.plaintext).value for r in rows) if v.handle
        ]

        async def destroy() -> None:
            for value in held:
                await self._material.destroy(value)

        return destroy

    async def _stage_restore(self, txn: Txn, vault: VaultInfo, part: Any) -> HeadRecord[KeyMeta]:
        """An HSM key restores only while its HSM objects exist (as in Azure, the backup is
        bound to the HSM; the objects are not in the blob)."""
        head = await super()._stage_restore(txn, vault, part)
        for doc in part["versions"]:
            value = self._codec.decode_version(json.dumps(doc).encode()).value
            if not await self._material.usable(value):
                raise BadParameter(
                    f"the backup of key {head.meta.name} refers to an HSM key that no longer "
                    "exists (purged, or another HSM): HSM keys restore only into the HSM that "
                    "still holds them"
                )
        return head

    async def _stage_purge(
        self, txn: Txn, vault: VaultInfo, lname: str, revision: int | None
    ) -> After | None:
        """Purge also removes the rotation policy and, once committed, destroys the
        versions' HSM objects (a failed purge must leave a usable key)."""
        rows = await self._core.store.scan(
            self._rows.versions(vault.id, lname),
            lambda v: self._rows.version_context(vault.id, lname, v),
        )
        values = [self._codec.decode_version(r.plaintext).value for r in rows]
        await super()._stage_purge(txn, vault, lname, revision)
        txn.delete(layout.key_policy_row(vault.id, lname)[0])

        async def destroy() -> None:
            for value in values:
                await self._material.destroy(value)

        return destroy


def _params(value: KeyValue) -> dict[str, Any]:
    """The creation parameters of an existing key, read back from its public JWK."""
    public = value.public
    kty = public.get("kty")
    if kty == "RSA":
        e = int.from_bytes(unb64url(public["e"]), "big")
        return {"size": value.size, "crv": None, "public_exponent": e}
    if kty == "EC":
        return {"size": None, "crv": public["crv"], "public_exponent": None}
    return {"size": value.size, "crv": None, "public_exponent": None}
