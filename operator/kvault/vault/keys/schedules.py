"""The rotation policy operations of keys (``GET``/``PUT /keys/{name}/rotationpolicy``) and
what the scheduler reads: every key with a policy, with the state its schedule derives from."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from kvault.barrier.view import ABSENT
from kvault.vault import layout
from kvault.vault.core import LOCAL, Caller
from kvault.vault.keys.base import KeyBase
from kvault.vault.keys.policies import PolicyRecord
from kvault.vault.keys.rotation import KeyTimes, RotationPolicy
from kvault.vault.model import VaultInfo


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


class KeyPolicies(KeyBase):
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
        prefix = layout.key_policies(vault.id)
        rows = await core.store.scan(
            prefix, lambda lname: layout.key_policy_context(vault.id, lname)
        )
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
