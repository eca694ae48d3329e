"""One VaultSecret reconcile: act as its ServiceAccount, read what that identity may read,
render, write the Secret (server-side apply, skipped when unchanged), restart workloads.

Denials and errors write no Secret and keep none of ours (Owner policy). Nothing here puts a
value into a log line, an Event, the status, an annotation or an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kvault.audit.event import AuditEvent
from kvault.controller import metrics
from kvault.controller.conditions import condition, now_iso, reason_of
from kvault.controller.render import TemplateError, content_hash, render
from kvault.controller.settings import (
    ANN_HASH,
    ANN_OWNER,
    ANN_RESTARTED,
    API_VERSION,
    DEFAULT_REFRESH,
    FIELD_MANAGER,
    MANAGED_BY,
    PROJECTION_FINALIZER,
    VAULTSECRETS,
    Options,
)
from kvault.controller.vaults import domain_name
from kvault.errors import ForbiddenByRbac, ItemDisabled, KvaultError, NotFound
from kvault.identity.model import Principal, service_account
from kvault.identity.rbac import authorize
from kvault.kube import objects
from kvault.kube.client import KubeClient
from kvault.kube.errors import ApiError
from kvault.kube.events import EventPoster
from kvault.kube.resources import SECRETS, WORKLOADS
from kvault.vault.core import Caller
from kvault.vault.model import VaultInfo
from kvault.vault.service import Kvault

log = logging.getLogger(__name__)
PLURAL = "vaultsecrets"
SA_CACHE_SECONDS = 30.0
RESTART_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


class Refused(Exception):
    """The projection cannot happen; ``reason`` is the condition reason. No values inside."""

    def __init__(self, reason: str, message: str, *, drop: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.drop = drop  # remove a Secret we wrote earlier


@dataclass(slots=True)
class Plan:
    """The parsed spec of one VaultSecret."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    sa: str
    vault: str
    vault_ref: str  # "name" or "ns/name" as the user wrote it
    items: list[tuple[str, str, str]]  # (secretKey, remote name, version)
    kinds: set[str]
    data_from: list[Mapping[str, Any]]
    target: str
    type: str
    labels: dict[str, str]
    annotations: dict[str, str]
    templates: dict[str, str] | None
    creation: str
    deletion: str
    restarts: list[tuple[str, str]]
    refresh: float


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | None, default: float) -> float:
    """ESO/Go durations: ``1h``, ``30m``, ``1h30m``, ``45s``, ``0`` (no periodic refresh)."""
    if not text:
        return default
    text = str(text).strip()
    if text == "0":
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return default
    return sum(float(n) * _UNITS[u] for n, u in parts)


