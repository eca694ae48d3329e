"""The ``Certificate`` source: a vault certificate with its private key, as the files of a
``kubernetes.io/tls`` Secret.

One ``data[]`` entry ``{secretKey: S, remoteRef: {kind: Certificate, name: N}}`` writes three
keys (:func:`part_keys`): ``S.crt`` (the leaf, then its chain, PEM), ``S.key`` (the private
key, PKCS#8 PEM) and the CA certificate (PEM). With ``S`` = ``tls`` these are ``tls.crt``,
``tls.key`` and ``ca.crt``: the layout of a ``kubernetes.io/tls`` Secret as cert-manager writes
it. Another ``S`` gives ``S.crt``, ``S.key`` and ``S.ca.crt``, so several certificates fit in
one Opaque Secret.

The certificate (leaf and chain) comes from the certificate item; the key from its secret of
the same name and version (PEM, or the base64 PFX, per the policy's content type), so both
are always of one version. Reading that secret is a ``SecretGet`` on ``secrets/<name>``,
authorised beside ``CertificateGet`` (both in Azure's ``Key Vault Certificate User`` role;
with item scopes, assign it on ``/certificates/<name>`` and ``/secrets/<name>``).

The CA certificate is the top of the chain (the root a client trusts); a self-signed
certificate is its own CA; a merged certificate whose chain stops below a self-signed CA
gets no CA key (kvault does not have its CA). A certificate whose key is not exportable (or
lives in an HSM) has no key in its secret and is refused. A missing or disabled certificate
keeps the last projection, as for secrets.

With ``keystores.pkcs12`` the entry also writes PKCS#12 files (``keystore.p12``,
``truststore.p12``), encrypted with a password read from a third item, a vault secret
(:mod:`~kvault.controller.vaultsecret.keystores`).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from kvault.controller.vaultsecret.keystores import check_pkcs12, keystore_parts, password_need
from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import Ref
from kvault.controller.vaultsecret.source import Need, Projected, Reading
from kvault.controller.vaultsecret.values import Value
from kvault.crypto.pem import cert_pem, private_pem
from kvault.crypto.x509build import same_key
from kvault.errors import ItemDisabled, NotFound
from kvault.vault.certificates.schedules import renewal_at
from kvault.vault.model import Certificate

#: The ``secretKey`` whose parts are the ``kubernetes.io/tls`` keys.
TLS = "tls"
_PRIVATE_BLOCK = re.compile(
    r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----.*?-----END (?:RSA |EC )?PRIVATE KEY-----",
    re.DOTALL,
)
_KEY_NOTE = (
    "a certificate's private key is read from its secret of the same name ('Key Vault "
    "Certificate User' grants both; with item scopes assign it on /certificates/{name} and "
    "/secrets/{name})"
)
Private = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def part_keys(secret_key: str) -> tuple[str, str, str]:
    """The Secret keys of one ``Certificate`` entry: certificate chain, private key, CA."""
    ca = "ca.crt" if secret_key == TLS else f"{secret_key}.ca.crt"
    return f"{secret_key}.crt", f"{secret_key}.key", ca


def _rfc3339(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class CertificateSource:
    kind = "Certificate"
    get_operation = "CertificateGet"
    list_operation = "CertificateList"

    def scope(self, name: str) -> str:
        return f"certificates/{name}"

    def also_needs(self, ref: Ref) -> Sequence[Need]:
        """The secret holding the key; and the keystores' password, when asked for."""
        note = _KEY_NOTE.format(name=ref.name)
        return [Need("SecretGet", f"secrets/{ref.name}", note), *password_need(ref)]

    async def find(self, reading: Reading, selector: Mapping[str, Any]) -> list[Ref]:
        """``dataFrom`` selects secrets only (:data:`~.sources.DATA_FROM_KIND`)."""
        return []

    async def get(self, reading: Reading, ref: Ref) -> Projected:
        plan = reading.plan
        where = f"of vault {plan.vault_ref}"
        check_pkcs12(ref)  # the CRD refuses it first; never guess
        try:
            cert = await reading.kv.certificates.get(
                plan.vault, ref.name, ref.version, caller=reading.caller
            )
        except NotFound:
            shown = f"{ref.name}/{ref.version}" if ref.version else ref.name
            raise Refused(
                "ItemNotFound",
                f"certificate {shown!r} was not found in vault {plan.vault_ref}",
                drop=False,
            ) from None
        if not cert.properties.enabled:  # readable (it is public), but not to be served
            raise Refused(
                "ItemNotFound", f"certificate {ref.name!r} {where} is disabled", drop=False
            )
        version = cert.properties.version
        try:  # the same version's secret: key and certificate always match
            secret = await reading.kv.secrets.get(
                plan.vault, ref.name, version, caller=reading.caller
            )
        except (NotFound, ItemDisabled):
            raise Refused(
                "ItemNotFound",
                f"the secret of certificate {ref.name!r} {where} (version {version}) is "
                "missing or disabled",
                drop=False,
            ) from None
        chain = [x509.load_der_x509_certificate(d) for d in (cert.cer, *cert.chain)]
        key = _private_key(secret.value, ref.name, where)
        if not same_key(key.public_key(), chain[0].public_key()):
            raise Refused(  # cannot happen for a version kvault made; never project a mismatch
                "Error",
                f"certificate {ref.name!r} {where}: its secret's key does not match the "
                "certificate",
                drop=False,
            )
        crt_key, key_key, ca_key = part_keys(ref.key)
        parts: dict[str, Value] = {
            crt_key: b"".join(cert_pem(c) for c in chain).decode(),
            key_key: private_pem(key).decode(),
        }
        ca = _authority(chain)
        if ca is not None:
            parts[ca_key] = cert_pem(ca).decode()
        facts = _facts(ref, cert, chain[0])
        if ref.pkcs12 is not None:
            stores, password_version = await keystore_parts(
                reading, ref, ref.pkcs12, key, chain, ca
            )
            parts.update(stores)
            facts["passwordVersion"] = password_version
        return Projected("", version, parts, facts)


