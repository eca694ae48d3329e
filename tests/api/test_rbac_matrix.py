"""Every built-in role x every secrets operation x both scopes: exactly the role's data
actions are allowed; every denial is a 403 ForbiddenByRbac and a line in the audit log."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kvault.api.app import build_app
from kvault.api.config import ApiConfig
from kvault.identity.model import Principal, RoleAssignment
from kvault.identity.rbac import ROLES
from kvault.identity.static import StaticTokens
from kvault.vault.service import Kvault

READ = {"SecretGet", "SecretList", "SecretListVersions", "SecretGetDeleted", "SecretListDeleted"}
METADATA = READ - {"SecretGet"}
ALL = READ | {
    "SecretSet",
    "SecretUpdate",
    "SecretDelete",
    "SecretRecover",
    "SecretPurge",
    "SecretBackup",
    "SecretRestore",
}
#: From the Azure built-in roles table (docs/azure-api.md section 6.1), written out by hand.
EXPECTED = {
    "Key Vault Administrator": ALL,
    "Key Vault Secrets Officer": ALL,
    "Key Vault Secrets User": READ,
    "Key Vault Crypto Officer": set(),
    "Key Vault Crypto User": set(),
    "Key Vault Crypto Service Encryption User": set(),
    "Key Vault Crypto Service Release User": set(),
    "Key Vault Certificates Officer": set(),
    "Key Vault Certificate User": READ,
    "Key Vault Reader": METADATA,
}
#: Operations on the whole vault: an assignment scoped to one item never allows them.
VAULT_LEVEL = {"SecretList", "SecretListDeleted", "SecretRestore"}
#: operation -> (method, path, body); NAME is the operation's own item.
REQUESTS: dict[str, tuple[str, str, Any]] = {
    "SecretSet": ("PUT", "/secrets/{name}", {"value": "new"}),
    "SecretGet": ("GET", "/secrets/{name}/", None),
    "SecretUpdate": ("PATCH", "/secrets/{name}/", {"contentType": "text/plain"}),
    "SecretList": ("GET", "/secrets", None),
    "SecretListVersions": ("GET", "/secrets/{name}/versions", None),
    "SecretDelete": ("DELETE", "/secrets/{name}", None),
    "SecretGetDeleted": ("GET", "/deletedsecrets/{name}", None),
    "SecretListDeleted": ("GET", "/deletedsecrets", None),
    "SecretRecover": ("POST", "/deletedsecrets/{name}/recover", None),
    "SecretPurge": ("DELETE", "/deletedsecrets/{name}", None),
    "SecretBackup": ("POST", "/secrets/{name}/backup", None),
    "SecretRestore": ("POST", "/secrets/restore", "BLOB"),
}
SCOPES = ("vault", "item")


def item(op: str) -> str:
    return op.lower().removeprefix("secret")


@dataclass(frozen=True)
class Case:
    vault: str
    token: str
    principal: str
    blob: str  # a backup of a purged secret, for restore


async def _prepare(kv: Kvault, index: int, role: str, scope: str) -> Case:
    """A vault where one principal holds ``role`` at ``scope`` for each operation's item, and
    every item is in the state its operation needs to succeed."""
    vault, principal = f"m{index}-{scope}", f"user-{index}-{scope}"
    assignments = [
        RoleAssignment(principal, role, "/" if scope == "vault" else f"/secrets/{item(op)}")
        for op in REQUESTS
    ]
    await kv.vaults.create(vault, retention_days=7, role_assignments=assignments)
    s = kv.secrets
    for op in ("SecretGet", "SecretUpdate", "SecretListVersions", "SecretDelete", "SecretBackup"):
        await s.set(vault, item(op), "v")
    for op in ("SecretGetDeleted", "SecretRecover", "SecretPurge"):
        await s.set(vault, item(op), "v")
        await s.delete(vault, item(op))
    await s.set(vault, "restored", "v")
    blob = await s.backup(vault, "restored")
    await s.delete(vault, "restored")
    await s.purge(vault, "restored")
    encoded = base64.urlsafe_b64encode(blob).decode().rstrip("=")
    return Case(vault, f"token-{index}-{scope}", principal, encoded)


@pytest.fixture
async def matrix(domain: Kvault) -> AsyncIterator[tuple[TestClient[Any, Any], dict[str, Case]]]:
    cases = {}
    for i, role in enumerate(ROLES):
        for scope in SCOPES:
            cases[f"{role}|{scope}"] = await _prepare(domain, i, role, scope)
    tokens = StaticTokens({c.token: Principal(c.principal) for c in cases.values()})
    app = build_app(ApiConfig(domain, tokens))
    async with TestClient(TestServer(app)) as client:
        yield client, cases


def _audit_lines(kv: Kvault) -> list[dict[str, Any]]:
    path = kv.core.auditor.path  # type: ignore[attr-defined]
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_roles_by_operation_and_scope(
    matrix: tuple[TestClient[Any, Any], dict[str, Case]], domain: Kvault
) -> None:
    client, cases = matrix
    assert set(EXPECTED) == set(ROLES)
    outcomes: dict[tuple[str, str, str], tuple[int, str | None, str]] = {}
    for key, case in cases.items():
        role, scope = key.split("|")
        for op, (method, path, body) in REQUESTS.items():
            payload = {"value": case.blob} if body == "BLOB" else body
            async with client.request(
                method,
                path.format(name=item(op)) + "?api-version=7.5",
                json=payload,
                headers={
                    "Authorization": f"Bearer {case.token}",
                    "Host": f"{case.vault}.localhost",
                },
            ) as r:
                doc = await r.json() if r.status != 204 else {}
                inner = doc.get("error", {}).get("innererror", {}).get("code")
                outcomes[(role, scope, op)] = (r.status, inner, r.headers["x-ms-request-id"])

    audit = {(a["request_id"], a["operation"]): a for a in _audit_lines(domain)}
    for (role, scope, op), (status, inner, request_id) in outcomes.items():
        allowed = op in EXPECTED[role] and (scope == "vault" or op not in VAULT_LEVEL)
        where = f"{role} at {scope} scope, {op}"
        if allowed:
            assert status in (200, 204), f"{where}: expected success, got {status}"
            assert audit[(request_id, op)]["outcome"] == "ok", where
        else:
            assert (status, inner) == (403, "ForbiddenByRbac"), where
            line = audit[(request_id, op)]
            assert line["outcome"] == "ForbiddenByRbac", where
            assert line["principal"] == cases[f"{role}|{scope}"].principal, where
    assert len(outcomes) == len(ROLES) * len(SCOPES) * len(REQUESTS)
    denied = sum(1 for s, _, _ in outcomes.values() if s == 403)
    assert 0 < denied < len(outcomes)