def plan_of(body: Mapping[str, Any], default_refresh: float) -> Plan:
    meta, spec = body["metadata"], body.get("spec") or {}
    ns = meta["namespace"]
    ref = spec.get("vaultRef") or {}
    vns = ref.get("namespace") or ns
    target = spec.get("target") or {}
    tpl = (target.get("template") or {}).get("data")
    items = [
        (
            str(d.get("secretKey")),
            str((d.get("remoteRef") or {}).get("name")),
            str((d.get("remoteRef") or {}).get("version") or ""),
        )
        for d in spec.get("data") or ()
    ]
    kinds = {
        str((d.get("remoteRef") or {}).get("kind") or "Secret") for d in spec.get("data") or ()
    }
    return Plan(
        namespace=ns,
        kinds=kinds,
        name=meta["name"],
        uid=str(meta.get("uid", "")),
        generation=meta.get("generation"),
        sa=str(spec.get("serviceAccountName") or "default"),
        vault=domain_name(str(ref.get("name", "")), vns),
        vault_ref=f"{vns}/{ref.get('name')}" if vns != ns else str(ref.get("name")),
        items=items,
        data_from=list(spec.get("dataFrom") or ()),
        target=str(target.get("name") or meta["name"]),
        type=str(target.get("type") or "Opaque"),
        labels={str(k): str(v) for k, v in (target.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (target.get("annotations") or {}).items()},
        templates={str(k): str(v) for k, v in tpl.items()} if tpl else None,
        creation=str(target.get("creationPolicy") or "Owner"),
        deletion=str(target.get("deletionPolicy") or "Delete"),
        restarts=[
            (str(r.get("kind")), str(r.get("name"))) for r in spec.get("rolloutRestart") or ()
        ],
        refresh=parse_duration(spec.get("refreshInterval"), default_refresh),
    )


def interesting_items(body: Mapping[str, Any]) -> tuple[str, set[str], bool]:
    """(vault, item names lower-cased, whether it lists the vault) for the refresh index."""
    plan = plan_of(body, 0)
    return plan.vault, {n.lower() for _, n, _ in plan.items}, bool(plan.data_from)


def principal_for(ns: str, sa: str) -> Principal:
    """The identity a pod of ``sa`` would present (TokenReview's user and groups)."""
    return Principal(
        service_account(ns, sa),
        groups=("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"),
    )


@dataclass(slots=True)
class Result:
    status: dict[str, Any]
    reason: str
    wrote: bool = False
    content_hash: str = ""
    fingerprint: str = ""  # digest of the written data (kept in memory for drift checks)
    keys: tuple[str, ...] = ()
    restarted: list[str] = field(default_factory=list)


class Projector:
    def __init__(self, kv: Kvault, kube: KubeClient, events: EventPoster, options: Options) -> None:
        self.kv = kv
        self.kube = kube
        self.events = events
        self.options = options
        self._sa_seen: dict[tuple[str, str], float] = {}

    # -- identity and reads -----------------------------------------------------------------

    async def _check_sa(self, plan: Plan) -> None:
        key = (plan.namespace, plan.sa)
        seen = self._sa_seen.get(key)
        if seen is not None and time.monotonic() - seen < SA_CACHE_SECONDS:
            return
        found = await objects.service_account(self.kube, plan.namespace, plan.sa)
        if found is None:
            self._sa_seen.pop(key, None)
            raise Refused(
                "ServiceAccountNotFound",
                f"ServiceAccount {plan.namespace}/{plan.sa} does not exist; the VaultSecret "
                "acts as that identity",
            )
        self._sa_seen[key] = time.monotonic()

    def _authorize(
        self, plan: Plan, who: Principal, info: VaultInfo, operation: str, item: str | None
    ) -> None:
        try:
            authorize(who, info.role_assignments, operation, vault=plan.vault, item=item)
        except ForbiddenByRbac:
            self.kv.core.auditor.record(
                AuditEvent(
                    who.name,
                    plan.vault,
                    operation,
                    "ForbiddenByRbac",
                    (item or "").removeprefix("secrets/"),
                    "",
                    f"vaultsecret/{plan.namespace}/{plan.name}",
                )
            )
            metrics.DENIALS.inc()
            what = f"secret {item.removeprefix('secrets/')!r}" if item else "the list of secrets"
            need = "getSecret" if operation == "SecretGet" else "readMetadata at vault scope"
            raise Refused(
                "Forbidden",
                f"ServiceAccount {plan.namespace}/{plan.sa} may not read {what} of vault "
                f"{plan.vault_ref} ({plan.vault}): no role assignment grants {need} "
                "(e.g. 'Key Vault Secrets User') to this ServiceAccount",
            ) from None

    async def _read(self, plan: Plan) -> tuple[dict[str, str], dict[str, str]]:
        """Projected values by secretKey, and the versions read."""
        try:
            info = await self.kv.core.active_vault(plan.vault)
        except NotFound:
            raise Refused(
                "VaultNotFound", f"vault {plan.vault_ref} ({plan.vault}) was not found", drop=False
            ) from None
        unsupported = sorted(plan.kinds - {"Secret"})
        if unsupported:
            raise Refused(
                "Error",
                f"remoteRef.kind {', '.join(unsupported)} is not supported yet (only Secret)",
                drop=False,
            )
        who = principal_for(plan.namespace, plan.sa)
        caller = Caller(who.name, f"vaultsecret/{plan.namespace}/{plan.name}")
        wanted: list[tuple[str, str, str]] = list(plan.items)
        for source in plan.data_from:
            self._authorize(plan, who, info, "SecretList", None)
            names = await self._list(plan.vault, caller)
            if "prefix" in source:
                prefix = str(source["prefix"]).lower()
                wanted += [(n, n, "") for n, _ in names if n.lower().startswith(prefix)]
            elif "tag" in source:
                tag = source["tag"] or {}
                tname, tvalue = str(tag.get("name")), str(tag.get("value"))
                wanted += [(n, n, "") for n, tags in names if tags.get(tname) == tvalue]
        for _, remote, _ in wanted:
            self._authorize(plan, who, info, "SecretGet", f"secrets/{remote}")
        values: dict[str, str] = {}
        versions: dict[str, str] = {}
        for key, remote, version in wanted:
            try:
                secret = await self.kv.secrets.get(plan.vault, remote, version, caller=caller)
            # A missing or disabled item keeps the last projection (as ESO's default
            # Retain does): pods keep working while someone fixes the vault. Only a denial
            # or a missing identity takes the Secret away.
            except NotFound:
                shown = f"{remote}/{version}" if version else remote
                raise Refused(
                    "ItemNotFound",
                    f"secret {shown!r} was not found in vault {plan.vault_ref}",
                    drop=False,
                ) from None
            except ItemDisabled:
                raise Refused(
                    "ItemNotFound",
                    f"secret {remote!r} of vault {plan.vault_ref} is disabled",
                    drop=False,
                ) from None
            values[key] = secret.value
            versions[key] = secret.properties.version
        return values, versions

    async def _list(self, vault: str, caller: Caller) -> list[tuple[str, Mapping[str, str]]]:
        out: list[tuple[str, Mapping[str, str]]] = []
        token: str | None = None
        while True:
            page = await self.kv.secrets.list(vault, token=token, caller=caller)
            out += [(p.name, p.tags) for p in page.items if p.enabled]
            token = page.next_token
            if token is None:
                return out

    # -- the Secret ---------------------------------------------------------------------------

    def _ours(self, secret: Mapping[str, Any] | None, plan: Plan) -> bool:
        if secret is None:
            return False
        meta = secret.get("metadata", {})
        return (meta.get("annotations") or {}).get(ANN_OWNER) == plan.name and (
            meta.get("labels") or {}
        ).get(MANAGED_BY) == FIELD_MANAGER

    def _owned(self, secret: Mapping[str, Any] | None, plan: Plan) -> bool:
        if secret is None:
            return False
        refs = secret.get("metadata", {}).get("ownerReferences") or ()
        return any(r.get("uid") == plan.uid for r in refs)

    async def _write(
        self, plan: Plan, data: dict[str, str], digest: str, existing: Mapping[str, Any] | None
    ) -> bool:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        if existing is not None:
            if plan.creation != "Merge" and not self._ours(existing, plan):
                raise Refused(
                    "Error",
                    f"Secret {plan.namespace}/{plan.target} exists and is not managed by this "
                    "VaultSecret; use creationPolicy Merge to add keys to it",
                    drop=False,
                )
            have = existing.get("data") or {}
            annotations = existing.get("metadata", {}).get("annotations") or {}
            if annotations.get(ANN_HASH) == digest and all(
                have.get(k) == v for k, v in encoded.items()
            ):
                return False
        elif plan.creation == "Merge":
            raise Refused(
                "Error",
                f"Secret {plan.namespace}/{plan.target} does not exist; creationPolicy Merge "
                "only adds keys to an existing Secret",
                drop=False,
            )
        meta: dict[str, Any] = {
            "name": plan.target,
            "namespace": plan.namespace,
            "labels": {**plan.labels, MANAGED_BY: FIELD_MANAGER},
            "annotations": {**plan.annotations, ANN_HASH: digest, ANN_OWNER: plan.name},
        }
        if plan.creation == "Owner":
            meta["ownerReferences"] = [
                {
                    "apiVersion": API_VERSION,
                    "kind": "VaultSecret",
                    "name": plan.name,
                    "uid": plan.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        manifest: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta,
            "data": encoded,
        }
        if plan.creation != "Merge":
            manifest["type"] = plan.type
        await objects.apply(self.kube, SECRETS, manifest, field_manager=FIELD_MANAGER)
        metrics.WRITES.inc()
        return True

    async def _drop(self, plan: Plan) -> bool:
        """Remove a Secret we own, so a refused identity keeps nothing it projected before."""
        existing = await objects.get_or_none(self.kube, SECRETS, plan.namespace, plan.target)
        if self._ours(existing, plan) and self._owned(existing, plan):
            assert existing is not None
            uid = existing["metadata"]["uid"]
            return await objects.delete_if_exists(
                self.kube, SECRETS, plan.namespace, plan.target, uid
            )
        return False

    async def _restart(self, plan: Plan, digest: str) -> list[str]:
        """Like ``kubectl rollout restart``, once per content hash (the hash goes on the pod
        template too, so a crash and retry never restarts twice for one change)."""
        done = []
        key = f"kvault.io/hash-{plan.name}"[:63] if len(plan.name) < 48 else "kvault.io/hash"
        for kind, name in plan.restarts:
            res = WORKLOADS.get(kind)
            if res is None:
                continue
            workload = await objects.get_or_none(self.kube, res, plan.namespace, name)
            if workload is None:
                continue
            tmeta = workload.get("spec", {}).get("template", {}).get("metadata") or {}
            if (tmeta.get("annotations") or {}).get(key) == digest:
                continue
            patch = {
                "spec": {
                    "template": {
                        "metadata": {"annotations": {ANN_RESTARTED: now_iso(), key: digest}}
                    }
                }
            }
            await objects.merge_patch(self.kube, res, plan.namespace, name, patch)
            metrics.RESTARTS.inc()
            done.append(f"{kind}/{name}")
        return done

    # -- the reconcile ------------------------------------------------------------------------

    def _status(
        self,
        body: Mapping[str, Any],
        plan: Plan,
        ok: bool,
        reason: str,
        message: str,
        **extra: Any,
    ) -> dict[str, Any]:
        old = (body.get("status") or {}).get("conditions")
        return {
            "conditions": [
                condition(old, "Ready", ok, reason, message, plan.generation),
                condition(old, "Synced", ok, reason, message, plan.generation),
            ],
            "observedGeneration": plan.generation,
            **extra,
        }

    async def sync(self, body: Mapping[str, Any]) -> Result:
        """Project once; returns the status (the caller writes it)."""
        plan = plan_of(body, DEFAULT_REFRESH)
        previous = body.get("status") or {}
        try:
            await self._check_sa(plan)
            values, versions = await self._read(plan)
            try:
                data = render(values, plan.templates)
            except TemplateError as exc:
                raise Refused("Error", str(exc), drop=False) from None
            digest = content_hash(plan.uid, data)
            existing = await objects.get_or_none(self.kube, SECRETS, plan.namespace, plan.target)
            wrote = await self._write(plan, data, digest, existing)
            if self.options.fault == "exit-after-secret-write" and wrote:
                os.kill(os.getpid(), signal.SIGKILL)  # tests: a crash between two writes
            restarted: list[str] = []
            prev_hash = previous.get("contentHash")
            if prev_hash and prev_hash != digest:
                restarted = await self._restart(plan, digest)
        except Refused as refused:
            if refused.drop:
                await self._drop(plan)
            return self._refused(body, plan, refused)
        except KvaultError as exc:
            text = str(exc) if isinstance(exc, ApiError) else type(exc).__name__
            failed = Refused("Error", f"projection failed: {text}", drop=False)
            return self._refused(body, plan, failed, retry=True)
        message = f"{len(data)} keys projected into Secret {plan.target}"
        status = self._status(
            body,
            plan,
            True,
            "Synced",
            message,
            syncedVersions=versions,
            contentHash=digest,
            lastSyncTime=now_iso(),
            secretName=plan.target,
        )
        if wrote:
            self.events.post(body, "Normal", "Synced", message)
        if restarted:
            self.events.post(body, "Normal", "RolloutRestart", "restarted " + ", ".join(restarted))
        metrics.SYNCS.labels("Synced").inc()
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        chosen = {k: encoded[k] for k in sorted(encoded)}
        digest_of_values = hashlib.sha256(json.dumps(chosen).encode()).hexdigest()
        return Result(status, "Synced", wrote, digest, digest_of_values, tuple(chosen), restarted)

    def _refused(
        self, body: Mapping[str, Any], plan: Plan, refused: Refused, *, retry: bool = False
    ) -> Result:
        previous = body.get("status") or {}
        if reason_of(previous.get("conditions"), "Ready") != refused.reason:
            kind = "Warning"
            self.events.post(body, kind, refused.reason, refused.message)
        log.info(
            "VaultSecret %s/%s not synced: %s",
            plan.namespace,
            plan.name,
            refused.reason,
            extra={"object": f"{plan.namespace}/{plan.name}"},
        )
        metrics.SYNCS.labels(refused.reason).inc()
        status = self._status(body, plan, False, refused.reason, refused.message)
        if refused.drop:
            status.update(syncedVersions=None, contentHash=None, secretName=None)
        return Result(status, refused.reason if not retry else "Retry")

    async def finalize(self, body: Mapping[str, Any]) -> None:
        """deletionPolicy: Delete removes our Secret (or our keys, for Merge); Retain keeps it
        and lets go of the owner reference so garbage collection keeps it too."""
        plan = plan_of(body, DEFAULT_REFRESH)
        existing = await objects.get_or_none(self.kube, SECRETS, plan.namespace, plan.target)
        if existing is not None and (self._ours(existing, plan) or plan.creation == "Merge"):
            if plan.deletion == "Retain":
                await self._release(plan)
                self.events.post(body, "Normal", "Retained", f"Secret {plan.target} kept")
            elif plan.creation == "Merge":
                await self._release(plan, keep_data=False)
                self.events.post(body, "Normal", "Deleted", f"keys removed from {plan.target}")
            else:
                uid = existing["metadata"]["uid"]
                await objects.delete_if_exists(self.kube, SECRETS, plan.namespace, plan.target, uid)
                self.events.post(body, "Normal", "Deleted", f"Secret {plan.target} deleted")
        await objects.remove_finalizer(self.kube, VAULTSECRETS, body, PROJECTION_FINALIZER)

    async def _release(self, plan: Plan, *, keep_data: bool = True) -> None:
        """Give up our fields: with ``keep_data`` the data stays as the Secret's own (we
        re-apply without owner reference first, then a bare apply releases ownership)."""
        secret = await objects.get_or_none(self.kube, SECRETS, plan.namespace, plan.target)
        if secret is None:
            return
        if keep_data:
            # Hand the data to a separate manager so that releasing ours keeps it.
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": plan.target, "namespace": plan.namespace},
                "data": secret.get("data") or {},
            }
            await objects.apply(self.kube, SECRETS, body, field_manager="kvault-retained")
        bare = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": plan.target, "namespace": plan.namespace},
        }
        await objects.apply(self.kube, SECRETS, bare, field_manager=FIELD_MANAGER)