def _private_key(value: str, name: str, where: str) -> Private:
    """The private key in a certificate's secret: the PEM bundle's key, or the PFX's."""
    key: object = None
    text = value.lstrip()
    if text.startswith("-----"):
        block = _PRIVATE_BLOCK.search(text)
        if block is not None:
            key = serialization.load_pem_private_key(block.group(0).encode(), password=None)
    else:
        try:
            data = base64.b64decode(text, validate=True)
            key = pkcs12.load_key_and_certificates(data, b"")[0]
        except (binascii.Error, ValueError):
            raise Refused(
                "Error",
                f"certificate {name!r} {where}: its secret is neither PEM nor a base64 PFX",
                drop=False,
            ) from None
    if key is None:
        raise Refused(
            "Error",
            f"certificate {name!r} {where} has no exportable private key (its policy has "
            "key_props.exportable false, or its key lives in an HSM): it cannot be projected "
            "with tls.key; create it with an exportable key to project it",
            drop=False,
        )
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise Refused(
            "Error", f"certificate {name!r} {where}: its key is not RSA or EC", drop=False
        )
    return key


def _authority(chain: list[x509.Certificate]) -> x509.Certificate | None:
    """The top of the chain when it is self-signed (a root, or a self-signed leaf)."""
    top = chain[-1]
    return top if top.issuer == top.subject else None


def _facts(ref: Ref, cert: Certificate, leaf: x509.Certificate) -> dict[str, Any]:
    """Status of one certificate entry: names, serial and times, never material."""
    props = cert.properties
    facts: dict[str, Any] = {
        "secretKey": ref.key,
        "name": props.name,
        "version": props.version,
        "serialNumber": format(leaf.serial_number, "X"),
        "notAfter": _rfc3339(int(leaf.not_valid_after_utc.timestamp())),
    }
    nbf, exp = props.not_before, props.expires
    # ``policy`` comes with the latest version only: a pinned version is never renewed.
    if cert.policy is not None and props.enabled and nbf is not None and exp is not None:
        at = renewal_at(cert.policy, nbf, exp)
        if at is not None:
            facts["renewsAt"] = _rfc3339(at)
    return facts
