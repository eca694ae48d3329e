"""What the engine stores for a key version: metadata with ``kty`` and ``key_ops``, and a
value that holds the public JWK members plus either the private material (software keys,
sealed by the barrier with the record) or the HSM's handle (``-HSM`` keys)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kvault.errors import BadParameter
from kvault.vault.items.kind import ItemKind
from kvault.vault.items.records import Codec, ItemMeta
from kvault.vault.model import DeletedKey, Key, KeyProperties, VaultInfo

#: Azure's ``kty`` values, and the ``key_ops`` a key may list.
KTYS = ("RSA", "RSA-HSM", "EC", "EC-HSM", "oct", "oct-HSM")
KEY_OPS = ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export")
#: What a new key allows when the request names no ``key_ops`` (the real service's defaults).
DEFAULT_OPS = {
    "RSA": ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"),
    "EC": ("sign", "verify"),
    "oct": ("encrypt", "decrypt", "wrapKey", "unwrapKey"),
}


@dataclass(frozen=True, slots=True)
class KeyMeta(ItemMeta):
    kty: str = "RSA"
    key_ops: tuple[str, ...] = ()

    def to_doc(self) -> dict[str, Any]:
        return {**ItemMeta.to_doc(self), "kty": self.kty, "keyOps": list(self.key_ops)}

    @classmethod
    def own_fields(cls, doc: dict[str, Any]) -> tuple[Any, ...]:
        return (doc["kty"], tuple(doc["keyOps"]))

    @property
    def hsm(self) -> bool:
        return self.kty.endswith("-HSM")

    def properties(self, vault: VaultInfo) -> KeyProperties:
        return KeyProperties(**self.common(vault), kty=self.kty, key_ops=self.key_ops)


@dataclass(frozen=True, slots=True)
class KeyValue:
    """``public``: the JWK's public members (``kty`` is the base type); ``private``: the
    software key (:func:`kvault.crypto.keys.dump_private`), empty for HSM keys; ``handle``:
    the HSM's reference to its object, empty for software keys."""

    public: Mapping[str, str]
    private: bytes = field(default=b"", repr=False)
    handle: bytes = b""
    #: Bits (RSA modulus, oct key): what rotation repeats (an oct JWK shows no size).
    size: int | None = None


def _b64(data: bytes) -> str | None:
    return base64.b64encode(data).decode() if data else None


def _unb64(text: Any) -> bytes:
    if text is None:
        return b""
    if not isinstance(text, str):
        raise ValueError("key material")
    return base64.b64decode(text, validate=True)


class _Value:
    def to_doc(self, value: KeyValue) -> dict[str, Any]:
        return {
            "jwk": dict(value.public),
            "private": _b64(value.private),
            "handle": _b64(value.handle),
            "size": value.size,
        }

    def from_doc(self, doc: dict[str, Any]) -> KeyValue:
        public = doc.pop("jwk", None)
        if not isinstance(public, dict) or not all(isinstance(v, str) for v in public.values()):
            raise ValueError("jwk")
        size = doc.pop("size", None)
        if size is not None and not isinstance(size, int):
            raise ValueError("size")
        private, handle = _unb64(doc.pop("private", None)), _unb64(doc.pop("handle", None))
        return KeyValue(public, private, handle, size)


def key_ops(value: Any, field: str = "key_ops") -> tuple[str, ...]:
    """``key_ops`` as given (a list of Azure's operation names, each once)."""
    if not isinstance(value, list | tuple) or not all(isinstance(op, str) for op in value):
        raise BadParameter(f"{field} must be a list of strings")
    for op in value:
        if op not in KEY_OPS:
            raise BadParameter(
                f"{field} has an unknown operation {op!r}; allowed: {', '.join(KEY_OPS)}"
            )
    return tuple(dict.fromkeys(value))


def _attributes(given: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name == "kty":
            if value not in KTYS:
                raise BadParameter(f"kty must be one of {', '.join(KTYS)}, got {value!r}")
            out[name] = value
        elif name == "key_ops":
            out[name] = key_ops(value)
        elif name == "managed":
            out[name] = bool(value)
        else:
            raise BadParameter(f"unknown key attribute {name!r}")
    return out


def _check_value(value: KeyValue, limit: int) -> None:
    """Key values are built by kvault, never taken from a caller as they are."""


KEY: ItemKind[KeyMeta, KeyValue, KeyProperties, Key, DeletedKey] = ItemKind(
    name="key",
    plural="keys",
    title="Key",
    codec=Codec(KeyMeta, _Value(), "key"),
    check_value=_check_value,
    attributes=_attributes,
    properties=KeyMeta.properties,
    item=lambda props, value: Key(props, value.public),
    deleted=DeletedKey,
    disabled_code="KeyDisabled",
    verbs=(
        "Create",
        "Import",
        "Rotate",
        "Encrypt",
        "Decrypt",
        "Sign",
        "Verify",
        "WrapKey",
        "UnwrapKey",
        "GetRotationPolicy",
        "SetRotationPolicy",
        "GetRandomBytes",
    ),
    mutating=("Create", "Import", "Rotate", "SetRotationPolicy"),
    # Every cryptographic operation reads the key's head and version: keep them decoded.
    # Nothing more stays in memory than Material's parsed keys hold already.
    memo_rows=4096,
)
