"""The operator's event sources, wired to one controller per resource.

``Vault`` objects are few: kopf's change handlers (create/update/resume/delete, one
finalizer) run them. ``VaultSecret`` objects are many: informers of our own
(:mod:`kvault.kube.informer`, without kopf's per-event cost) feed the VaultSecret
controller's store and work queue, and follow the managed Secrets with a server-side label
selector. kopf's settings are configured by whoever starts the operator
(:func:`kvault.controller.settings.configure`), once.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import kopf

from kvault.controller import namespaces
from kvault.controller.settings import (
    ANN_OWNER,
    API_VERSION,
    FIELD_MANAGER,
    GROUP,
    MANAGED_BY,
    VAULTS,
    VAULTSECRETS,
    VERSION,
    Options,
)
from kvault.controller.vault.cert_notices import IssuedNotices
from kvault.controller.vault.controller import VaultController
from kvault.controller.vaultsecret.controller import VaultSecretController
from kvault.kube.client import KubeClient
from kvault.kube.events import EventPoster
from kvault.kube.informer import Informer
from kvault.kube.resources import SECRETS
from kvault.vault.changes import Change
from kvault.vault.service import Kvault


class Controller:
    """Both resources' controllers over one vault, one API client and one Event poster; and
    the ``CertificateIssued`` notices of the changes this replica sees."""

    def __init__(self, kv: Kvault, kube: KubeClient, options: Options) -> None:
        self.kv = kv
        self.kube = kube
        self.options = options
        self.events = EventPoster(kube, manager=FIELD_MANAGER, api_version=API_VERSION)
        self.vaults = VaultController(kv, kube, self.events, options)
        self.vaultsecrets = VaultSecretController(kv, kube, self.events, options)
        self.issued = IssuedNotices(kv, kube, self.events, self.vaults.bodies)
        self._unsubscribe: Any = None

    def start(self) -> None:
        self.vaultsecrets.queue.start()
        self._unsubscribe = self.kv.subscribe(self.on_change)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.vaultsecrets.queue.stop()
        await self.issued.drain()
        await self.events.drain()

    def on_change(self, change: Change) -> None:
        """Called synchronously by the vault after a write: only enqueue."""
        self.vaultsecrets.on_change(change)
        self.vaults.on_change(change)
        self.issued.on_change(change)

    def registry(self) -> kopf.OperatorRegistry:
        reg = kopf.OperatorRegistry()
        kube, vaults = self.kube, self.vaults

        @kopf.on.login(registry=reg)
        async def login(**_: Any) -> kopf.AiohttpSession:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ssl=kube.tls),
                headers=kube.auth_headers(),
            )
            return kopf.AiohttpSession(
                server=kube.config.server,
                aiohttp_session=session,
                default_namespace=kube.config.namespace,
            )

        @kopf.on.create(GROUP, VERSION, VAULTS.plural, id="provision", registry=reg)
        @kopf.on.update(GROUP, VERSION, VAULTS.plural, id="update", registry=reg)
        @kopf.on.resume(GROUP, VERSION, VAULTS.plural, id="resume", registry=reg)
        async def vault_changed(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
            await vaults.changed(body, patch.status)

        @kopf.on.delete(GROUP, VERSION, VAULTS.plural, id="remove", registry=reg)
        async def vault_deleted(body: kopf.Body, **_: Any) -> None:
            await vaults.deleted(body)

        @kopf.on.event(GROUP, VERSION, VAULTS.plural, id="vault-cache", registry=reg)
        async def vault_event(event: kopf.RawEvent, **_: Any) -> None:
            vaults.on_event(event)

        return reg

    def informers(self) -> list[Informer]:
        """The VaultSecrets and the Secrets kvault manages, in every namespace the operator
        serves: one informer each per namespace named, or cluster-wide (filtered by the
        patterns, if any: a namespace created later that matches is served too)."""
        wanted = self.options.namespaces
        per_namespace = bool(wanted) and namespaces.exact(wanted)
        accept = namespaces.matcher(wanted) if wanted and not per_namespace else None
        out = []
        for ns in wanted if per_namespace else (None,):
            out.append(
                Informer(
                    self.kube, VAULTSECRETS.path(ns), self.vaultsecrets.on_event, accept=accept
                )
            )
            out.append(
                Informer(
                    self.kube,
                    SECRETS.path(ns),
                    self.vaultsecrets.on_secret_event,
                    label_selector=f"{MANAGED_BY}={FIELD_MANAGER}",
                    annotations=(ANN_OWNER,),
                    accept=accept,
                )
            )
        return out
