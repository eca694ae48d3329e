"""Where a key's private material lives, and the one place that uses it.

Software keys (``RSA``, ``EC``, ``oct``) are generated in process; their private material is
a field of the version record, which the barrier seals like every item, so it is never in
plaintext on disk. ``-HSM`` keys (premium vaults only) are generated inside the HSM plugin's
:class:`~kvault.hsm.keys.HsmKeys`; the record holds the plugin's handle and every private
operation runs in the HSM. Public operations (RSA/EC encrypt, wrap, verify) run in software
on the public JWK in both cases: they need no secret.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import cast

from kvault.crypto import keys as jose
from kvault.crypto.jwk import unb64url
from kvault.errors import BadParameter
from kvault.hsm.base import HSM
from kvault.hsm.keys import HsmKeys, held_keys
from kvault.vault.keys.kind import KeyValue
from kvault.vault.model import KeyResult, VaultInfo


def _label(vault: VaultInfo, version: str) -> str:
    """An HSM object's name: unique per key version, and says whose it is."""
    return f"kvault-key-{vault.id}-{version}"


#: Parsed software keys kept in memory (parsing an RSA key costs far more than using it).
CACHE_SIZE = 1024


class Material:
    """Generates, imports, uses and destroys key material for the keys kind."""

    def __init__(self, hsm: HSM) -> None:
        self._held: HsmKeys | None = held_keys(hsm)
        self._parsed: OrderedDict[bytes, jose.Private | jose.Public] = OrderedDict()

    # -- making keys -----------------------------------------------------------------------

    def _held_for(self, vault: VaultInfo, kty: str) -> HsmKeys:
        if vault.sku != "premium":
            raise BadParameter(
                f"kty {kty} is an HSM-protected key type; vault {vault.name} is a standard "
                "vault (HSM-protected keys need a premium vault)"
            )
        if self._held is None:
            raise BadParameter(
                f"kty {kty} needs an HSM plugin that holds keys; this kvault's plugin does not"
            )
        return self._held

    async def generate(
        self,
        vault: VaultInfo,
        version: str,
        kty: str,
        *,
        size: int | None = None,
        crv: str | None = None,
        public_exponent: int | None = None,
    ) -> KeyValue:
        """New material for key version ``version`` (a bad size or curve is a 400)."""
        try:
            base = jose.base_kty(kty)
            if kty.endswith("-HSM"):
                held = self._held_for(vault, kty)
                handle, public = await held.create_key(
                    _label(vault, version),
                    base,
                    size=size,
                    crv=crv,
                    public_exponent=public_exponent,
                )
                return KeyValue(public, handle=handle, size=_size(public, size))
            key = jose.generate(base, size=size, crv=crv, public_exponent=public_exponent)
        except jose.JoseError as exc:
            raise BadParameter(str(exc)) from None
        return KeyValue(jose.public_jwk(key), jose.dump_private(key), size=jose.key_size(key))

    async def imported(
        self, vault: VaultInfo, version: str, kty: str, key: jose.Private
    ) -> KeyValue:
        """``key`` as the material of key version ``version`` (into the HSM for ``-HSM``)."""
        size = jose.key_size(key)
        if kty.endswith("-HSM"):
            held = self._held_for(vault, kty)
            try:
                handle, public = await held.import_key(_label(vault, version), key)
            except jose.JoseError as exc:
                raise BadParameter(str(exc)) from None
            return KeyValue(public, handle=handle, size=size)
        return KeyValue(jose.public_jwk(key), jose.dump_private(key), size=size)

    def exportable(self, value: KeyValue) -> jose.Private | None:
        """The private key, for a certificate's PFX/PEM secret (Azure exports an exportable
        certificate's key that way); ``None`` for HSM keys: they never leave the HSM."""
        return self._private(value) if value.private else None

    async def usable(self, value: KeyValue) -> bool:
        """Whether the key's private part still exists (an HSM key's object may have been
        destroyed by a purge since its backup was made)."""
        if not value.handle:
            return True
        return self._held is not None and await self._held.exists(value.handle)

    async def destroy(self, value: KeyValue) -> None:
        """The HSM object of a purged (or never committed) version; software keys go with
        their record."""
        if value.handle and self._held is not None:
            await self._held.destroy(value.handle)
        self._parsed.pop(value.private or value.handle, None)

    # -- using keys ------------------------------------------------------------------------

    def _private(self, value: KeyValue) -> jose.Private:
        key = self._parsed.get(value.private)
        if key is None:
            key = jose.load_private(value.private)
            self._remember(value.private, key)
        return cast(jose.Private, key)  # keyed by private material: always a private key

    def _remember(self, ref: bytes, key: jose.Private | jose.Public) -> None:
        self._parsed[ref] = key
        if len(self._parsed) > CACHE_SIZE:
            self._parsed.popitem(last=False)

    def _public(self, value: KeyValue) -> jose.Private | jose.Public:
        if value.private:
            return self._private(value)
        key = self._parsed.get(value.handle)  # an HSM key's public half
        if key is None:
            key = jose.public_from_jwk(value.public)
            self._remember(value.handle, key)
        return key

    def _hsm(self, value: KeyValue) -> HsmKeys | None:
        if not value.handle:
            return None
        if self._held is None:
            raise BadParameter("this key is held by an HSM that this kvault's plugin cannot use")
        return self._held

    def _symmetric_in_hsm(self, value: KeyValue) -> HsmKeys | None:
        """The HSM, for operations that need the secret: all of them for oct keys."""
        return self._hsm(value) if value.public.get("kty") == "oct" else None

    async def encrypt(
        self, value: KeyValue, alg: str, data: bytes, iv: bytes | None, aad: bytes | None
    ) -> KeyResult:
        held = self._symmetric_in_hsm(value)
        if held is not None:
            out = await held.encrypt(value.handle, alg, data, iv=iv, aad=aad)
        else:
            out = jose.encrypt(self._public(value), alg, data, iv=iv, aad=aad)
        return KeyResult("", out.value, out.iv, out.tag, aad)

    async def decrypt(
        self,
        value: KeyValue,
        alg: str,
        data: bytes,
        iv: bytes | None,
        aad: bytes | None,
        tag: bytes | None,
    ) -> bytes:
        held = self._hsm(value)
        if held is not None:
            return await held.decrypt(value.handle, alg, data, iv=iv, aad=aad, tag=tag)
        return jose.decrypt(self._private(value), alg, data, iv=iv, aad=aad, tag=tag)

    async def sign(self, value: KeyValue, alg: str, digest: bytes) -> bytes:
        held = self._hsm(value)
        if held is not None:
            return await held.sign(value.handle, alg, digest)
        return jose.sign(self._private(value), alg, digest)

    async def verify(self, value: KeyValue, alg: str, digest: bytes, signature: bytes) -> bool:
        return jose.verify(self._public(value), alg, digest, signature)

    async def wrap(self, value: KeyValue, alg: str, key: bytes) -> bytes:
        held = self._symmetric_in_hsm(value)
        if held is not None:
            return await held.wrap(value.handle, alg, key)
        return jose.wrap(self._public(value), alg, key)

    async def unwrap(self, value: KeyValue, alg: str, wrapped: bytes) -> bytes:
        held = self._hsm(value)
        if held is not None:
            return await held.unwrap(value.handle, alg, wrapped)
        return jose.unwrap(self._private(value), alg, wrapped)


def _size(public: dict[str, str], asked: int | None) -> int | None:
    """An HSM key's size: the RSA modulus from its JWK, else what was asked (oct)."""
    if public.get("kty") == "RSA":
        return len(unb64url(public["n"])) * 8
    return asked or (256 if public.get("kty") == "oct" else None)
