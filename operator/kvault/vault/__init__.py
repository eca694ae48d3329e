"""The vault domain: what a key vault does with secrets (Azure Key Vault semantics)."""

from kvault.vault.core import LOCAL, Caller
from kvault.vault.model import (
    DeletedSecret,
    Page,
    RoleAssignment,
    Secret,
    SecretProperties,
    VaultInfo,
)

__all__ = [
    "LOCAL",
    "Caller",
    "DeletedSecret",
    "Page",
    "RoleAssignment",
    "Secret",
    "SecretProperties",
    "VaultInfo",
]
