"""A key's cryptographic operations: each authorises its caller, finds the version, checks
that it may be used now (enabled, inside ``nbf``/``exp``, listed in ``key_ops``) and that the
algorithm fits, then runs where the material lives; one audit line each, never with data."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from kvault.crypto import keys as jose
from kvault.errors import BadParameter, Forbidden, ItemDisabled
from kvault.vault import names
from kvault.vault.core import LOCAL, Caller
from kvault.vault.keys.base import KeyBase, ajose_errors, jose_errors
from kvault.vault.keys.kind import KEY, KeyMeta, KeyValue
from kvault.vault.keys.material import Material
from kvault.vault.model import KeyResult

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KeyInput:
    """A cryptographic operation's input: ``value`` (plaintext, ciphertext, digest to sign,
    key to wrap, signature to verify), ``digest`` (verify), ``iv``/``aad``/``tag`` (AES)."""

    value: bytes = field(default=b"", repr=False)
    digest: bytes = b""
    iv: bytes | None = None
    aad: bytes | None = None
    tag: bytes | None = None


#: The ``key_ops`` entry each operation needs.
NEEDS = {
    "Encrypt": "encrypt",
    "Decrypt": "decrypt",
    "Sign": "sign",
    "Verify": "verify",
    "WrapKey": "wrapKey",
    "UnwrapKey": "unwrapKey",
}
#: Random bytes per request (Azure's limit for getRandomBytes).
MAX_RANDOM = 128


class KeyOperations(KeyBase):
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
            self._usable(meta, NEEDS[verb], core.now())
            jose_errors(lambda: jose.check_alg(meta.kty, NEEDS[verb], alg))
            return meta.version, await ajose_errors(run(record.value))

    @staticmethod
    def _usable(meta: KeyMeta, op: str, now: int) -> None:
        if not meta.enabled:
            raise ItemDisabled(f"Operation {op} is not allowed on a disabled key.", "KeyDisabled")
        if meta.not_before is not None and now < meta.not_before:
            raise Forbidden(
                f"Operation {op} is not allowed on a key that is not yet valid.", "KeyNotYetValid"
            )
        if meta.expires is not None and now >= meta.expires:
            raise Forbidden(f"Operation {op} is not allowed on an expired key.", "KeyExpired")
        if op not in meta.key_ops:
            raise Forbidden(
                f"Operation {op} is not permitted on this key.", "KeyOperationForbidden"
            )

    async def operate(
        self,
        vault_name: str,
        name: str,
        version: str,
        verb: str,
        alg: str,
        data: KeyInput,
        *,
        caller: Caller = LOCAL,
    ) -> KeyResult:
        """Run ``verb`` (``Encrypt``, ``Decrypt``, ``Sign``, ``Verify``, ``WrapKey``,
        ``UnwrapKey``) with version ``version`` (empty: the current one) of key ``name``.
        The result names the version used; ``Verify`` answers in ``valid``."""
        if verb not in NEEDS:
            raise BadParameter(f"unknown key operation {verb!r}")
        material = self._material
        used, out = await self._use(
            caller,
            vault_name,
            name,
            version,
            verb,
            alg,
            lambda v: _run(material, verb, v, alg, data),
        )
        if isinstance(out, KeyResult):
            return replace(out, version=used)
        if isinstance(out, bool):
            return KeyResult(used, b"", valid=out)
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


async def _run(
    material: Material, verb: str, value: KeyValue, alg: str, data: KeyInput
) -> KeyResult | bytes | bool:
    """``verb`` with the key's material."""
    match verb:
        case "Encrypt":
            return await material.encrypt(value, alg, data.value, data.iv, data.aad)
        case "Decrypt":
            return await material.decrypt(value, alg, data.value, data.iv, data.aad, data.tag)
        case "Sign":
            return await material.sign(value, alg, data.value)
        case "Verify":
            return await material.verify(value, alg, data.digest, data.value)
        case "WrapKey":
            return await material.wrap(value, alg, data.value)
        case _:
            return await material.unwrap(value, alg, data.value)
