"""The ``Key`` source: the PUBLIC part of a vault key, by name (and version).

``remoteRef.format`` chooses the form: ``PEM`` (default) is the SubjectPublicKeyInfo PEM that
``openssl``, TLS libraries and JWT verifiers load; ``JWK`` is the public JSON Web Key (``kty``
and RSA ``n``/``e`` or EC ``crv``/``x``/``y``, compact JSON with sorted members). Only those
members are copied, from the key's public JWK: private material is never read. An ``oct``
(symmetric) key has no public part and is refused. A disabled or missing key keeps the last
projection, as for secrets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import FORMATS, Ref
from kvault.controller.vaultsecret.source import Projected, Reading
from kvault.crypto import keys as jose
from kvault.crypto.pem import public_pem
from kvault.errors import ItemDisabled, NotFound
from kvault.vault.model import Key

#: The public members of each key type, in the JWK a projection shows.
PUBLIC_MEMBERS = {"RSA": ("kty", "n", "e"), "EC": ("kty", "crv", "x", "y")}


def public_jwk(public: Mapping[str, str]) -> dict[str, str]:
    """The public members of ``public`` only (``kty`` as its base type: ``RSA``, ``EC``)."""
    kty = str(public.get("kty", "")).removesuffix("-HSM")
    members = PUBLIC_MEMBERS[kty]
    return {m: kty if m == "kty" else str(public[m]) for m in members}


class KeySource:
    kind = "Key"
    get_operation = "KeyGet"
    list_operation = "KeyList"

    def scope(self, name: str) -> str:
        return f"keys/{name}"

    async def find(self, reading: Reading, selector: Mapping[str, Any]) -> list[Ref]:
        """``dataFrom`` selects secrets only (:data:`~.sources.DATA_FROM_KIND`)."""
        return []

    async def get(self, reading: Reading, ref: Ref) -> Projected:
        plan = reading.plan
        if ref.format not in FORMATS:  # the CRD's enum refuses it first; never guess
            raise Refused(
                "Error",
                f"data[{ref.key}].remoteRef.format must be one of {', '.join(FORMATS)}, "
                f"got {ref.format!r}",
                drop=False,
            )
        try:
            key = await reading.kv.keys.get(
                plan.vault, ref.name, ref.version, caller=reading.caller
            )
        except NotFound:
            shown = f"{ref.name}/{ref.version}" if ref.version else ref.name
            raise Refused(
                "ItemNotFound", f"key {shown!r} was not found in vault {plan.vault_ref}", drop=False
            ) from None
        except ItemDisabled:
            raise Refused(
                "ItemNotFound",
                f"key {ref.name!r} of vault {plan.vault_ref} is disabled",
                drop=False,
            ) from None
        return Projected(_render(key, ref, plan.vault_ref), key.properties.version)


def _render(key: Key, ref: Ref, vault_ref: str) -> str:
    kty = str(key.public.get("kty", "")).removesuffix("-HSM")
    if kty not in PUBLIC_MEMBERS:
        raise Refused(
            "Error",
            f"key {ref.name!r} of vault {vault_ref} cannot be projected: an {kty or 'unknown'} "
            "key has no public part (only RSA and EC keys have one)",
            drop=False,
        )
    jwk = public_jwk(key.public)
    if ref.format == "JWK":
        return json.dumps(jwk, sort_keys=True, separators=(",", ":"))
    try:
        return public_pem(jose.public_from_jwk(jwk)).decode()
    except jose.JoseError as exc:  # a stored public key that does not load: say which
        raise Refused(
            "Error", f"key {ref.name!r} of vault {vault_ref}: {exc}", drop=False
        ) from None
