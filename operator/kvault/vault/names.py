"""Input rules of Azure Key Vault, checked before anything is read or written."""

from __future__ import annotations

import re
from collections.abc import Mapping

from kvault.errors import BadParameter

ITEM_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
VAULT_NAME = re.compile(
    r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?"
)
VERSION = re.compile(r"[0-9a-f]{32}")
MAX_TAGS = 15
MAX_TAG_NAME = 512
MAX_TAG_VALUE = 256
MAX_CONTENT_TYPE = 255
DEFAULT_MAX_VALUE_BYTES = 25 * 1024
RETENTION_DAYS = range(7, 91)
#: 9999-12-31T23:59:59Z: clients turn timestamps into datetimes, which end there.
MAX_UNIX_TIME = 253_402_300_799


def item_name(name: str, kind: str) -> str:
    """Return the storage form of a ``kind`` item's name (case-insensitive, as in Azure)."""
    if not isinstance(name, str) or not ITEM_NAME.fullmatch(name):
        raise BadParameter(
            f"invalid {kind} name {name!r}: use 1-127 characters of letters, digits and hyphens"
        )
    return name.lower()


def vault_name(name: str) -> str:
    if not isinstance(name, str) or not VAULT_NAME.fullmatch(name):
        raise BadParameter(
            f"invalid vault name {name!r}: use a DNS label (lowercase letters, digits, hyphens, "
            "at most 63), optionally followed by '.' and a namespace"
        )
    return name


def version(value: str) -> str:
    if not VERSION.fullmatch(value):
        raise BadParameter(f"invalid version {value!r}: a version is 32 lowercase hex digits")
    return value


def tags(value: Mapping[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadParameter("tags must be an object of string names to string values")
    if len(value) > MAX_TAGS:
        raise BadParameter(f"too many tags: {len(value)} given, at most {MAX_TAGS} allowed")
    for k, v in value.items():
        if not isinstance(k, str) or not 1 <= len(k) <= MAX_TAG_NAME:
            raise BadParameter(f"tag name {k!r} must be a string of 1-{MAX_TAG_NAME} characters")
        if not isinstance(v, str) or len(v) > MAX_TAG_VALUE:
            raise BadParameter(
                f"value of tag {k!r} must be a string of at most {MAX_TAG_VALUE} characters"
            )
    return dict(value)


def content_type(value: str | None) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_CONTENT_TYPE):
        raise BadParameter(f"contentType must be a string of at most {MAX_CONTENT_TYPE} characters")
    return value


def timestamp(field: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNIX_TIME:
        raise BadParameter(
            f"{field} must be a Unix time in seconds up to {MAX_UNIX_TIME} (year 9999), "
            f"got {value!r}"
        )
    return value


def secret_value(value: str, limit: int) -> bytes:
    """The value as stored (UTF-8); Azure counts the limit in bytes."""
    if not isinstance(value, str):
        raise BadParameter("secret value must be a string")
    raw = value.encode()
    if len(raw) > limit:
        raise BadParameter(f"secret value is {len(raw)} bytes; the limit is {limit} bytes")
    return raw


def retention_days(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in RETENTION_DAYS:
        raise BadParameter(f"softDeleteRetentionInDays must be 7-90, got {value!r}")
    return value
