"""``Vault`` resources: provision (or recover) the domain vault ``V.N``, keep its role
assignments in step with the spec, publish a Service and kvault's CA, report status."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kvault.controller.conditions import condition
from kvault.controller.settings import (
    API_VERSION,
    CA_CONFIGMAP,
    FIELD_MANAGER,
    MANAGED_BY,
    Options,
)
from kvault.errors import BadParameter, KvaultError, NotFound
from kvault.identity.model import RoleAssignment
from kvault.kube import objects
from kvault.kube.client import KubeClient
from kvault.kube.resources import CONFIGMAPS, SERVICES
from kvault.vault import layout
from kvault.vault.core import Caller
from kvault.vault.model import VaultInfo
from kvault.vault.service import Kvault

log = logging.getLogger(__name__)
OPERATOR = Caller("kvault:operator")


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


@dataclass(frozen=True, slots=True)
class Provisioned:
    info: VaultInfo
    action: str  # "created", "recovered", "updated", "unchanged"


async def provision(kv: Kvault, name: str, spec: Mapping[str, Any], ns: str) -> Provisioned:
    """Make the domain vault match the spec (idempotent; safe to repeat after a crash)."""
    roles = assignments(spec, ns)
    retention = int(spec.get("softDeleteRetentionInDays", 90))
    purge_protection = bool(spec.get("purgeProtection", False))
    entry = await kv.core.vault_row(name)
    action = "unchanged"
    if entry is None:
        info = await kv.vaults.create(
            name,
            sku=str(spec.get("sku", "standard")),
            retention_days=retention,
            purge_protection=purge_protection,
            role_assignments=roles,
            caller=OPERATOR,
        )
        return Provisioned(info, "created")
    if entry[1].deleted_date is not None:
        await kv.vaults.recover(name, caller=OPERATOR)
        action = "recovered"
    current = await kv.core.active_vault(name)
    changed = tuple(roles) != tuple(
        RoleAssignment(r.principal, r.role, r.scope) for r in current.role_assignments
    ) or (purge_protection and not current.purge_protection)
    if changed:
        current = await kv.vaults.update(
            name,
            role_assignments=roles,
            purge_protection=True if purge_protection else None,
            caller=OPERATOR,
        )
        action = "updated" if action == "unchanged" else action
    return Provisioned(current, action)


async def item_counts(kv: Kvault, info: VaultInfo) -> dict[str, int]:
    """Counted from row keys alone: nothing is decrypted."""
    secrets = await kv.storage.list(layout.heads(info.id))
    deleted = await kv.storage.list(layout.deleted(info.id))
    return {"secrets": len(secrets), "deletedSecrets": len(deleted)}


async def publish(kube: KubeClient, body: Mapping[str, Any], options: Options) -> None:
    """A Service named like the Vault (its URL's host) and the CA for clients to trust."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {MANAGED_BY: FIELD_MANAGER, "kvault.io/vault": name},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "Vault",
                    "name": name,
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            **(
                {"type": "ExternalName", "externalName": options.service_target}
                if options.service_target
                else {"selector": dict(options.service_selector)}
            ),
            "ports": [
                {"name": "https", "port": 443, "targetPort": options.data_port, "protocol": "TCP"}
            ],
        },
    }
    await objects.apply(kube, SERVICES, service, field_manager=FIELD_MANAGER)
    if options.ca_pem:
        config_map = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CA_CONFIGMAP,
                "namespace": ns,
                "labels": {MANAGED_BY: FIELD_MANAGER},
            },
            "data": {"ca.crt": options.ca_pem},
        }
        await objects.apply(kube, CONFIGMAPS, config_map, field_manager=FIELD_MANAGER)


def ready_status(
    body: Mapping[str, Any], ok: bool, reason: str, message: str, **extra: Any
) -> dict[str, Any]:
    meta, status = body["metadata"], body.get("status") or {}
    generation = meta.get("generation")
    return {
        "conditions": [
            condition(status.get("conditions"), "Ready", ok, reason, message, generation)
        ],
        "observedGeneration": generation,
        **extra,
    }


async def reconcile(
    kv: Kvault, kube: KubeClient, body: Mapping[str, Any], options: Options
) -> tuple[dict[str, Any], str]:
    """Provision and publish; returns the status to write and what was done."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    vault = domain_name(name, ns)
    try:
        done = await provision(kv, vault, body.get("spec") or {}, ns)
    except (BadParameter, NotFound) as exc:
        return ready_status(body, False, "InvalidSpec", str(exc)), "invalid"
    await publish(kube, body, options)
    counts = await item_counts(kv, done.info)
    status = ready_status(
        body,
        True,
        "Provisioned",
        f"vault {vault} is ready ({len(done.info.role_assignments)} role assignments)",
        vaultUri=vault_uri(name, ns),
        itemCounts=counts,
        caConfigMap=CA_CONFIGMAP if options.ca_pem else None,
    )
    return status, done.action


async def remove(kv: Kvault, body: Mapping[str, Any]) -> str:
    """Soft-delete (recoverable within retention), or also purge if the spec allows it."""
    meta = body["metadata"]
    vault = domain_name(meta["name"], meta["namespace"])
    spec = body.get("spec") or {}
    with contextlib.suppress(NotFound):
        await kv.vaults.delete(vault, caller=OPERATOR)
    if spec.get("allowPurgeOnDelete"):
        try:
            await kv.vaults.purge(vault, caller=OPERATOR)
        except NotFound:
            return "deleted"
        except KvaultError as exc:  # purge protection: stays soft-deleted
            log.warning("vault %s not purged: %s", vault, exc)
            return "deleted"
        return "purged"
    return "deleted"
