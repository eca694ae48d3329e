"""A key rotation notice becomes a KeyNearExpiry Event on the Vault object of the key's vault
(from the controller's cache, else read from the API), and counts on the metric either way.
Against an in-memory API; the operator wiring runs against a real cluster in e2e."""

from __future__ import annotations

from typing import cast

from kvault.controller import metrics
from kvault.controller.vault.notices import KeyNotices, vault_object
from kvault.kube.client import KubeClient
from kvault.kube.events import EventPoster
from kvault.vault.keys.scheduler import NotifyEvent
from tests.controller.fakes import FakeApi, vault_body

EXP = 1_750_000_000 + 60 * 86400


def _count(vault: str) -> float:
    found = metrics.REGISTRY.get_sample_value("kvault_key_notifications_total", {"vault": vault})
    return found or 0.0


def test_a_domain_vault_name_maps_back_to_its_vault_object() -> None:
    assert vault_object("main.team-a") == ("team-a", "main")
    assert vault_object("my.vault.team-a") == ("team-a", "my.vault")
    assert vault_object("dev") is None and vault_object(".x") is None


async def test_the_event_goes_on_the_vault_of_the_key_and_names_no_material() -> None:
    api = FakeApi(
        {"/apis/kvault.io/v1alpha1/namespaces/team-b/vaults/other": vault_body("team-b", "other")}
    )
    kube = cast(KubeClient, api)
    events = EventPoster(kube, manager="kvault", api_version="kvault.io/v1alpha1")
    cached = {"main.team-a": vault_body("team-a", "main")}
    notices = KeyNotices(kube, events, cached)
    before = _count("main.team-a"), _count("other.team-b"), _count("dev")

    await notices(NotifyEvent("main.team-a", "signer", "a" * 32, EXP, EXP - 20 * 86400))
    await notices(NotifyEvent("other.team-b", "wrap", "b" * 32, EXP, EXP - 20 * 86400))
    await notices(NotifyEvent("dev", "k", "c" * 32, EXP, EXP - 20 * 86400))  # no Vault object
    await events.drain()

    assert api.gets == ["/apis/kvault.io/v1alpha1/namespaces/team-b/vaults/other"]
    assert [p for p, _ in api.posts] == [
        "/api/v1/namespaces/team-a/events",
        "/api/v1/namespaces/team-b/events",
    ]
    first = api.posts[0][1]
    assert first["reason"] == "KeyNearExpiry" and first["type"] == "Warning"
    assert first["involvedObject"] == {
        "apiVersion": "kvault.io/v1alpha1",
        "kind": "Vault",
        "name": "main",
        "namespace": "team-a",
        "uid": "uid-main",
        "resourceVersion": None,
    }
    assert first["message"] == (
        f"key signer (version {'a' * 32}) of vault main.team-a expires at 2025-08-14T15:06:40Z; "
        "its rotation policy asks for this notice"
    )
    after = _count("main.team-a"), _count("other.team-b"), _count("dev")
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]
