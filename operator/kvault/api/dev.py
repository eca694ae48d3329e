"""What ``kvault server --dev`` stands on: one data directory holding everything it needs.

``hsm.key`` (software HSM root key), ``kvault.db`` and ``audit.log`` (the domain),
``root-token`` (0600), ``tls/ca.pem`` and ``tls/ca-key.pem``. Started again on the same
directory it reopens the same vault, token and CA.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from kvault.api.config import ApiConfig
from kvault.api.tls import CertificateAuthority, ServerTLS
from kvault.errors import NotFound
from kvault.hsm.registry import load
from kvault.identity.model import Principal
from kvault.identity.static import StaticTokens
from kvault.vault.service import Kvault

DEV_VAULT = "dev"
DEV_RETENTION_DAYS = 7
ROOT = Principal("kvault:root", superuser=True)
TOKEN_FILE = "root-token"


@dataclass(frozen=True, slots=True)
class DevSetup:
    config: ApiConfig
    tls: ServerTLS
    token: str


def root_token(data_dir: Path) -> str:
    """The persisted root token, created (0600) on first start."""
    path = data_dir / TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = "kvr." + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, token.encode() + b"\n")
    finally:
        os.close(fd)
    return token


async def open_dev(data_dir: Path) -> DevSetup:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    hsm = load("software", {"key_file": str(data_dir / "hsm.key")})
    kv = await Kvault.open(data_dir, hsm)
    try:
        try:
            await kv.vaults.get(DEV_VAULT)
        except NotFound:
            await kv.vaults.create(DEV_VAULT, retention_days=DEV_RETENTION_DAYS)
        token = root_token(data_dir)
        tls = ServerTLS(CertificateAuthority.load_or_create(data_dir / "tls"), data_dir / "tls")
    except BaseException:
        await kv.close()
        raise
    config = ApiConfig(kv, StaticTokens({token: ROOT}), default_vault=DEV_VAULT)
    return DevSetup(config, tls, token)
