"""The role decision itself (``kvault.identity.rbac``), without a server: the same hand-written
expectations as the API matrix (tests/api/test_rbac_matrix.py) for every role, operation and
scope, and the edges of scopes, principals and wildcards. Fast enough to be the test set of
the mutation run over rbac.py (``make test-mutation``)."""

from __future__ import annotations

import pytest

from kvault.errors import BadParameter, ForbiddenByRbac
from kvault.identity.model import Principal, RoleAssignment
from kvault.identity.rbac import (
    OPERATION_ACTIONS,
    ROLE_DATA_ACTIONS,
    ROLES,
    authorize,
    data_action,
    role_allows,
    role_name,
)
from tests.api.test_rbac_matrix import EXPECTED, REQUESTS, VAULT_LEVEL

KV = "Microsoft.KeyVault/vaults"
#: Operations the API matrix has no request of: the same data action as one it has.
SAME_AS = {
    "KeySet": "KeyImport",
    "CertificateSet": "CertificateImport",
    "CertificateRenew": "CertificateCreate",
}
SA = Principal("system:serviceaccount:team-a:app", ("system:serviceaccounts", "team-a-devs"))


def _item(operation: str) -> str:
    for prefix, plural in (("Secret", "secrets"), ("Key", "keys"), ("Certificate", "certificates")):
        if operation.startswith(prefix):
            return f"{plural}/x"
    raise AssertionError(operation)


def _allowed(role: str, operation: str, scope: str, item: str | None) -> bool:
    try:
        authorize(SA, [RoleAssignment("team-a/app", role, scope)], operation, vault="v", item=item)
    except ForbiddenByRbac:
        return False
    return True


@pytest.mark.parametrize("role", ROLES)
def test_every_role_allows_exactly_its_operations_at_either_scope(role: str) -> None:
    expected = EXPECTED[role] | {op for op, same in SAME_AS.items() if same in EXPECTED[role]}
    assert set(OPERATION_ACTIONS) == (set(REQUESTS) & set(OPERATION_ACTIONS)) | set(SAME_AS)
    wrong = []
    for operation in OPERATION_ACTIONS:
        item = _item(operation)
        vault_wide = _allowed(role, operation, "/", None if operation in VAULT_LEVEL else item)
        if vault_wide != (operation in expected):
            wrong.append(("vault", operation, vault_wide))
        if operation in VAULT_LEVEL:  # a listing, a restore, contacts, issuers: no item
            at_item = _allowed(role, operation, "/" + item, None)
            if at_item:
                wrong.append(("item", operation, at_item))
        else:
            at_item = _allowed(role, operation, "/" + item, item)
            if at_item != (operation in expected):
                wrong.append(("item", operation, at_item))
    assert wrong == []


@pytest.mark.parametrize(
    ("scope", "item", "covered"),
    [
        ("/", "secrets/db", True),
        ("", "secrets/db", True),
        ("/", None, True),
        ("/secrets/db", "secrets/db", True),
        ("/secrets/db", "secrets/DB", True),  # names are case-insensitive
        ("/Secrets/DB/", "secrets/db", True),
        ("/secrets/db", "secrets/db2", False),  # a prefix is not the item
        ("/secrets/db", "secrets/d", False),
        ("/secrets/db2", "secrets/db", False),
        ("/secrets/db", "secrets/db/extra", False),
        ("/secrets/db", "keys/db", False),  # another kind's item of that name
        ("/secrets/db", None, False),  # an item scope never covers a listing
        ("/secrets/db", "", False),
        ("/secrets/dbX", "secrets/db", False),  # only the slashes around a scope go
    ],
)
def test_an_item_scope_covers_exactly_its_item(scope: str, item: str | None, covered: bool) -> None:
    assert _allowed("Key Vault Administrator", "SecretGet", scope, item) is covered


def test_the_assignment_must_name_the_caller_or_one_of_its_groups() -> None:
    def allowed(principal: str) -> bool:
        try:
            authorize(
                SA,
                [RoleAssignment(principal, "Key Vault Secrets User", "/")],
                "SecretGet",
                vault="v",
                item="secrets/x",
            )
        except ForbiddenByRbac:
            return False
        return True

    assert allowed("team-a/app")
    assert allowed("system:serviceaccount:team-a:app")
    assert allowed("team-a-devs")
    assert allowed("system:serviceaccounts")
    assert not allowed("team-a/app2")
    assert not allowed("team-b/app")
    assert not allowed("system:serviceaccount:team-a:ap")
    assert not allowed("team-a")


