"""The vault domain's façade: vaults and secrets over one storage, HSM and audit log."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kvault.audit.event import Auditor
from kvault.audit.log import AuditLog
from kvault.barrier.barrier import Barrier
from kvault.barrier.view import SealedView, Storage
from kvault.hsm.base import HSM
from kvault.vault import layout
from kvault.vault.access import Access
from kvault.vault.authfail import AuthFailures
from kvault.vault.certificates.certificates import Certificates
from kvault.vault.changes import Subscriber
from kvault.vault.core import Caller, Core
from kvault.vault.items.engine import Items
from kvault.vault.keys import Keys
from kvault.vault.model import VaultInfo
from kvault.vault.names import DEFAULT_MAX_VALUE_BYTES
from kvault.vault.replicas import Replicas
from kvault.vault.secrets import Secrets
from kvault.vault.vaults import Vaults


class Kvault:
    """The vault domain: ``vaults`` and ``secrets`` over one storage and one HSM.

    Front ends (``api/``, ``controller/``) use only the operations of ``vaults`` and
    ``secrets`` and the methods below; ``storage``, ``barrier``, ``hsm`` and ``core`` are
    for the process that assembled the kvault (and for tests that inspect rows).
    """

    def __init__(
        self,
        storage: Storage,
        hsm: HSM,
        *,
        auditor: Auditor | None = None,
        clock: Callable[[], float] = time.time,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        certificate_validity_floor: int | None = None,
    ) -> None:
        self.storage = storage
        self.hsm = hsm
        self.barrier = Barrier(storage, hsm)
        core = Core(self.barrier, clock=clock, max_value_bytes=max_value_bytes)
        if auditor is not None:
            core.auditor = auditor
        self.core = core
        self.secrets = Secrets(core)
        self.keys = Keys(core, hsm)
        self.certificates = Certificates(
            core, self.keys, self.secrets, hsm, validity_floor=certificate_validity_floor
        )
        self.vaults = Vaults(core, release=self.keys.release_vault)
        #: Every item kind's engine.
        self.kinds: tuple[Items[Any, Any, Any, Any, Any], ...] = (
            self.secrets,
            self.keys,
            self.certificates,
        )
        core.mutations = core.mutations.union(*(e.kind.mutations for e in self.kinds))
        self._access = Access(
            core,
            {op: e.kind.plural for e in self.kinds for op in e.kind.operations.values()},
        )
        #: Refused authentications, audited without letting a flood fill the disk.
        self.auth_failures = AuthFailures(lambda: core.auditor)
        #: The other replicas on a shared store (``None``: this process is the only one).
        shared = self.barrier.view.shared
        self.replicas = (
            None
            if shared is None
            else Replicas(shared, core, self.barrier, self._active_vault_names)
        )
        self._closed = False

    @property
    def sealed(self) -> SealedView:
        """Storage sealed by this kvault's barrier, for system records kept beside the vaults
        (the identity's token-signing keys): nothing outside the barrier sees a row."""
        return self.barrier.view

    async def vault(self, name: str) -> VaultInfo:
        """The vault ``name`` (it must exist and not be deleted); not audited, from cache."""
        return await self.core.active_vault(name)

    def authorize(
        self, caller: Caller, vault: VaultInfo, operation: str, name: str | None = None
    ) -> None:
        """Refuse (audited, :class:`~kvault.errors.ForbiddenByRbac`) before an operation whose
        input is not read yet; ``name`` is the item's, ``None`` for listings and restore."""
        self._access.check(caller, vault, operation, name)

    def authentication_refused(
        self, source: str, vault: str, reason: str, request_id: str = ""
    ) -> None:
        """Audit a request whose credential was refused before any operation ran (an
        ``Authenticate`` line, aggregated per client, vault and reason: :mod:`.authfail`)."""
        self.auth_failures.refused(source, vault, reason, request_id)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Be told of every successful change (see :mod:`kvault.vault.changes`)."""
        return self.core.changes.subscribe(subscriber)

    async def item_counts(self, vault: VaultInfo) -> dict[str, int]:
        """Items and deleted items per kind, counted from row keys alone (nothing decrypted)."""
        store, counts = self.core.store, {}
        for engine in self.kinds:
            rows, plural = engine.kind.layout, engine.kind.plural
            counts[plural] = await store.count(rows.heads(vault.id))
            counts["deleted" + plural.capitalize()] = await store.count(rows.deleted(vault.id))
        return counts

    @classmethod
    async def open(
        cls,
        storage: Storage,
        hsm: HSM,
        *,
        auditor: Auditor | None = None,
        clock: Callable[[], float] = time.time,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        certificate_validity_floor: int | None = None,
    ) -> Kvault:
        """The domain over an opened ``storage`` and ``hsm`` (chosen by ``app.backends``,
        never here), started; it owns them from now on (closed with it, or on failure)."""
        kv = cls(
            storage,
            hsm,
            auditor=auditor,
            clock=clock,
            max_value_bytes=max_value_bytes,
            certificate_validity_floor=certificate_validity_floor,
        )
        try:
            await kv.start()
        except BaseException:
            await kv.close()
            raise
        return kv

    async def start(self) -> None:
        """Prepare storage for use: the system keyring seals vault records; on a shared store,
        hear the other replicas' writes (:mod:`kvault.vault.replicas`)."""
        await self.barrier.ensure_keyring(layout.SYSTEM)
        if self.replicas is not None:
            await self.replicas.start()

    async def _active_vault_names(self) -> list[str]:
        return [v.name for v in await self.vaults.list()]

    async def close(self) -> None:
        """Close storage, HSM and audit log (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        self.auth_failures.close()  # its last counts, while the audit log is open
        if self.replicas is not None:
            await self.replicas.drain()
        await self.storage.close()
        await self.hsm.close()
        if isinstance(self.core.auditor, AuditLog):
            self.core.auditor.close()
