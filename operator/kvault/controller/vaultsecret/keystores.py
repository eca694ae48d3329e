"""PKCS#12 keystores of a ``Certificate`` entry: ``data[].keystores.pkcs12``, as cert-manager's
Certificate ``spec.keystores.pkcs12`` writes them, with the password read from a vault secret.

``{secretKey: S, remoteRef: {kind: Certificate, ...}, keystores: {pkcs12: {create: true,
passwordRef: {name: P}, profile: Modern2023}}}`` adds two keys to the entry's PEM files
(:func:`keystore_keys`): ``S.keystore.p12``, the private key with the leaf and its chain,
and ``S.truststore.p12``, the CA certificate only (marked trusted for Java), both encrypted
with the value of vault secret ``P`` (UTF-8, as it is) in the profile's algorithms
(:mod:`kvault.crypto.keystore`). With ``S`` = ``tls`` they are ``keystore.p12`` and
``truststore.p12``, cert-manager's names. No CA (a chain that stops below a self-signed CA)
means no truststore, as it means no ``ca.crt``.

cert-manager reads the password from a Kubernetes Secret (``passwordSecretRef``); here it is
an item of the same vault, read as the VaultSecret's ServiceAccount like every item: a
``SecretGet`` on ``secrets/P`` authorised before anything is read (:func:`password_need`),
so a denial is ``Forbidden`` and a missing or disabled password keeps the last projection,
as for any item. The password never leaves this process but inside the files: messages name
the secret, never its value.

Stable bytes. PKCS#12 is salted at random (the PBE salts and IVs, the MAC salt), so encoding
the same inputs twice gives two files that differ in every byte, and a reconcile that read
nothing new would rewrite the Secret and restart its workloads. Two ways out: derive the
salts and IVs from the inputs, or keep the file the Secret already holds. Deriving cannot be
done with ``cryptography`` (its encryption builder takes no salt or IV), so kvault would
carry a PBES2/AES and MAC encoder of its own, and swap the random salts and IVs the format
asks for for ones computed from secret inputs. Keeping the file needs nothing but a check,
so a :class:`Keystore` is a :class:`~.values.Binary` value, settled when the Secret is
written: the bytes the Secret holds under its key are kept when they open with the current
password, were made in the current profile and hold exactly the current key and
certificates, with the same friendly names (:func:`kvault.crypto.keystore.holds`);
otherwise a new file is made. So the file changes exactly when its content does: a new
certificate version, a new password (a new version with another value), another profile,
or a Secret someone edited. The check reads the Secret as it is, so it needs no state of its
own (no cache to lose, no annotation to trust) and holds across operator restarts.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509

from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import PKCS12_PROFILES, Pkcs12, Ref
from kvault.controller.vaultsecret.source import Need, Reading
from kvault.controller.vaultsecret.values import Value
from kvault.crypto import keystore as p12
from kvault.errors import ItemDisabled, NotFound

_KEYSTORE, _TRUSTSTORE = "keystore.p12", "truststore.p12"
_PASSWORD_NOTE = (
    "the PKCS#12 keystores of data[{key}] are encrypted with the value of secret {name!r} "
    "(keystores.pkcs12.passwordRef), read as this ServiceAccount"
)


def keystore_keys(secret_key: str) -> tuple[str, str]:
    """The Secret keys of an entry's keystore and truststore: ``keystore.p12`` and
    ``truststore.p12`` for ``tls`` (cert-manager's), else ``S.keystore.p12`` and
    ``S.truststore.p12``."""
    if secret_key == "tls":
        return _KEYSTORE, _TRUSTSTORE
    return f"{secret_key}.{_KEYSTORE}", f"{secret_key}.{_TRUSTSTORE}"


def _field(ref: Ref) -> str:
    return f"data[{ref.key}].keystores.pkcs12"


def password_need(ref: Ref) -> list[Need]:
    """Reading the password: ``SecretGet`` on its secret (none without keystores)."""
    spec = ref.pkcs12
    if spec is None or not spec.password or spec.password_kind != "Secret":
        return []  # a malformed ref is refused by :func:`check_pkcs12`
    note = _PASSWORD_NOTE.format(key=ref.key, name=spec.password)
    return [Need("SecretGet", f"secrets/{spec.password}", note)]


class Keystore:
    """One PKCS#12 file of an entry, settled when the Secret is written (see the module's
    docstring): ``key`` ``None`` makes a truststore of ``certificates``, else a keystore of
    ``key`` with ``certificates`` (leaf first). Its ``repr`` shows no material."""

    __slots__ = ("_certificates", "_field", "_key", "_name", "_password", "_profile")

    def __init__(
        self,
        field: str,
        key: p12.Private | None,
        certificates: Sequence[x509.Certificate],
        password: bytes,
        profile: str,
        name: bytes | None,
    ) -> None:
        self._field = field
        self._key = key
        self._certificates = tuple(certificates)
        self._password = password
        self._profile = profile
        self._name = name

    def __repr__(self) -> str:
        what = "truststore" if self._key is None else "keystore"
        return f"<PKCS#12 {what} of {self._field}, {self._profile}>"

    def _names(self) -> list[bytes | None]:
        if self._key is None:
            return list(p12.trust_names(len(self._certificates)))
        return [self._name] + [None] * (len(self._certificates) - 1)

    def holds(self, data: bytes) -> bool:
        """``data`` is a file of this content, password and profile."""
        return p12.holds(
            data,
            self._password,
            self._profile,
            key=self._key,
            certificates=self._certificates,
            names=self._names(),
        )

    def encode(self) -> bytes:
        """A new file (new random salts) of this content."""
        try:
            if self._key is None:
                return p12.truststore(self._certificates, self._password, self._profile)
            return p12.keystore(
                self._key, self._certificates, self._password, self._profile, self._name
            )
        except (ValueError, TypeError) as exc:  # the type only: nothing of the inputs
            raise Refused(
                "Error",
                f"{self._field}: the PKCS#12 file could not be made ({type(exc).__name__})",
                drop=False,
            ) from None

    def settle(self, current: bytes | None) -> bytes:
        if current is not None and self.holds(current):
            return current
        return self.encode()


async def keystore_parts(
    reading: Reading,
    ref: Ref,
    spec: Pkcs12,
    key: p12.Private,
    chain: Sequence[x509.Certificate],
    ca: x509.Certificate | None,
) -> tuple[dict[str, Value], str]:
    """The keystore (and, with a CA, the truststore) of entry ``ref`` (whose
    ``keystores.pkcs12`` is ``spec``), by Secret key, and the version of the password secret
    read."""
    password, version = await _password(reading, ref, spec)
    keystore_key, truststore_key = keystore_keys(ref.key)
    field = _field(ref)
    parts: dict[str, Value] = {
        keystore_key: Keystore(field, key, chain, password, spec.profile, ref.name.encode() or None)
    }
    if ca is not None:
        parts[truststore_key] = Keystore(field, None, [ca], password, spec.profile, None)
    return parts, version


def check_pkcs12(ref: Ref) -> None:
    """Refuse a ``keystores.pkcs12`` the CRD would have refused (never guess)."""
    spec = ref.pkcs12
    if spec is None:
        return
    if spec.profile not in PKCS12_PROFILES:
        raise Refused(
            "Error",
            f"{_field(ref)}.profile must be one of {', '.join(PKCS12_PROFILES)}, got "
            f"{spec.profile!r}",
            drop=False,
        )
    if spec.password_kind != "Secret" or not spec.password:
        raise Refused(
            "Error",
            f"{_field(ref)}.passwordRef must name a vault secret ({{kind: Secret, name: ...}})",
            drop=False,
        )


async def _password(reading: Reading, ref: Ref, spec: Pkcs12) -> tuple[bytes, str]:
    """The password's bytes (UTF-8 of the secret's value) and the version read."""
    plan = reading.plan
    where = f"{_field(ref)}.passwordRef"
    try:
        secret = await reading.kv.secrets.get(
            plan.vault, spec.password, spec.password_version, caller=reading.caller
        )
    except NotFound:
        shown = (
            f"{spec.password}/{spec.password_version}" if spec.password_version else spec.password
        )
        raise Refused(
            "ItemNotFound",
            f"{where}: secret {shown!r} was not found in vault {plan.vault_ref}",
            drop=False,
        ) from None
    except ItemDisabled:
        raise Refused(
            "ItemNotFound",
            f"{where}: secret {spec.password!r} of vault {plan.vault_ref} is disabled",
            drop=False,
        ) from None
    if not secret.value:
        raise Refused(
            "Error",
            f"{where}: secret {spec.password!r} of vault {plan.vault_ref} is empty; a PKCS#12 "
            "password must not be empty",
            drop=False,
        )
    return secret.value.encode(), secret.properties.version
