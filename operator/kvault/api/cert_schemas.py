"""OpenAPI schemas of the certificates routes (merged into ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

from kvault.api.schema_parts import DELETION as _DELETION
from kvault.api.schema_parts import TAGS as _TAGS
from kvault.api.schema_parts import TIME as _TIME
from kvault.api.schema_parts import listing as _list
from kvault.api.schema_parts import ref as _ref

_URI = {"type": "string", "format": "uri"}
_STR = {"type": "string"}
_OBJ = {"type": "object"}


_ATTRIBUTES = {
    "type": "object",
    "properties": {
        "enabled": {"type": "boolean"},
        "nbf": _TIME,
        "exp": _TIME,
        "created": {"type": "integer", "readOnly": True},
        "updated": {"type": "integer", "readOnly": True},
        "recoveryLevel": {"type": "string", "readOnly": True},
        "recoverableDays": {"type": "integer", "readOnly": True},
    },
}
_POLICY = {
    "type": "object",
    "properties": {
        "id": _STR,
        "key_props": _OBJ,
        "secret_props": _OBJ,
        "x509_props": _OBJ,
        "lifetime_actions": {"type": "array", "items": _OBJ},
        "issuer": _OBJ,
        "attributes": _OBJ,
    },
}
_NULLABLE_STR = {"type": "string", "nullable": True}
_CREDENTIALS = {
    "type": "object",
    "properties": {"account_id": _NULLABLE_STR, "pwd": _NULLABLE_STR},
}
_ORG = {
    "type": "object",
    "properties": {
        "id": _NULLABLE_STR,
        "admin_details": {
            "type": "array",
            "nullable": True,
            "items": {
                "type": "object",
                "properties": {
                    f: _NULLABLE_STR for f in ("first_name", "last_name", "email", "phone")
                },
            },
        },
    },
}
_ISSUER_ATTRIBUTES = {
    "type": "object",
    "properties": {"enabled": {"type": "boolean", "nullable": True}},
}
_ITEM_PROPS = {"id": _URI, "attributes": _ref("CertificateAttributes"), "tags": _TAGS, "x5t": _STR}

SCHEMAS: dict[str, Any] = {
    "CertificateAttributes": _ATTRIBUTES,
    "CertificatePolicy": _POLICY,
    "CertificateItem": {
        "type": "object",
        "required": ["id", "attributes"],
        "properties": _ITEM_PROPS,
    },
    "CertificateBundle": {
        "type": "object",
        "required": ["id", "attributes"],
        "properties": {
            **_ITEM_PROPS,
            "kid": _URI,
            "sid": _URI,
            "cer": _STR,
            "policy": _ref("CertificatePolicy"),
            "pending": _OBJ,
        },
    },
    "DeletedCertificateItem": {"allOf": [_ref("CertificateItem"), _DELETION]},
    "DeletedCertificateBundle": {"allOf": [_ref("CertificateBundle"), _DELETION]},
    "CertificateListResult": _list("CertificateItem"),
    "DeletedCertificateListResult": _list("DeletedCertificateItem"),
    "BackupCertificateResult": {
        "type": "object",
        "required": ["value"],
        "properties": {"value": _STR},
    },
    "CertificateRestoreParameters": {
        "type": "object",
        "required": ["value"],
        "properties": {"value": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}},
    },
    "CertificateCreateParameters": {
        "type": "object",
        "properties": {
            "policy": _ref("CertificatePolicy"),
            "attributes": _ref("CertificateAttributes"),
            "tags": _TAGS,
        },
    },
    "CertificateImportParameters": {
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": _STR,
            "pwd": _STR,
            "policy": _ref("CertificatePolicy"),
            "attributes": _ref("CertificateAttributes"),
            "tags": _TAGS,
        },
    },
    "CertificateMergeParameters": {
        "type": "object",
        "required": ["x5c"],
        "properties": {
            "x5c": {"type": "array", "items": _STR},
            "attributes": _ref("CertificateAttributes"),
            "tags": _TAGS,
        },
    },
    "CertificateUpdateParameters": {
        "type": "object",
        "properties": {"attributes": _ref("CertificateAttributes"), "tags": _TAGS},
    },
    "CertificateOperation": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": _URI,
            "issuer": _OBJ,
            "csr": _STR,
            "cancellation_requested": {"type": "boolean"},
            "status": _STR,
            "status_details": _STR,
            "error": _OBJ,
            "target": _URI,
            "request_id": _STR,
        },
    },
    "CertificateOperationUpdateParameter": {
        "type": "object",
        "required": ["cancellation_requested"],
        "properties": {"cancellation_requested": {"type": "boolean"}},
    },
    "Contacts": {
        "type": "object",
        "properties": {
            "id": _URI,
            "contacts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"email": _STR, "name": _STR, "phone": _STR},
                },
            },
        },
    },
    "IssuerParameters": {
        "type": "object",
        "required": ["provider"],
        "properties": {
            "provider": {**_STR, "minLength": 1},
            "credentials": _CREDENTIALS,
            "org_details": _ORG,
            "attributes": _ISSUER_ATTRIBUTES,
        },
    },
    "IssuerUpdateParameters": {
        "type": "object",
        "description": "Changes what it names. A member missing or null is left as it is; a "
        "given credentials or org_details replaces that part whole (a field it leaves out, "
        "sends null or empty is cleared).",
        "properties": {
            "provider": {**_STR, "nullable": True, "minLength": 1},
            "credentials": {**_CREDENTIALS, "nullable": True},
            "org_details": {**_ORG, "nullable": True},
            "attributes": {**_ISSUER_ATTRIBUTES, "nullable": True},
        },
    },
    "IssuerBundle": {
        "type": "object",
        "required": ["id", "provider"],
        "properties": {
            "id": _URI,
            "provider": _STR,
            "credentials": _OBJ,
            "org_details": _OBJ,
            "attributes": _OBJ,
        },
    },
    "IssuerListResult": _list("IssuerItem"),
    "IssuerItem": {
        "type": "object",
        "required": ["id", "provider"],
        "properties": {"id": _URI, "provider": _STR},
    },
}
