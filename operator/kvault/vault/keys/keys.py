"""Keys: Azure Key Vault keys on the items engine.

The engine gives versions, attributes, soft delete, recover, purge, backup and restore;
this kind adds creation (material generated after the caller is authorised, for the
version it will belong to), import, rotation with its policy, and the cryptographic
operations. Every operation, including each use of a key, is one audit line naming the key
and version and never a plaintext, ciphertext, digest or signature.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from kvault.barrier.view import ABSENT
from kvault.crypto import keys as jose
from kvault.crypto.jwk import unb64url
from kvault.errors import BadParameter, Forbidden, ItemDisabled
from kvault.hsm.base import HSM
from kvault.vault import layout, names
from kvault.vault.core import LOCAL, Caller, Core
from kvault.vault.items.base import UNSET
from kvault.vault.items.engine import Items
from kvault.vault.keys.kind import DEFAULT_OPS, KEY, KeyMeta, KeyValue
from kvault.vault.keys.material import Material
from kvault.vault.keys.policies import PolicyRecord
from kvault.vault.keys.rotation import KeyTimes, RotationPolicy, expiry_for_new_version
from kvault.vault.model import DeletedKey, Key, KeyProperties, KeyResult, VaultInfo

__all__ = ["KEY", "KeySchedule", "Keys"]

T = TypeVar("T")
#: The ``key_ops`` entry each operation needs.
_NEEDS = {
    "Encrypt": "encrypt",
    "Decrypt": "decrypt",
    "Sign": "sign",
    "Verify": "verify",
    "WrapKey": "wrapKey",
    "UnwrapKey": "unwrapKey",
}
#: Random bytes per request (Azure's limit for getRandomBytes).
MAX_RANDOM = 128


class ForbiddenKeyOperation(Forbidden):
    """The key's ``key_ops`` do not list the operation, or the key is outside its validity."""

    def __init__(self, message: str, inner_code: str) -> None:
        super().__init__(message)
        self.inner_code = inner_code


@dataclass(frozen=True, slots=True)
class KeySchedule:
    """What the rotation scheduler needs about one key with a policy, all from stored rows: the
    key's name (as spelled and lower-cased), its policy, the version last notified about, and
    its current version's times."""

    name: str
    lname: str
    policy: RotationPolicy
    notified: str | None
    times: KeyTimes
    #: The current version is enabled, and the key is not a certificate's (``managed``).
    active: bool = True


def _label(vault: VaultInfo, version: str) -> str:
    """The HSM object's name: unique per key version, and says whose it is."""
    return f"kvault-key-{vault.id}-{version}"


def _jose(run: Callable[[], T]) -> T:
    try:
        return run()
    except jose.JoseError as exc:
        raise BadParameter(str(exc)) from None


