"""OpenAPI schemas of the keys routes (merged into ``/openapi.json`` by :mod:`.openapi`)."""

from __future__ import annotations

from typing import Any

from kvault.api.schema_parts import DELETION as _DELETION
from kvault.api.schema_parts import TAGS as _TAGS
from kvault.api.schema_parts import TIME as _TIME
from kvault.api.schema_parts import listing as _list
from kvault.api.schema_parts import ref as _ref
from kvault.vault.keys.kind import KEY_OPS, KTYS

_B64URL = {"type": "string", "pattern": "^[A-Za-z0-9_-]*$"}


_OPS = {"type": "array", "items": {"type": "string", "enum": list(KEY_OPS)}}
_TRIGGER = {
    "type": "object",
    "properties": {"timeAfterCreate": {"type": "string"}, "timeBeforeExpiry": {"type": "string"}},
}

SCHEMAS: dict[str, Any] = {
    "KeyAttributes": {
        "type": "object",
        "properties": {
            "enabled": {"type": "boolean"},
            "nbf": _TIME,
            "exp": _TIME,
            "created": {"type": "integer", "readOnly": True},
            "updated": {"type": "integer", "readOnly": True},
            "recoveryLevel": {"type": "string", "readOnly": True},
            "recoverableDays": {"type": "integer", "readOnly": True},
            "exportable": {"type": "boolean"},
        },
    },
    "JsonWebKey": {
        "type": "object",
        "properties": {
            "kid": {"type": "string", "format": "uri"},
            "kty": {"type": "string", "enum": list(KTYS)},
            "key_ops": {"type": "array", "items": {"type": "string"}},
            **{m: _B64URL for m in ("n", "e", "d", "dp", "dq", "qi", "p", "q", "k", "x", "y")},
            "crv": {"type": "string"},
        },
    },
    "KeyBundle": {
        "type": "object",
        "required": ["key", "attributes"],
        "properties": {
            "key": _ref("JsonWebKey"),
            "attributes": _ref("KeyAttributes"),
            "tags": _TAGS,
            "managed": {"type": "boolean"},
        },
    },
    "KeyItem": {
        "type": "object",
        "required": ["kid", "attributes"],
        "properties": {
            "kid": {"type": "string", "format": "uri"},
            "attributes": _ref("KeyAttributes"),
            "tags": _TAGS,
            "managed": {"type": "boolean"},
        },
    },
    "DeletedKeyBundle": {"allOf": [_ref("KeyBundle"), _DELETION]},
    "DeletedKeyItem": {"allOf": [_ref("KeyItem"), _DELETION]},
    "KeyListResult": _list("KeyItem"),
    "DeletedKeyListResult": _list("DeletedKeyItem"),
    "BackupKeyResult": {
        "type": "object",
        "required": ["value"],
        "properties": {"value": {"type": "string"}},
    },
    "KeyCreateParameters": {
        "type": "object",
        "required": ["kty"],
        "properties": {
            "kty": {"type": "string", "enum": list(KTYS)},
            "key_size": {"type": "integer"},
            "public_exponent": {"type": "integer"},
            "crv": {"type": "string", "enum": ["P-256", "P-384", "P-521", "P-256K"]},
            "key_ops": _OPS,
            "attributes": _ref("KeyAttributes"),
            "tags": _TAGS,
        },
    },
    "KeyImportParameters": {
        "type": "object",
        "required": ["key"],
        "properties": {
            "Hsm": {"type": "boolean"},
            "key": _ref("JsonWebKey"),
            "attributes": _ref("KeyAttributes"),
            "tags": _TAGS,
        },
    },
    "KeyUpdateParameters": {
        "type": "object",
        "properties": {"key_ops": _OPS, "attributes": _ref("KeyAttributes"), "tags": _TAGS},
    },
    "KeyRestoreParameters": {
        "type": "object",
        "required": ["value"],
        "properties": {"value": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}},
    },
    "KeyOperationsParameters": {
        "type": "object",
        "required": ["alg", "value"],
        "properties": {
            "alg": {"type": "string"},
            "value": _B64URL,
            "iv": _B64URL,
            "aad": _B64URL,
            "tag": _B64URL,
        },
    },
    "KeySignParameters": {
        "type": "object",
        "required": ["alg", "value"],
        "properties": {"alg": {"type": "string"}, "value": _B64URL},
    },
    "KeyVerifyParameters": {
        "type": "object",
        "required": ["alg", "digest", "value"],
        "properties": {"alg": {"type": "string"}, "digest": _B64URL, "value": _B64URL},
    },
    "KeyOperationResult": {
        "type": "object",
        "required": ["kid", "value"],
        "properties": {
            "kid": {"type": "string", "format": "uri"},
            "value": _B64URL,
            "iv": _B64URL,
            "tag": _B64URL,
            "aad": _B64URL,
        },
    },
    "KeyVerifyResult": {
        "type": "object",
        "required": ["value"],
        "properties": {"value": {"type": "boolean"}},
    },
    "KeyRotationPolicy": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "lifetimeActions": {
                "type": "array",
                "nullable": True,
                "items": {
                    "type": "object",
                    "properties": {
                        "trigger": _TRIGGER,
                        "action": {"type": "object", "properties": {"type": {"type": "string"}}},
                    },
                },
            },
            "attributes": {
                "type": "object",
                "nullable": True,
                "properties": {
                    "expiryTime": {"type": "string"},
                    "created": {"type": "integer"},
                    "updated": {"type": "integer"},
                },
            },
        },
    },
    "GetRandomBytesRequest": {
        "type": "object",
        "required": ["count"],
        "properties": {"count": {"type": "integer", "minimum": 1, "maximum": 128}},
    },
    "RandomBytes": {
        "type": "object",
        "required": ["value"],
        "properties": {"value": _B64URL},
    },
}
