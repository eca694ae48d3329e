"""Making a certificate version's parts: the key (generated or imported where the policy
says), the X.509 certificate (self-signed, signed by a kvault CA certificate of the vault,
or a CSR for an external CA) and the secret's bundle (PFX or PEM with the key when it is
exportable). Signing always goes through the key's material, so a premium vault's HSM
keys sign inside the HSM."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from cryptography import x509

from kvault.crypto import bundles, pkcs12
from kvault.crypto import keys as jose
from kvault.crypto import x509build as xb
from kvault.errors import BadParameter
from kvault.vault.certificates.policy import CertificatePolicy
from kvault.vault.keys.kind import KeyValue
from kvault.vault.keys.material import Material

T = TypeVar("T")
#: Real Key Vault back-dates ``nbf`` by ten minutes (clock skew between parties); never by
#: more than a hundredth of the validity, so a dev certificate of seconds is not born due for
#: renewal (a lifetime percentage counts from ``nbf``).
BACKDATE = 600


def signer(material: Material, value: KeyValue) -> Callable[[bytes], Awaitable[bytes]]:
    """Signs a digest with ``value`` wherever it lives (RS256, or ES* by curve)."""
    try:
        alg = xb.signing_alg(public_key(value))
    except (xb.CertError, jose.JoseError):
        raise BadParameter("a certificate's key must be an RSA or EC key") from None

    async def sign(digest: bytes) -> bytes:
        return await material.sign(value, alg, digest)

    return sign


def certs_errors(run: Callable[[], T]) -> T:
    try:
        return run()
    except (xb.CertError, jose.JoseError) as exc:
        raise BadParameter(str(exc)) from None


def spec(policy: CertificatePolicy, now: int) -> xb.CertSpec:
    """The X.509 content the policy asks for, valid from ``now`` (back-dated)."""
    x = policy.x509
    sans = x.sans
    validity = policy.validity_seconds()
    backdate = min(BACKDATE, validity // 100)
    start = datetime.fromtimestamp(now - backdate, UTC)
    names = certs_errors(
        lambda: xb.Names(
            dns=tuple(sans.dns_names),
            emails=tuple(sans.emails),
            upns=tuple(sans.upns),
            uris=tuple(sans.uris),
            ips=tuple(sans.ip_addresses),
        )
    )
    subject = certs_errors(lambda: xb.parse_subject(x.subject)) if x.subject else x509.Name([])
    return xb.CertSpec(
        subject=subject,
        names=names,
        ekus=tuple(x.ekus),
        key_usage=tuple(x.key_usage),
        not_before=start,
        not_after=start + timedelta(seconds=backdate + validity),
        ca=x.ca,
    )


def public_key(value: KeyValue) -> jose.Public:
    return jose.public_from_jwk(value.public)


def secret_value(
    material: Material,
    policy: CertificatePolicy,
    key: KeyValue,
    chain: list[x509.Certificate],
) -> str:
    """The secret's value: PFX (base64) or PEM, with the private key when it is exportable
    and not held by an HSM."""
    private = material.exportable(key) if policy.key.exportable else None
    if policy.secret_content_type == "application/x-pem-file":
        return bundles.pem_bundle(private, chain)
    return base64.b64encode(pkcs12.pfx(private, chain)).decode()
