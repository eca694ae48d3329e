"""The vault domain's façade: vaults and secrets over one storage, HSM and audit log."""

from __future__ import annotations

import time
from collections.abc import Callable

from kvault.audit.event import Auditor
from kvault.audit.log import AuditLog
from kvault.barrier.barrier import Barrier
from kvault.hsm.base import HSM
from kvault.storage.base import Storage
from kvault.vault.core import Core
from kvault.vault.layout import SYSTEM
from kvault.vault.names import DEFAULT_MAX_VALUE_BYTES
from kvault.vault.secrets import Secrets
from kvault.vault.vaults import Vaults


class Kvault:
    """The vault domain: ``vaults`` and ``secrets`` over one storage and one HSM."""

    def __init__(
        self,
        storage: Storage,
        hsm: HSM,
        *,
        auditor: Auditor | None = None,
        clock: Callable[[], float] = time.time,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    ) -> None:
        self.storage = storage
        self.hsm = hsm
        self.barrier = Barrier(storage, hsm)
        core = Core(storage, self.barrier, clock=clock, max_value_bytes=max_value_bytes)
        if auditor is not None:
            core.auditor = auditor
        self.core = core
        self.vaults = Vaults(core)
        self.secrets = Secrets(core)
        self._closed = False

    @classmethod
    async def open(
        cls,
        storage: Storage,
        hsm: HSM,
        *,
        auditor: Auditor | None = None,
        clock: Callable[[], float] = time.time,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    ) -> Kvault:
        """The domain over an opened ``storage`` and ``hsm`` (chosen by ``app.backends``,
        never here), started; it owns them from now on (closed with it, or on failure)."""
        kv = cls(storage, hsm, auditor=auditor, clock=clock, max_value_bytes=max_value_bytes)
        try:
            await kv.start()
        except BaseException:
            await kv.close()
            raise
        return kv

    async def start(self) -> None:
        """Prepare storage for use: the system keyring seals vault records."""
        await self.barrier.ensure_keyring(SYSTEM)

    async def close(self) -> None:
        """Close storage, HSM and audit log (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        await self.storage.close()
        await self.hsm.close()
        if isinstance(self.core.auditor, AuditLog):
            self.core.auditor.close()
