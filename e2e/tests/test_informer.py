"""The informer that feeds the VaultSecret controller, against the real API server: a listing,
then the watch's events, and every deletion seen even when it happened while not watching."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from e2e.crds import apply_crds
from e2e.fixtures import Cluster
from kvault.controller.settings import VAULTSECRETS
from kvault.kube import informer as informer_module
from kvault.kube.client import KubeClient, load_config
from kvault.kube.informer import Informer
from kvault.kube.resources import CONFIGMAPS


async def _until(check: Callable[[], bool], what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


def _configmap(name: str, value: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"bench": "informer"}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": value}}


class Seen:
    def __init__(self) -> None:
        self.events: list[tuple[str | None, str, Mapping[str, Any]]] = []

    def __call__(self, event: Mapping[str, Any]) -> None:
        obj = event["object"]
        self.events.append((event["type"], obj["metadata"]["name"], obj))

    def names(self, kind: str | None) -> set[str]:
        return {name for t, name, _ in self.events if t == kind}


async def test_list_then_watch_delivers_every_event(
    kube_cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(informer_module, "CHUNK", 2)  # the listing takes several pages
    async with KubeClient(load_config(kube_cluster.kubeconfig)) as kube:
        path = CONFIGMAPS.path(namespace)
        for i in range(5):
            await kube.post(path, _configmap(f"cm-{i}", "0"))
        await kube.post(path, _configmap("unlabelled", "0") | {"metadata": {"name": "other"}})
        seen = Seen()
        informer = Informer(kube, path, seen, label_selector="bench=informer")
        task = asyncio.create_task(informer.run())
        try:
            await _until(lambda: len(seen.names(None)) == 5, "the listing")
            listed = [obj for t, _, obj in seen.events if t is None]
            assert all(o["kind"] == "ConfigMap" and o["apiVersion"] == "v1" for o in listed)
            assert "other" not in seen.names(None)  # the label selector holds

            await kube.post(path, _configmap("cm-new", "1"))
            await kube.patch(CONFIGMAPS.path(namespace, "cm-0"), {"data": {"v": "2"}})
            await kube.delete(CONFIGMAPS.path(namespace, "cm-1"))
            await _until(lambda: "cm-1" in seen.names("DELETED"), "the watch's events")
            assert seen.names("ADDED") == {"cm-new"}
            modified = [o for t, n, o in seen.events if t == "MODIFIED" and n == "cm-0"]
            assert modified[-1]["data"] == {"v": "2"}
            assert informer.lists == 1
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _vaultsecret(name: str, owner: str) -> dict[str, Any]:
    return {
        "apiVersion": VAULTSECRETS.api_version,
        "kind": "VaultSecret",
        "metadata": {
            "name": name,
            "labels": {"bench": "informer"},
            "annotations": {"owner": owner, "noise": "x" * 100},
        },
        "spec": {
            "vaultRef": {"name": "v"},
            "data": [{"secretKey": "k", "remoteRef": {"name": "s"}}],
        },
    }


async def test_a_deletion_while_not_watching_is_delivered_after_the_relist(
    kube_cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watch from a version the server no longer has ends in 410: the informer lists again
    and delivers DELETED (with the annotations it keeps) for what went meanwhile.

    VaultSecrets, not ConfigMaps: the API server's cache of a custom resource starts when its
    CRD does, so version 1 is older than anything it keeps. On a cluster started moments ago
    the cache of ConfigMaps still reaches back to version 1 and would answer."""
    apply_crds(kube_cluster.api)
    monkeypatch.setattr(informer_module, "WATCH_SECONDS", 10)  # a watch kept open fails soon
    async with KubeClient(load_config(kube_cluster.kubeconfig)) as kube:
        path = VAULTSECRETS.path(namespace)
        for name in ("stays", "goes"):
            await kube.post(path, _vaultsecret(name, owner=f"vs-{name}"))
        seen = Seen()
        informer = Informer(
            kube, path, seen, label_selector="bench=informer", annotations=("owner",)
        )
        version = await informer._list()
        await kube.delete(VAULTSECRETS.path(namespace, "goes"))
        with pytest.raises(informer_module._Expired):
            await informer._watch("1")
        await informer._list()
        gone = [o for t, n, o in seen.events if t == "DELETED" and n == "goes"]
        assert gone and gone[0]["metadata"]["annotations"] == {"owner": "vs-goes"}
        assert gone[0]["metadata"]["namespace"] == namespace
        assert "stays" not in seen.names("DELETED")
        assert informer.lists == 2 and version
