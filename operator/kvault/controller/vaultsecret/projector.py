"""One VaultSecret reconcile: act as its ServiceAccount, read what that identity may read,
render, write the Secret, restart workloads; and its finalizer.

Denials and errors write no Secret and keep none of ours (Owner policy). Nothing here puts a
value into a log line, an Event, the status, an annotation or an exception message.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Mapping
from typing import Any

from kvault.controller import metrics
from kvault.controller.conditions import now_iso, reason_of
from kvault.controller.settings import PROJECTION_FINALIZER, VAULTSECRETS, Options
from kvault.controller.vaultsecret import secret
from kvault.controller.vaultsecret.identity import ServiceAccounts
from kvault.controller.vaultsecret.outcome import Refused, Result
from kvault.controller.vaultsecret.plan import Plan
from kvault.controller.vaultsecret.read import project
from kvault.controller.vaultsecret.render import TemplateError, content_hash, render
from kvault.controller.vaultsecret.restarts import restart
from kvault.controller.vaultsecret.status import certificates_status, status
from kvault.errors import KvaultError
from kvault.kube import objects
from kvault.kube.client import KubeClient
from kvault.kube.errors import ApiError
from kvault.kube.events import EventPoster
from kvault.vault.service import Kvault

log = logging.getLogger(__name__)


class Projector:
    def __init__(self, kv: Kvault, kube: KubeClient, events: EventPoster, options: Options) -> None:
        self.kv = kv
        self.kube = kube
        self.events = events
        self.options = options
        self.accounts = ServiceAccounts(kube)

    async def sync(
        self,
        body: Mapping[str, Any],
        plan: Plan,
        superseded: Callable[[], bool] = lambda: False,
    ) -> Result:
        """Project once; returns the status (the caller writes it). ``superseded`` says
        whether a newer change arrived meanwhile (see the rollout restart below)."""
        previous = body.get("status") or {}
        try:
            await self.accounts.check(plan.namespace, plan.sa)
            found = await project(self.kv, plan)
            try:
                rendered = render(found.values, plan.templates, merge=plan.merge_templates)
            except TemplateError as exc:
                raise Refused("Error", str(exc), drop=False) from None
            current = await secret.existing(self.kube, plan)
            # Binary values (keystores) keep the bytes the Secret holds when they hold the same
            # content, so an unchanged projection hashes alike and writes nothing.
            data = secret.settle(rendered, current)
            digest = content_hash(plan.uid, data)
            encoded = secret.encode(data)
            wrote = await secret.write(self.kube, plan, encoded, digest, current)
            if self.options.fault == "exit-after-secret-write" and wrote:
                os.kill(os.getpid(), signal.SIGKILL)  # tests: a crash between two writes
            restarted: list[str] = []
            prev_hash = previous.get("contentHash")
            if prev_hash and prev_hash != digest:
                if superseded():
                    # Newer content is on its way (the queue runs this object again at once):
                    # restarting now would restart the workloads twice for one burst of
                    # changes (e.g. writes queued while the API server was away). The next
                    # pass restarts once, for the newest content; the status stays as it was.
                    keys = tuple(sorted(encoded))
                    fingerprint = secret.fingerprint(encoded, keys)
                    return Result(dict(previous), "Superseded", wrote, digest, fingerprint, keys)
                restarted = await restart(self.kube, plan, digest)
        except Refused as refused:
            if refused.drop:
                await secret.drop(self.kube, plan)
            return self._refused(body, plan, refused)
        except KvaultError as exc:
            text = str(exc) if isinstance(exc, ApiError) else type(exc).__name__
            failed = Refused("Error", f"projection failed: {text}", drop=False)
            return self._refused(body, plan, failed, retry=True)
        message = f"{len(data)} keys projected into Secret {plan.target}"
        done = status(
            body,
            plan,
            True,
            "Synced",
            message,
            syncedVersions=found.versions,
            contentHash=digest,
            lastSyncTime=now_iso(),
            secretName=plan.target,
            **certificates_status(previous, found.certificates),
        )
        if wrote:
            self.events.post(body, "Normal", "Synced", message)
        if restarted:
            self.events.post(body, "Normal", "RolloutRestart", "restarted " + ", ".join(restarted))
        metrics.SYNCS.labels("Synced").inc()
        keys = tuple(sorted(encoded))
        return Result(
            done, "Synced", wrote, digest, secret.fingerprint(encoded, keys), keys, restarted
        )

    def _refused(
        self, body: Mapping[str, Any], plan: Plan, refused: Refused, *, retry: bool = False
    ) -> Result:
        previous = body.get("status") or {}
        if reason_of(previous.get("conditions"), "Ready") != refused.reason:
            self.events.post(body, "Warning", refused.reason, refused.message)
        log.info(
            "VaultSecret %s/%s not synced: %s",
            plan.namespace,
            plan.name,
            refused.reason,
            extra={"object": f"{plan.namespace}/{plan.name}"},
        )
        metrics.SYNCS.labels(refused.reason).inc()
        failed = status(body, plan, False, refused.reason, refused.message)
        if refused.drop:
            failed.update(syncedVersions=None, contentHash=None, secretName=None)
            failed.update(certificates_status(previous, []))
        return Result(failed, refused.reason if not retry else "Retry")

    async def finalize(self, body: Mapping[str, Any], plan: Plan) -> None:
        """deletionPolicy: Delete removes our Secret (or our keys, for Merge); Retain keeps it
        and lets go of the owner reference so garbage collection keeps it too."""
        current = await secret.existing(self.kube, plan)
        if current is not None and (secret.ours(current, plan) or plan.creation == "Merge"):
            if plan.deletion == "Retain":
                await secret.release(self.kube, plan)
                self.events.post(body, "Normal", "Retained", f"Secret {plan.target} kept")
            elif plan.creation == "Merge":
                await secret.release(self.kube, plan, keep_data=False)
                self.events.post(body, "Normal", "Deleted", f"keys removed from {plan.target}")
            else:
                await secret.delete(self.kube, plan, current)
                self.events.post(body, "Normal", "Deleted", f"Secret {plan.target} deleted")
        await objects.remove_finalizer(self.kube, VAULTSECRETS, body, PROJECTION_FINALIZER)
