"""Azure Key Vault's built-in roles and their data actions, and the decision itself."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from kvault.errors import BadParameter, ForbiddenByRbac
from kvault.identity.model import Principal, RoleAssignment

_KV = "Microsoft.KeyVault/vaults"

#: Built-in roles (Azure docs, built-in-roles/security) -> data-action patterns.
ROLE_DATA_ACTIONS: dict[str, tuple[str, ...]] = {
    "Key Vault Administrator": (f"{_KV}/*",),
    "Key Vault Secrets Officer": (f"{_KV}/secrets/*",),
    "Key Vault Secrets User": (
        f"{_KV}/secrets/getSecret/action",
        f"{_KV}/secrets/readMetadata/action",
    ),
    "Key Vault Crypto Officer": (
        f"{_KV}/keys/*",
        f"{_KV}/keyrotationpolicies/*",
        f"{_KV}/rng/action",
    ),
    "Key Vault Crypto User": tuple(
        f"{_KV}/keys/{a}"
        for a in (
            "read",
            "update/action",
            "backup/action",
            "encrypt/action",
            "decrypt/action",
            "wrap/action",
            "unwrap/action",
            "sign/action",
            "verify/action",
        )
    ),
    "Key Vault Crypto Service Encryption User": (
        f"{_KV}/keys/read",
        f"{_KV}/keys/wrap/action",
        f"{_KV}/keys/unwrap/action",
    ),
    "Key Vault Crypto Service Release User": (f"{_KV}/keys/release/action",),
    "Key Vault Certificates Officer": (
        f"{_KV}/certificatecas/*",
        f"{_KV}/certificates/*",
        f"{_KV}/certificatecontacts/write",
    ),
    "Key Vault Certificate User": (
        f"{_KV}/certificates/read",
        f"{_KV}/secrets/getSecret/action",
        f"{_KV}/secrets/readMetadata/action",
        f"{_KV}/keys/read",
    ),
    "Key Vault Reader": (f"{_KV}/*/read", f"{_KV}/secrets/readMetadata/action"),
}
ROLES = tuple(ROLE_DATA_ACTIONS)

#: Per item kind (the title of its operation names): the data action of each operation verb,
#: below ``Microsoft.KeyVault/vaults/`` (Azure's permission model).
KIND_ACTIONS: dict[str, dict[str, str]] = {
    "Secret": {
        "Get": "secrets/getSecret/action",
        "Set": "secrets/setSecret/action",
        "List": "secrets/readMetadata/action",
        "ListVersions": "secrets/readMetadata/action",
        "GetDeleted": "secrets/readMetadata/action",
        "ListDeleted": "secrets/readMetadata/action",
        "Update": "secrets/update/action",
        "Delete": "secrets/delete",
        "Recover": "secrets/recover/action",
        "Purge": "secrets/purge/action",
        "Backup": "secrets/backup/action",
        "Restore": "secrets/restore/action",
    },
    "Key": {
        "Get": "keys/read",
        "Set": "keys/import/action",
        "Create": "keys/create/action",
        "Import": "keys/import/action",
        "List": "keys/read",
        "ListVersions": "keys/read",
        "GetDeleted": "keys/read",
        "ListDeleted": "keys/read",
        "Update": "keys/update/action",
        "Delete": "keys/delete",
        "Recover": "keys/recover/action",
        "Purge": "keys/purge/action",
        "Backup": "keys/backup/action",
        "Restore": "keys/restore/action",
        "Rotate": "keys/rotate/action",
        "Encrypt": "keys/encrypt/action",
        "Decrypt": "keys/decrypt/action",
        "Sign": "keys/sign/action",
        "Verify": "keys/verify/action",
        "WrapKey": "keys/wrap/action",
        "UnwrapKey": "keys/unwrap/action",
        "GetRotationPolicy": "keyrotationpolicies/read",
        "SetRotationPolicy": "keyrotationpolicies/write",
        "GetRandomBytes": "rng/action",
    },
    "Certificate": {
        "Get": "certificates/read",
        "Set": "certificates/import/action",
        "Create": "certificates/create/action",
        "Import": "certificates/import/action",
        "Merge": "certificates/create/action",
        "List": "certificates/read",
        "ListVersions": "certificates/read",
        "GetDeleted": "certificates/read",
        "ListDeleted": "certificates/read",
        "Update": "certificates/update/action",
        "Delete": "certificates/delete",
        "Recover": "certificates/recover/action",
        "Purge": "certificates/purge/action",
        "Backup": "certificates/backup/action",
        "Restore": "certificates/restore/action",
        "GetOperation": "certificates/read",
        "UpdateOperation": "certificates/update/action",
        "DeleteOperation": "certificates/update/action",
        "GetPolicy": "certificates/read",
        "SetPolicy": "certificates/update/action",
        # Azure has one contacts data action: managing them (reading included).
        "GetContacts": "certificatecontacts/write",
        "SetContacts": "certificatecontacts/write",
        "DeleteContacts": "certificatecontacts/write",
        "GetIssuer": "certificatecas/read",
        "ListIssuers": "certificatecas/read",
        "SetIssuer": "certificatecas/write",
        "DeleteIssuer": "certificatecas/delete",
        "Renew": "certificates/create/action",
    },
}

#: Audited operation name (``SecretGet``) -> the data action it needs.
OPERATION_ACTIONS: dict[str, str] = {
    title + verb: f"{_KV}/{action}"
    for title, verbs in KIND_ACTIONS.items()
    for verb, action in verbs.items()
}


#: kvault's own vault-wide operations (no Azure equivalent): the whole-vault backup carries
#: every value and private key out of the vault, its restore writes a whole vault. Only the
#: Administrator's ``Microsoft.KeyVault/vaults/*`` matches these actions.
VAULT_ACTIONS: dict[str, str] = {
    "VaultBackup": f"{_KV}/kvault/vaultBackup/action",
    "VaultRestore": f"{_KV}/kvault/vaultRestore/action",
}


def role_name(role: str) -> str:
    """The canonical role name; ``Secrets User`` is accepted for ``Key Vault Secrets User``."""
    full = role if role.startswith("Key Vault ") else f"Key Vault {role}"
    if full not in ROLE_DATA_ACTIONS:
        raise BadParameter(f"unknown role {role!r}; built-in roles: {', '.join(ROLES)}")
    return full


def data_action(operation: str) -> str:
    if operation in VAULT_ACTIONS:
        return VAULT_ACTIONS[operation]
    return OPERATION_ACTIONS[operation]


@cache
def _pattern(role: str) -> re.Pattern[str]:
    # Azure's '*' matches any run of characters, '/' included.
    alternatives = "|".join(
        ".*".join(re.escape(part) for part in p.split("*")) for p in ROLE_DATA_ACTIONS[role]
    )
    return re.compile(f"(?:{alternatives})")


def role_allows(role: str, action: str) -> bool:
    return _pattern(role).fullmatch(action) is not None


def _covers(scope: str, item: str | None) -> bool:
    """A vault-wide scope covers everything; an item scope only that item (never listings)."""
    if scope in ("", "/"):
        return True
    return item is not None and scope.strip("/").lower() == item.lower()


def authorize(
    principal: Principal,
    assignments: Iterable[RoleAssignment],
    operation: str,
    *,
    vault: str,
    item: str | None = None,
) -> None:
    """Allow ``operation`` (an audited operation name) or raise :class:`ForbiddenByRbac`.

    ``item`` is ``PLURAL/NAME`` (``secrets/db``) for one item, ``None`` for listings.
    """
    if principal.superuser:
        return
    action = data_action(operation)
    for ra in assignments:
        if (
            principal.holds(ra.principal)
            and _covers(ra.scope, item)
            and role_allows(ra.role, action)
        ):
            return
    resource = f"/vaults/{vault}" + (f"/{item}" if item else "")
    raise ForbiddenByRbac(
        "Caller is not authorized to perform action on resource.\r\n"
        "If role assignments were recently changed, please wait several minutes for role "
        f"assignments to become effective.\r\nCaller: name={principal.name}\r\n"
        f"Action: '{action}'\r\nResource: '{resource}'\r\nAssignment: (not found)\r\n"
        "Vault: " + vault + ";"
    )