def test_any_matching_assignment_allows_and_none_denies() -> None:
    assignments = [
        RoleAssignment("team-b/app", "Key Vault Administrator", "/"),  # someone else
        RoleAssignment(
            "team-a/app", "Key Vault Reader", "/"
        ),  # the caller, a role without the action
        RoleAssignment("team-a/app", "Key Vault Secrets User", "/secrets/other"),  # another item
        RoleAssignment("team-a/app", "Key Vault Secrets User", "/secrets/x"),  # this one
    ]
    authorize(SA, assignments, "SecretGet", vault="v", item="secrets/x")
    with pytest.raises(ForbiddenByRbac):
        authorize(SA, assignments[:3], "SecretGet", vault="v", item="secrets/x")
    with pytest.raises(ForbiddenByRbac):
        authorize(SA, [], "SecretGet", vault="v", item="secrets/x")


def test_a_superuser_needs_no_assignment() -> None:
    root = Principal("kvault:root", superuser=True)
    authorize(root, [], "SecretPurge", vault="v", item="secrets/x")
    with pytest.raises(ForbiddenByRbac):
        authorize(Principal("kvault:root"), [], "SecretPurge", vault="v", item="secrets/x")


def test_a_denial_says_who_what_and_where_as_azure_does() -> None:
    with pytest.raises(ForbiddenByRbac) as denied:
        authorize(SA, [], "SecretGet", vault="v1", item="secrets/db")
    assert denied.value.message == (
        "Caller is not authorized to perform action on resource.\r\n"
        "If role assignments were recently changed, please wait several minutes for role "
        "assignments to become effective.\r\n"
        f"Caller: name={SA.name}\r\n"
        f"Action: '{KV}/secrets/getSecret/action'\r\n"
        "Resource: '/vaults/v1/secrets/db'\r\n"
        "Assignment: (not found)\r\n"
        "Vault: v1;"
    )
    with pytest.raises(ForbiddenByRbac) as listing:
        authorize(SA, [], "SecretList", vault="v1")
    assert "Resource: '/vaults/v1'\r\n" in listing.value.message
    assert f"Action: '{KV}/secrets/readMetadata/action'" in listing.value.message


def test_role_names_are_the_built_in_ones_with_or_without_the_prefix() -> None:
    assert role_name("Secrets User") == "Key Vault Secrets User"
    assert role_name("Key Vault Secrets User") == "Key Vault Secrets User"
    assert role_name("Administrator") == "Key Vault Administrator"
    for bad in ("Secrets user", "Owner", "Key Vault Owner", "", "Key Vault "):
        with pytest.raises(BadParameter, match="unknown role") as refused:
            role_name(bad)
        assert ", ".join(ROLES) in refused.value.message  # the list of roles
        assert repr(bad) in refused.value.message


def test_data_actions_are_azure_s() -> None:
    assert data_action("SecretGet") == f"{KV}/secrets/getSecret/action"
    assert data_action("KeyUnwrapKey") == f"{KV}/keys/unwrap/action"
    assert data_action("CertificateGetContacts") == f"{KV}/certificatecontacts/write"
    with pytest.raises(KeyError):
        data_action("SecretSteal")


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        ("Key Vault Administrator", f"{KV}/secrets/getSecret/action", True),
        ("Key Vault Administrator", "Microsoft.KeyVault/managedHSMs/keys/read", False),
        ("Key Vault Secrets Officer", f"{KV}/secrets/purge/action", True),
        ("Key Vault Secrets Officer", f"{KV}/secretsX/purge/action", False),
        ("Key Vault Secrets Officer", f"{KV}/keys/read", False),
        ("Key Vault Reader", f"{KV}/keys/read", True),  # '*' spans '/': */read
        ("Key Vault Reader", f"{KV}/certificatecas/read", True),
        ("Key Vault Reader", f"{KV}/keys/readX", False),
        ("Key Vault Reader", f"{KV}/secrets/getSecret/action", False),
        ("Key Vault Crypto User", f"{KV}/keys/read", True),
        ("Key Vault Crypto User", f"{KV}/keys/read/extra", False),  # whole action, not a prefix
        ("Key Vault Crypto User", f"x{KV}/keys/read", False),
        ("Key Vault Crypto User", f"{KV}/keys/create/action", False),
        ("Key Vault Secrets User", f"{KV}/secrets/getSecret/action", True),
        ("Key Vault Secrets User", f"{KV}/secrets/getSecretXaction", False),  # '.' is literal
    ],
)
def test_wildcards_span_slashes_and_match_the_whole_action(
    role: str, action: str, allowed: bool
) -> None:
    assert role_allows(role, action) is allowed


def test_every_role_has_data_actions() -> None:
    assert set(ROLES) == set(ROLE_DATA_ACTIONS) and len(ROLES) == 10