class Keys(Items[KeyMeta, KeyValue, KeyProperties, Key, DeletedKey]):
    def __init__(self, core: Core, hsm: HSM) -> None:
        super().__init__(core, KEY)
        self._material = Material(hsm)
        ops = KEY.operations
        self._create, self._import, self._rotate = ops["Create"], ops["Import"], ops["Rotate"]
        self._get_policy, self._set_policy = ops["GetRotationPolicy"], ops["SetRotationPolicy"]

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
            _jose(lambda: jose.base_kty(kty))

        async def make(vault: VaultInfo, meta: KeyMeta) -> KeyValue:
            return await _aj(
                self._material.generate(
                    vault,
                    kty,
                    _label(vault, meta.version),
                    size=size,
                    crv=crv,
                    public_exponent=public_exponent,
                )
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
            parsed.append(_jose(lambda: jose.private_from_jwk(jwk)))

        base = kty.removesuffix("-HSM") if isinstance(kty, str) else "RSA"
        stored_kty = (
            f"{base}-HSM" if hsm or (isinstance(kty, str) and kty.endswith("-HSM")) else base
        )
        ops = jwk.get("key_ops")

        async def make(vault: VaultInfo, meta: KeyMeta) -> KeyValue:
            return await _aj(
                self._material.imported(vault, stored_kty, parsed[0], _label(vault, meta.version))
            )

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
            return await _aj(
                self._material.generate(
                    vault, meta.kty, _label(vault, meta.version), **_params(current[0])
                )
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
    ) -> KeyProperties:
        """Change a version's attributes or ``key_ops``; the key material never changes."""
        return await self.update_version(
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
        vault = await self._core.active_vault(vault_name)
        p = gone.properties
        found = await self._version(vault, self._lname(p.name), p.version)
        return gone if found is None else replace(gone, public=found[1].value.public)

    async def _purge_rows(self, vault: VaultInfo, lname: str, revision: int) -> None:
        """Purge also removes the rotation policy and destroys the versions' HSM objects
        (after the commit: a failed purge must leave a usable key)."""
        rows = await self._core.store.scan(
            self._rows.versions(vault.id, lname),
            lambda v: self._rows.version_context(vault.id, lname, v),
        )
        handles = [self._codec.decode_version(r.plaintext).value for r in rows]
        txn = self._core.store.txn()
        txn.delete(self._rows.deleted_row(vault.id, lname)[0], revision)
        txn.delete_prefix(self._rows.versions(vault.id, lname))
        txn.delete(layout.key_policy_row(vault.id, lname)[0])
        await self._core.store.commit(txn)
        for value in handles:
            await self._material.destroy(value)

    # -- cryptographic operations ---------------------------------------------------------

    async def _use(
        self,
        caller: Caller,
        vault_name: str,
        name: str,
        version: str,
        verb: str,
        alg: Any,
        run: Callable[[KeyValue], Awaitable[T]],
    ) -> tuple[str, T]:
        """Authorise, find the version, check it may be used for ``verb`` now, run."""
        core = self._core
        operation = KEY.operations[verb]
        with core.audited(caller, vault_name, operation, name) as outcome:
            lname = self._lname(name)
            if version:
                names.version(version)
            if not isinstance(alg, str) or not alg:
                raise BadParameter("alg is required: the algorithm's name")
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, operation, name)
            _, (_, record) = await self._pick_version(vault, lname, name, version, outcome)
            meta = record.meta
            self._usable(meta, _NEEDS[verb], core.now())
            _jose(lambda: jose.check_alg(meta.kty, _NEEDS[verb], alg))
            try:
                return meta.version, await run(record.value)
            except jose.JoseError as exc:
                raise BadParameter(str(exc)) from None

    @staticmethod
    def _usable(meta: KeyMeta, op: str, now: int) -> None:
        if not meta.enabled:
            raise ItemDisabled(f"Operation {op} is not allowed on a disabled key.", "KeyDisabled")
        if meta.not_before is not None and now < meta.not_before:
            raise ForbiddenKeyOperation(
                f"Operation {op} is not allowed on a key that is not yet valid.", "KeyNotYetValid"
            )
        if meta.expires is not None and now >= meta.expires:
            raise ForbiddenKeyOperation(
                f"Operation {op} is not allowed on an expired key.", "KeyExpired"
            )
        if op not in meta.key_ops:
            raise ForbiddenKeyOperation(
                f"Operation {op} is not permitted on this key.", "KeyOperationForbidden"
            )

    async def encrypt(
        self,
        vault_name: str,
        name: str,
        version: str,
        alg: str,
        value: bytes,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
        caller: Caller = LOCAL,
    ) -> KeyResult:
        used, out = await self._use(
            caller,
            vault_name,
            name,
            version,
            "Encrypt",
            alg,
            lambda v: self._material.encrypt(v, alg, value, iv, aad),
        )
        return replace(out, version=used)

    async def decrypt(
        self,
        vault_name: str,
        name: str,
        version: str,
        alg: str,
        value: bytes,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
        tag: bytes | None = None,
        caller: Caller = LOCAL,
    ) -> KeyResult:
        used, out = await self._use(
            caller,
            vault_name,
            name,
            version,
            "Decrypt",
            alg,
            lambda v: self._material.decrypt(v, alg, value, iv, aad, tag),
        )
        return KeyResult(used, out)

    async def sign(
        self,
        vault_name: str,
        name: str,
        version: str,
        alg: str,
        digest: bytes,
        *,
        caller: Caller = LOCAL,
    ) -> KeyResult:
        used, out = await self._use(
            caller,
            vault_name,
            name,
            version,
            "Sign",
            alg,
            lambda v: self._material.sign(v, alg, digest),
        )
        return KeyResult(used, out)

    async def verify(
        self,
        vault_name: str,
        name: str,
        version: str,
        alg: str,
        digest: bytes,
        signature: bytes,
        *,
        caller: Caller = LOCAL,
    ) -> bool:
        return (
            await self._use(
                caller,
                vault_name,
                name,
                version,
                "Verify",
                alg,
                lambda v: self._material.verify(v, alg, digest, signature),
            )
        )[1]

    async def wrap(
        self,
        vault_name: str,
        name: str,
        version: str,
        alg: str,
        key: bytes,
        *,
        caller: Caller = LOCAL,
    ) -> KeyResult:
        used, out = await self._use(
            caller,
            vault_name,
            name,
            version,
            "WrapKey",
            alg,
            lambda v: self._material.wrap(v, alg, key),
        )
        return KeyResult(used, out)

    async def unwrap(
        self,
        vault_name: str,
        name: str,
        version: str,
        alg: str,
        wrapped: bytes,
        *,
        caller: Caller = LOCAL,
    ) -> KeyResult:
        used, out = await self._use(
            caller,
            vault_name,
            name,
            version,
            "UnwrapKey",
            alg,
            lambda v: self._material.unwrap(v, alg, wrapped),
        )
        return KeyResult(used, out)

    async def random_bytes(self, vault_name: str, count: Any, *, caller: Caller = LOCAL) -> bytes:
        """``count`` bytes from the operating system's CSPRNG."""
        core = self._core
        operation = KEY.operations["GetRandomBytes"]
        with core.audited(caller, vault_name, operation):
            if (
                isinstance(count, bool)
                or not isinstance(count, int)
                or not 1 <= count <= MAX_RANDOM
            ):
                raise BadParameter(f"count must be an integer from 1 to {MAX_RANDOM}")
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, operation, None)
            return os.urandom(count)

    # -- rotation policies ----------------------------------------------------------------

    async def _policy(self, vault: VaultInfo, lname: str) -> PolicyRecord | None:
        key, ctx = layout.key_policy_row(vault.id, lname)
        found = await self._core.read(key, ctx)
        return None if found is None else PolicyRecord.decode(found[1])

    async def get_rotation_policy(
        self, vault_name: str, name: str, *, caller: Caller = LOCAL
    ) -> RotationPolicy | None:
        """The key's policy; ``None`` when it never had one."""
        core = self._core
        with core.audited(caller, vault_name, self._get_policy, name):
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._get_policy, name)
            if await self._head(vault, lname) is None:
                raise self._not_found(name)
            record = await self._policy(vault, lname)
            return None if record is None else record.policy

    async def set_rotation_policy(
        self, vault_name: str, name: str, doc: Any, *, caller: Caller = LOCAL
    ) -> RotationPolicy:
        """Replace the key's policy with the one ``doc`` (the PUT body) describes."""
        core = self._core
        with core.audited(caller, vault_name, self._set_policy, name):
            lname = self._lname(name)
            RotationPolicy.from_request(doc, core.now(), None)  # bad input: refused first
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._set_policy, name)

            async def attempt() -> RotationPolicy:
                head = await self._head(vault, lname)
                if head is None:
                    raise self._not_found(name)
                key, ctx = layout.key_policy_row(vault.id, lname)
                found = await core.read(key, ctx)
                old = None if found is None else PolicyRecord.decode(found[1])
                policy = RotationPolicy.from_request(
                    doc, core.now(), None if old is None else old.policy
                )
                txn = core.store.txn()
                txn.check(self._rows.head_row(vault.id, lname)[0], head[0])
                record = PolicyRecord(policy, None if old is None else old.notified)
                await txn.put(key, ctx, record.encode(), ABSENT if found is None else found[0])
                await core.store.commit(txn)
                return policy

            return await self._retry(attempt)

    async def policies(self, vault_name: str) -> list[KeySchedule]:
        """Every key of the vault that has a rotation policy with actions, with the state its
        schedule derives from (not audited: the scheduler's own read). Deleted keys keep their
        policy row for a recovery but are left out, as are policies without actions."""
        core = self._core
        vault = await core.active_vault(vault_name)
        prefix = layout.key_policy_row(vault.id, "")[0]  # ``v/<vault-id>/kp/``
        rows = await core.store.scan(prefix, lambda lname: layout.key_policy_row(vault.id, lname)[1])
        out: list[KeySchedule] = []
        for row in rows:
            record = PolicyRecord.decode(row.plaintext)
            if not record.policy.actions:
                continue
            head = await self._head(vault, row.suffix)
            if head is None:
                continue
            meta = head[1].meta
            out.append(
                KeySchedule(
                    meta.name,
                    row.suffix,
                    record.policy,
                    record.notified,
                    KeyTimes(meta.created, meta.expires, meta.version),
                    meta.enabled and not meta.managed,
                )
            )
        return out

    async def mark_notified(self, vault: VaultInfo, lname: str, version: str) -> None:
        """Record that ``version`` was notified about (the scheduler's Notify is done)."""
        core = self._core

        async def attempt() -> None:
            key, ctx = layout.key_policy_row(vault.id, lname)
            found = await core.read(key, ctx)
            if found is None:
                return
            record = replace(PolicyRecord.decode(found[1]), notified=version)
            txn = core.store.txn()
            await txn.put(key, ctx, record.encode(), found[0])
            await core.store.commit(txn)

        await self._retry(attempt)


async def _aj(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except jose.JoseError as exc:
        raise BadParameter(str(exc)) from None


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
