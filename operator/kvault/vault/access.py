"""Who may do what: the domain authorises every item operation against the vault's role
assignments and audits the decision itself, so no caller of the domain can forget either.

Two doors, one rule. Each item operation checks its caller inside its audited block (a
denial is its audit line). Front ends that must refuse before they parse input (the data
plane reads no body for a caller without the right; a projection checks every item before
it reads one) call :meth:`Access.check` first, which audits a denial the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from kvault.errors import ForbiddenByRbac
from kvault.identity import rbac
from kvault.vault.core import Caller, Core, Outcome
from kvault.vault.model import VaultInfo


def authorize(
    caller: Caller, vault: VaultInfo, operation: str, plural: str, name: str | None
) -> None:
    """Raise :class:`ForbiddenByRbac` unless the caller's identity may run ``operation`` on
    the item ``plural/name`` (``name`` ``None``: a listing, vault scope only)."""
    who = caller.identity
    if who is None or who.superuser:  # the hot path: no string is built
        return
    rbac.authorize(
        who,
        vault.role_assignments,
        operation,
        vault=vault.name,
        item=None if name is None else f"{plural}/{name}",
    )


class Access:
    """The pre-check; ``plurals`` maps each item operation to its kind's plural."""

    def __init__(self, core: Core, plurals: Mapping[str, str]) -> None:
        self._core = core
        self._plurals = plurals

    def check(self, caller: Caller, vault: VaultInfo, operation: str, name: str | None) -> None:
        """Authorise ahead of the operation; a denial is audited and raised."""
        try:
            authorize(caller, vault, operation, self._plurals[operation], name)
        except ForbiddenByRbac as exc:
            self._core.record(caller, vault.name, operation, Outcome(item=name or ""), exc.outcome)
            raise
