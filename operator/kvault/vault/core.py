"""State shared by the vault services: storage, barrier, clock, audit and the vault cache."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType

from kvault.audit.event import AuditEvent, Auditor, NullAuditor
from kvault.barrier.barrier import Barrier
from kvault.barrier.context import Context
from kvault.barrier.view import SealedView
from kvault.errors import KvaultError, NotFound
from kvault.identity.model import Principal
from kvault.vault import layout
from kvault.vault.changes import VAULT_MUTATIONS, Change, ChangeFeed
from kvault.vault.model import VAULT_NOT_FOUND, VaultInfo
from kvault.vault.names import DEFAULT_MAX_VALUE_BYTES
from kvault.vault.records import decode_vault


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: the name for the audit log, the request id, and the verified identity that
    item operations are authorised against.

    ``identity`` is ``None`` only for kvault's own in-process callers (tools, schedulers, the
    operator provisioning vaults, tests): they are trusted. The data plane and projections
    always pass the identity (:meth:`of`).
    """

    principal: str = "local"
    request_id: str = ""
    identity: Principal | None = None

    @classmethod
    def of(cls, identity: Principal, request_id: str) -> Caller:
        return cls(identity.name, request_id, identity)


LOCAL = Caller()


@dataclass(slots=True)
class Outcome:
    """Filled in by an audited operation with what it touched (the version it read or wrote)."""

    version: str = ""
    item: str = ""


#: The outcome of the audit line written before an operation's first commit.
COMMITTING = "committing"


@dataclass(slots=True)
class _Running:
    """The audited operation this task is in, for the line its first commit writes."""

    caller: Caller
    vault: str
    operation: str
    outcome: Outcome
    announced: bool = False


_RUNNING: ContextVar[_Running | None] = ContextVar("kvault_audited_operation", default=None)


class _Audited:
    """The context manager of :meth:`Core.audited` (a class, not a generator: it wraps every
    operation)."""

    __slots__ = ("_core", "_running", "_token")

    def __init__(self, core: Core, running: _Running) -> None:
        self._core = core
        self._running = running

    def __enter__(self) -> Outcome:
        self._token = _RUNNING.set(self._running)
        return self._running.outcome

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _RUNNING.reset(self._token)
        core, run = self._core, self._running
        if exc is None:
            result = "ok"
        else:
            result = exc.outcome if isinstance(exc, KvaultError) else "InternalError"
        core.record(run.caller, run.vault, run.operation, run.outcome, result)
        if exc is None and run.operation in core.mutations:
            core.changes.publish(
                Change(run.vault, run.operation, run.outcome.item, run.outcome.version)
            )


@dataclass(slots=True)
class Core:
    barrier: Barrier
    auditor: Auditor = field(default_factory=NullAuditor)
    clock: Callable[[], float] = time.time
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    changes: ChangeFeed = field(default_factory=ChangeFeed)
    #: Audited operations published on ``changes`` (the kinds add theirs).
    mutations: frozenset[str] = VAULT_MUTATIONS
    _vaults: dict[str, tuple[int, VaultInfo]] = field(default_factory=dict)
    _forgotten: int = 0  # bumped by forget_vault: a read racing it must not be cached

    def now(self) -> int:
        return int(self.clock())

    def __post_init__(self) -> None:
        self.barrier.view.before_commit = self._announce

    def audited(self, caller: Caller, vault: str, operation: str, item: str = "") -> _Audited:
        """Record the operation once it ends: ``ok``, or the code of the error that ended it
        (``with core.audited(...) as outcome:``).

        An operation that changes storage also gets a ``committing`` line before its first
        commit, written durably first (:meth:`_announce`): a crash between the commit and the
        final line leaves no change without its audit line."""
        return _Audited(self, _Running(caller, vault, operation, Outcome(item=item)))

    def record(self, caller: Caller, vault: str, op: str, outcome: Outcome, result: str) -> None:
        """One audit line (also for a denial before any operation ran)."""
        self.auditor.record(
            AuditEvent(
                caller.principal,
                vault,
                op,
                result,
                outcome.item,
                outcome.version,
                caller.request_id,
            )
        )

    async def _announce(self) -> None:
        """Before a commit: the running operation's ``committing`` line, once, on disk."""
        running = _RUNNING.get()
        if running is None or running.announced:
            return
        running.announced = True
        self.record(running.caller, running.vault, running.operation, running.outcome, COMMITTING)
        await self.auditor.settle()

    @property
    def store(self) -> SealedView:
        """Storage as the domain sees it: sealed on the way in, opened on the way out."""
        return self.barrier.view

    async def read(self, key: str, ctx: Context) -> tuple[int, bytes] | None:
        """A row's revision and opened plaintext, or ``None`` when absent."""
        return await self.barrier.view.get(key, ctx)

    async def vault_row(self, name: str) -> tuple[int, VaultInfo] | None:
        """The vault record and its revision, from cache after the first read."""
        cached = self._vaults.get(name)
        if cached is not None:
            return cached
        key, ctx = layout.vault_row(name)
        forgotten = self._forgotten
        found = await self.read(key, ctx)
        if found is None:
            return None
        entry = (found[0], decode_vault(found[1]))
        if forgotten == self._forgotten:  # else another replica changed it meanwhile
            self._vaults[name] = entry
        return entry

    def forget_vault(self, name: str | None = None) -> None:
        """Read vault ``name`` (``None``: every vault) anew next time."""
        self._forgotten += 1
        if name is None:
            self._vaults.clear()
        else:
            self._vaults.pop(name, None)

    async def active_vault(self, name: str) -> VaultInfo:
        """The vault, which must exist and not be deleted."""
        entry = await self.vault_row(name)
        if entry is None or entry[1].deleted_date is not None:
            raise NotFound(f"vault {name!r} was not found", VAULT_NOT_FOUND)
        return entry[1]
