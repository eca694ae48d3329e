"""Who a VaultSecret acts as: a ServiceAccount of its own namespace, which must exist."""

from __future__ import annotations

import time

from kvault.controller.vaultsecret.outcome import Refused
from kvault.identity.model import Principal, service_account
from kvault.kube import objects
from kvault.kube.client import KubeClient

SA_CACHE_SECONDS = 30.0


def principal_for(ns: str, sa: str) -> Principal:
    """The identity a pod of ``sa`` would present (TokenReview's user and groups)."""
    return Principal(
        service_account(ns, sa),
        groups=("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"),
    )


class ServiceAccounts:
    """Checks that a ServiceAccount exists, remembering a success for ``SA_CACHE_SECONDS``
    (thousands of VaultSecrets share a few ServiceAccounts)."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self._seen: dict[tuple[str, str], float] = {}

    async def check(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        seen = self._seen.get(key)
        if seen is not None and time.monotonic() - seen < SA_CACHE_SECONDS:
            return
        if await objects.service_account(self.kube, namespace, name) is None:
            self._seen.pop(key, None)
            raise Refused(
                "ServiceAccountNotFound",
                f"ServiceAccount {namespace}/{name} does not exist; the VaultSecret "
                "acts as that identity",
            )
        self._seen[key] = time.monotonic()
