"""Target data: secretKey -> value, or ``target.template.data`` rendered without code.

Templates use the Go-template spelling ESO users know, limited to substitution:
``{{ .name }}`` inserts the value projected under ``name``; filters chain with ``|``:
``b64enc``, ``b64dec``, ``upper``, ``lower``, ``trim``. No expressions, loops or
attribute access exist, so a template cannot reach anything but the projected values
(a sandbox by construction, no jinja2 dependency). Errors name keys, never values.

A binary value (a PKCS#12 keystore, :class:`~.values.Binary`) is not text: a template passes
it on only whole, as its only content (``{{ .keystore.p12 }}``, to put it under another key);
a filter on it or text around it is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from kvault.controller.vaultsecret.values import Binary, Value

_FIELD = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
_REF = re.compile(r"^\.([A-Za-z0-9_.-]+)$")


class TemplateError(ValueError):
    """A template that cannot be rendered; the message names the key or filter only."""


def _b64dec(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise TemplateError("b64dec: the value is not base64 of UTF-8 text") from None


FILTERS: dict[str, Callable[[str], str]] = {
    "b64enc": lambda v: base64.b64encode(v.encode()).decode(),
    "b64dec": _b64dec,
    "upper": str.upper,
    "lower": str.lower,
    "trim": str.strip,
}


def _whole(template: str, values: Mapping[str, Value]) -> Binary | None:
    """The binary value ``template`` consists of (one reference, no filter), if it does."""
    match = _FIELD.fullmatch(template.strip())
    ref = _REF.match(match.group(1)) if match is not None else None
    value = values.get(ref.group(1)) if ref is not None else None
    return value if isinstance(value, Binary) else None


def render_one(template: str, values: Mapping[str, Value], key: str) -> Value:
    whole = _whole(template, values)
    if whole is not None:
        return whole

    def field(match: re.Match[str]) -> str:
        parts = [p.strip() for p in match.group(1).split("|")]
        ref = _REF.match(parts[0])
        if ref is None:
            raise TemplateError(f"template {key!r}: expected '{{{{ .name }}}}', got an expression")
        name = ref.group(1)
        if name not in values:
            raise TemplateError(f"template {key!r}: no projected value named {name!r}")
        found = values[name]
        if not isinstance(found, str):
            raise TemplateError(
                f"template {key!r}: {name!r} is binary (a PKCS#12 keystore), not text: a "
                f"template can only pass it on whole, as '{{{{ .{name} }}}}' alone"
            )
        out = found
        for flt in parts[1:]:
            fn = FILTERS.get(flt)
            if fn is None:
                raise TemplateError(
                    f"template {key!r}: unknown filter {flt!r} (known: {', '.join(FILTERS)})"
                )
            out = fn(out)
        return out

    return _FIELD.sub(field, template)


def render(
    values: Mapping[str, Value], templates: Mapping[str, str] | None, *, merge: bool = False
) -> dict[str, Value]:
    """The Secret's data (text, or binary values to settle: :func:`~.secret.settle`).
    Without templates every projected value is a key; with
    ``merge`` (``template.mergePolicy: Merge``) the projected values stay beside the
    rendered keys, and a rendered key wins over a projected one of the same name."""
    if not templates:
        return dict(values)
    rendered = {key: render_one(str(tpl), values, key) for key, tpl in templates.items()}
    return {**values, **rendered} if merge else rendered


def content_hash(salt: str, data: Mapping[str, str | bytes]) -> str:
    """A hash that tells whether the content changed, salted by the VaultSecret's uid so
    equal values in two Secrets do not hash alike (and no precomputed table applies). A
    binary value counts as ``{"base64": ...}`` (text values hash as they always did)."""
    shown: dict[str, Any] = {
        k: v if isinstance(v, str) else {"base64": base64.b64encode(v).decode()}
        for k, v in sorted(data.items())
    }
    canonical = json.dumps(shown, separators=(",", ":"))
    digest = hashlib.sha256(b"kvault/v1\0" + salt.encode() + b"\0" + canonical.encode())
    return "sha256:" + digest.hexdigest()
