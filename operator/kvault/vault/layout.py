"""Where each record lives in storage, and what its ciphertext is bound to.

Row keys use the lower-cased item name (names are case-insensitive); the barrier context
repeats vault id, kind, name and version, so a row copied to another key fails to open.
"""

from __future__ import annotations

from kvault.barrier.context import Context

SYSTEM = "sys"
VAULTS = "sys/vault/"


def vault_row(name: str) -> tuple[str, Context]:
    return VAULTS + name, Context(SYSTEM, "vault", name)


def vault_prefix(vault_id: str) -> str:
    return f"v/{vault_id}/"


def heads(vault_id: str) -> str:
    return f"v/{vault_id}/s/"


def head_row(vault_id: str, lname: str) -> tuple[str, Context]:
    return heads(vault_id) + lname, Context(vault_id, "secret", lname)


def deleted(vault_id: str) -> str:
    return f"v/{vault_id}/ds/"


def deleted_row(vault_id: str, lname: str) -> tuple[str, Context]:
    return deleted(vault_id) + lname, Context(vault_id, "deleted-secret", lname)


def versions(vault_id: str, lname: str) -> str:
    return f"v/{vault_id}/sv/{lname}/"


def version_row(vault_id: str, lname: str, version: str) -> tuple[str, Context]:
    return versions(vault_id, lname) + version, Context(vault_id, "secret-version", lname, version)
