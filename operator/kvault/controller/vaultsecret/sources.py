"""The sources a VaultSecret can read from, by ``remoteRef.kind``."""

from __future__ import annotations

from collections.abc import Mapping

from kvault.controller.vaultsecret.certificates import CertificateSource
from kvault.controller.vaultsecret.keys import KeySource
from kvault.controller.vaultsecret.secrets import SecretSource
from kvault.controller.vaultsecret.source import Source

#: ``dataFrom`` selects items of this kind.
DATA_FROM_KIND = "Secret"
SOURCES: Mapping[str, Source] = {
    s.kind: s for s in (SecretSource(), KeySource(), CertificateSource())
}
