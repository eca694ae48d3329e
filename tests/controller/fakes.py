"""What the notice tests share: a Vault body and a Kubernetes API that records its calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kvault.kube.client import KubeApiError


def vault_body(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kvault.io/v1alpha1",
        "kind": "Vault",
        "metadata": {"namespace": ns, "name": name, "uid": f"uid-{name}"},
    }


class FakeApi:
    def __init__(self, objects: Mapping[str, dict[str, Any]]) -> None:
        self.objects = dict(objects)
        self.gets: list[str] = []
        self.posts: list[tuple[str, dict[str, Any]]] = []

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        self.gets.append(path)
        if path not in self.objects:
            raise KubeApiError(404, "Not Found", "not found")
        return self.objects[path]

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.posts.append((path, dict(body)))
        return dict(body)
