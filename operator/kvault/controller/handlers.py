"""The operator's kopf registry: handlers wired to one controller per resource.

``Vault`` objects are few: kopf's change handlers (create/update/resume/delete, one
finalizer) run them. ``VaultSecret`` objects are many: level-based ``on.event`` handlers
feed the VaultSecret controller's store and work queue. Managed Secrets are watched with a
server-side label selector. kopf's settings are configured by whoever starts the operator
(:func:`kvault.controller.settings.configure`), once.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import kopf

from kvault.controller.settings import (
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
        kube, vaults, vaultsecrets = self.kube, self.vaults, self.vaultsecrets

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

        @kopf.on.event(GROUP, VERSION, VAULTSECRETS.plural, id="vaultsecret", registry=reg)
        async def vaultsecret_event(event: kopf.RawEvent, **_: Any) -> None:
            vaultsecrets.on_event(event)

        @kopf.on.event(
            "v1", "secrets", id="managed-secret", labels={MANAGED_BY: FIELD_MANAGER}, registry=reg
        )
        async def secret_event(event: kopf.RawEvent, **_: Any) -> None:
            vaultsecrets.on_secret_event(event)

        return reg
