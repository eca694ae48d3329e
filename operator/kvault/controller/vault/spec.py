"""A ``Vault``'s names and its spec's role assignments, as the domain knows them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kvault.errors import BadParameter
from kvault.identity.model import RoleAssignment


def domain_name(name: str, namespace: str) -> str:
    """The domain vault behind ``Vault`` ``name`` in ``namespace``."""
    return f"{name}.{namespace}"


def vault_uri(name: str, namespace: str) -> str:
    return f"https://{name}.{namespace}.svc"


def principal_of(spec: Mapping[str, Any], namespace: str) -> str:
    """``serviceAccount`` -> ``ns/name`` (default: the Vault's namespace), user, group."""
    sa = spec.get("serviceAccount")
    if isinstance(sa, Mapping) and sa.get("name"):
        return f"{sa.get('namespace') or namespace}/{sa['name']}"
    for kind in ("user", "group"):
        if isinstance(spec.get(kind), str) and spec[kind]:
            return str(spec[kind])
    raise BadParameter("a role assignment's principal needs serviceAccount, user or group")


def assignments(spec: Mapping[str, Any], namespace: str) -> list[RoleAssignment]:
    out = []
    for ra in spec.get("roleAssignments") or ():
        out.append(
            RoleAssignment(
                principal_of(ra.get("principal") or {}, namespace),
                str(ra.get("role", "")),
                str(ra.get("scope") or "/"),
            )
        )
    return out
