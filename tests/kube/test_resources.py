"""Resource references build every API path; error statuses become one class each."""

from __future__ import annotations

import pytest

from kvault.kube import errors
from kvault.kube.resources import (
    LEASES,
    MUTATING_WEBHOOK_CONFIGURATIONS,
    SECRETS,
    SERVICEACCOUNTS,
    TOKENREVIEWS,
    WORKLOADS,
    Resource,
)


def test_paths_of_core_group_and_named_groups() -> None:
    assert SECRETS.path("team-a") == "/api/v1/namespaces/team-a/secrets"
    assert SECRETS.path("team-a", "db") == "/api/v1/namespaces/team-a/secrets/db"
    assert SECRETS.path() == "/api/v1/secrets"
    assert (
        SERVICEACCOUNTS.path("ns", "app", "token")
        == "/api/v1/namespaces/ns/serviceaccounts/app/token"
    )
    assert LEASES.path("ns", "l") == "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l"
    assert (
        WORKLOADS["StatefulSet"].path("ns", "db") == "/apis/apps/v1/namespaces/ns/statefulsets/db"
    )
    vs = Resource("kvault.io", "v1alpha1", "vaultsecrets")
    assert vs.api_version == "kvault.io/v1alpha1" and SECRETS.api_version == "v1"
    assert (
        vs.path("a", "b", "status") == "/apis/kvault.io/v1alpha1/namespaces/a/vaultsecrets/b/status"
    )


def test_cluster_scoped_and_odd_names() -> None:
    assert TOKENREVIEWS.path() == "/apis/authentication.k8s.io/v1/tokenreviews"
    assert MUTATING_WEBHOOK_CONFIGURATIONS.path(name="kv").endswith(
        "/mutatingwebhookconfigurations/kv"
    )
    with pytest.raises(ValueError, match="cluster-scoped"):
        TOKENREVIEWS.path("ns")
    with pytest.raises(ValueError, match="subresource"):
        SECRETS.path("ns", subresource="status")
    assert SECRETS.path("ns", "a/b") == "/api/v1/namespaces/ns/secrets/a%2Fb"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, errors.Unauthorized),
        (403, errors.Forbidden),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (422, errors.Invalid),
        (500, errors.ApiError),
    ],
)
def test_one_error_class_per_status(status: int, cls: type[errors.ApiError]) -> None:
    exc = errors.ApiError(status, "Reason", "the message")
    assert type(exc) is cls and isinstance(exc, errors.ApiError)
    assert exc.status == status and exc.reason == "Reason" and "the message" in exc.message
    assert type(cls(status, "R", "m")) is cls
