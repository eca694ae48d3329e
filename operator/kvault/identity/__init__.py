"""Who is asking, and may they: principals, authenticators, role-based authorisation."""

from kvault.identity.model import Authenticator, Principal, RoleAssignment, service_account
from kvault.identity.rbac import ROLES, authorize, data_action

__all__ = [
    "ROLES",
    "Authenticator",
    "Principal",
    "RoleAssignment",
    "authorize",
    "data_action",
    "service_account",
]
