"""Target data: secretKey -> value, or ``target.template.data`` rendered without code.

Templates use the Go-template spelling ESO users know, limited to substitution:
``{{ .name }}`` inserts the value projected under ``name``; filters chain with ``|``:
``b64enc``, ``b64dec``, ``upper``, ``lower``, ``trim``. No expressions, loops or
attribute access exist, so a template cannot reach anything but the projected values
(a sandbox by construction, no jinja2 dependency). Errors name keys, never values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping

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


def render_one(template: str, values: Mapping[str, str], key: str) -> str:
    def field(match: re.Match[str]) -> str:
        parts = [p.strip() for p in match.group(1).split("|")]
        ref = _REF.match(parts[0])
        if ref is None:
            raise TemplateError(f"template {key!r}: expected '{{{{ .name }}}}', got an expression")
        name = ref.group(1)
        if name not in values:
            raise TemplateError(f"template {key!r}: no projected value named {name!r}")
        out = values[name]
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
    values: Mapping[str, str], templates: Mapping[str, str] | None, *, merge: bool = False
) -> dict[str, str]:
    """The Secret's data (text). Without templates every projected value is a key; with
    ``merge`` (``template.mergePolicy: Merge``) the projected values stay beside the
    rendered keys, and a rendered key wins over a projected one of the same name."""
    if not templates:
        return dict(values)
    rendered = {key: render_one(str(tpl), values, key) for key, tpl in templates.items()}
    return {**values, **rendered} if merge else rendered


def content_hash(salt: str, data: Mapping[str, str]) -> str:
    """A hash that tells whether the content changed, salted by the VaultSecret's uid so
    equal values in two Secrets do not hash alike (and no precomputed table applies)."""
    canonical = json.dumps(dict(sorted(data.items())), separators=(",", ":"))
    digest = hashlib.sha256(b"kvault/v1\0" + salt.encode() + b"\0" + canonical.encode())
    return "sha256:" + digest.hexdigest()
