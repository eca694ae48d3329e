"""Principals, role assignments, and the authenticator interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


def service_account(namespace: str, name: str) -> str:
    """The Kubernetes user name of a ServiceAccount, as TokenReview reports it."""
    return f"system:serviceaccount:{namespace}:{name}"


def normalise_assignee(assignee: str) -> str:
    """``namespace/name`` is shorthand for a ServiceAccount; anything else is a user or group."""
    if "/" in assignee and not assignee.startswith("system:"):
        namespace, _, name = assignee.partition("/")
        return service_account(namespace, name)
    return assignee


@dataclass(frozen=True, slots=True)
class RoleAssignment:
    """A principal (``namespace/name`` of a ServiceAccount, a user or a group) holds a built-in
    role at a scope (``/`` for the whole vault, ``/secrets/NAME`` for one item)."""

    principal: str
    role: str
    scope: str = "/"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    name: str  # "system:serviceaccount:ns:sa", a user name, or "kvault:root"
    groups: tuple[str, ...] = ()
    uid: str = ""
    #: Unix time the credential expires (bounds caches), or ``None``.
    expires: int | None = None
    #: The dev server's root token: every action on every vault.
    superuser: bool = False

    def holds(self, assignee: str) -> bool:
        """Whether a role assignment to ``assignee`` applies to this principal."""
        wanted = normalise_assignee(assignee)
        return wanted == self.name or wanted in self.groups


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal:
        """The principal behind a bearer token; raises :class:`kvault.errors.Unauthenticated`."""
        ...
