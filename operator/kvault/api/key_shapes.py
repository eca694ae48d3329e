"""JSON views of keys, exactly as the Key Vault REST API spells them: ``kid`` carries the
version, binary members are base64url without padding, and no private member ever appears."""

from __future__ import annotations

from typing import Any

from kvault.api.bodies import encode_base64url
from kvault.api.shapes import attributes, deletion
from kvault.vault.model import DeletedKey, Key, KeyProperties, KeyResult


def kid(base: str, p: KeyProperties, *, versioned: bool = True) -> str:
    return f"{base}/keys/{p.name}/{p.version}" if versioned else f"{base}/keys/{p.name}"


def _attributes(p: KeyProperties) -> dict[str, Any]:
    return {**attributes(p), "exportable": False}


def _common(p: KeyProperties) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": _attributes(p)}
    if p.tags:
        out["tags"] = dict(p.tags)
    if p.managed:
        out["managed"] = True
    return out


def item(base: str, p: KeyProperties, *, versioned: bool = True) -> dict[str, Any]:
    """KeyItem: what listings return (a versionless ``kid`` in ``GET /keys``)."""
    return {"kid": kid(base, p, versioned=versioned), **_common(p)}


def bundle(base: str, key: Key) -> dict[str, Any]:
    """KeyBundle: the public JWK (``kty`` as stored, ``-HSM`` included) and metadata."""
    p = key.properties
    jwk: dict[str, Any] = {"kid": kid(base, p), "kty": p.kty, "key_ops": list(p.key_ops)}
    jwk.update((k, v) for k, v in key.public.items() if k != "kty")
    return {"key": jwk, **_common(p)}


def deleted(base: str, d: DeletedKey) -> dict[str, Any]:
    """DeletedKeyBundle (with the key: delete and get-deleted) or DeletedKeyItem (lists)."""
    p = d.properties
    body = (
        bundle(base, Key(p, d.public)) if d.public is not None else item(base, p, versioned=False)
    )
    return {**body, **deletion(base, "keys", p.name, d.deleted_date, d.scheduled_purge_date)}


def result(base: str, p_name: str, r: KeyResult) -> dict[str, Any]:
    """KeyOperationResult: ``kid`` names the version used; ``iv``/``tag``/``aad`` when set."""
    out: dict[str, Any] = {
        "kid": f"{base}/keys/{p_name}/{r.version}",
        "value": encode_base64url(r.value),
    }
    for name, value in (("iv", r.iv), ("tag", r.tag), ("aad", r.aad)):
        if value is not None:
            out[name] = encode_base64url(value)
    return out
