"""What every part of the keys kind shares: the engine's rows for kind ``key``, where key
material lives, the audited operation names, and JOSE errors turned into 400s."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from kvault.crypto import keys as jose
from kvault.errors import BadParameter
from kvault.hsm.base import HSM
from kvault.vault import layout
from kvault.vault.core import Core
from kvault.vault.items.base import ItemBase
from kvault.vault.keys.kind import KEY, KeyMeta, KeyValue
from kvault.vault.keys.material import Material
from kvault.vault.keys.policies import PolicyRecord
from kvault.vault.model import DeletedKey, Key, KeyProperties, VaultInfo

T = TypeVar("T")


def jose_errors(run: Callable[[], T]) -> T:
    """``run``; a bad key, algorithm or input is the caller's 400, naming the field."""
    try:
        return run()
    except jose.JoseError as exc:
        raise BadParameter(str(exc)) from None


async def ajose_errors(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except jose.JoseError as exc:
        raise BadParameter(str(exc)) from None


class KeyBase(ItemBase[KeyMeta, KeyValue, KeyProperties, Key, DeletedKey]):
    def __init__(self, core: Core, hsm: HSM) -> None:
        super().__init__(core, KEY)
        self._material = Material(hsm)
        ops = KEY.operations
        self._create, self._import, self._rotate = ops["Create"], ops["Import"], ops["Rotate"]
        self._get_policy, self._set_policy = ops["GetRotationPolicy"], ops["SetRotationPolicy"]

    @property
    def material(self) -> Material:
        """Where key material lives; the certificates kind issues with it too."""
        return self._material

    async def _policy(self, vault: VaultInfo, lname: str) -> PolicyRecord | None:
        key, ctx = layout.key_policy_row(vault.id, lname)
        found = await self._core.read(key, ctx)
        return None if found is None else PolicyRecord.decode(found[1])
