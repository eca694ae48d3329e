"""Who may do what: the domain authorises every item operation against the vault's role
assignments and audits the decision itself, so no caller of the domain can forget either.

Two doors, one rule. Each item operation checks its caller inside its audited block (a
denial is its audit line). Front ends that must refuse before they parse input (the data
plane reads no body for a caller without the right; a projection checks every item before
it reads one) call :meth:`Access.check` first, which audits a denial the same way.
"""

from __future__ import annotations

from kvault.errors import ForbiddenByRbac
from kvault.identity import rbac
from kvault.vault.core import Caller, Core, Outcome
from kvault.vault.model import VaultInfo


def item_path(operation: str, name: str | None) -> str | None:
    """``secrets/NAME`` (the scope an item role assignment names), ``None`` for listings."""
    if name is None:
        return None
    return f"secrets/{name}"


def authorize(caller: Caller, vault: VaultInfo, operation: str, name: str | None) -> None:
    """Raise :class:`ForbiddenByRbac` unless the caller's identity may run ``operation``."""
    if caller.identity is None:
        return
    rbac.authorize(
        caller.identity,
        vault.role_assignments,
        operation,
        vault=vault.name,
        item=item_path(operation, name),
    )


class Access:
    def __init__(self, core: Core) -> None:
        self._core = core

    def check(self, caller: Caller, vault: VaultInfo, operation: str, name: str | None) -> None:
        """Authorise ahead of the operation; a denial is audited and raised."""
        try:
            authorize(caller, vault, operation, name)
        except ForbiddenByRbac as exc:
            self._core.record(caller, vault.name, operation, Outcome(item=name or ""), exc.outcome)
            raise
