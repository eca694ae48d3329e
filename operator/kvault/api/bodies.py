"""Request bodies: JSON objects checked field by field, so a 400 names the field at fault."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from aiohttp import web

from kvault.errors import BadParameter
from kvault.vault.names import MAX_UNIX_TIME

_B64URL = re.compile(r"[A-Za-z0-9_\-+/]*={0,2}")
MISSING: Any = object()


async def json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        raise BadParameter("the request body is missing; send a JSON object")
    try:
        text = raw.decode("utf-8-sig")  # strict: no encoded surrogates, no UTF-16
        doc = json.loads(text)
        # A \u escape can still make a lone surrogate, which cannot be stored as UTF-8.
        if "\\u" in text:
            json.dumps(doc, ensure_ascii=False).encode()
    except (ValueError, RecursionError):
        raise BadParameter("the request body is not valid JSON (UTF-8)") from None
    if not isinstance(doc, dict):
        raise BadParameter("the request body must be a JSON object")
    return doc


def string(doc: dict[str, Any], field: str, *, required: bool = False, where: str = "") -> Any:
    """A string field: the value, ``None`` for JSON null, or ``MISSING``."""
    value = doc.get(field, MISSING)
    if value is MISSING:
        if required:
            raise BadParameter(f"{where}{field} is required")
        return MISSING
    if value is None:
        if required:
            raise BadParameter(f"{where}{field} must be a string, got null")
        return None
    if not isinstance(value, str):
        raise BadParameter(f"{where}{field} must be a string")
    return value


def optional_string(doc: dict[str, Any], field: str) -> str | None:
    """A string field that may be missing or null (both ``None``)."""
    value = string(doc, field)
    return None if value is MISSING else value


def integer(doc: dict[str, Any], field: str) -> int | None:
    """An integer field that may be missing or null (both ``None``)."""
    value = doc.get(field)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadParameter(f"{field} must be an integer")
    return value


def tags(doc: dict[str, Any]) -> dict[str, str] | None:
    value = doc.get("tags")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise BadParameter("tags must be an object of string names to string values")
    return value


def attributes(doc: dict[str, Any]) -> dict[str, Any]:
    """``attributes`` as keyword arguments of the domain: ``enabled``, ``not_before``,
    ``expires`` (only those present; ``null`` clears a date)."""
    attrs = doc.get("attributes")
    if attrs is None:
        return {}
    if not isinstance(attrs, dict):
        raise BadParameter("attributes must be an object")
    out: dict[str, Any] = {}
    enabled = attrs.get("enabled")
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise BadParameter("attributes.enabled must be true or false")
        out["enabled"] = enabled
    for field, kwarg in (("nbf", "not_before"), ("exp", "expires")):
        if field in attrs:
            out[kwarg] = _unix_time(attrs[field], f"attributes.{field}")
    return out


def _unix_time(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNIX_TIME:
        raise BadParameter(f"{field} must be a Unix time in seconds, at most {MAX_UNIX_TIME}")
    return value


def base64url(value: str, field: str) -> bytes:
    """Base64url with or without padding (standard base64 accepted too)."""
    if not value or not _B64URL.fullmatch(value):
        raise BadParameter(f"{field} must be a non-empty base64url string")
    text = value.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadParameter(f"{field} must be a non-empty base64url string") from None


def encode_base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
