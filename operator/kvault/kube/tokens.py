"""Tokens through the API server: TokenReview (is this bearer token valid, and for whom) and
TokenRequest (a short-lived token for a ServiceAccount, as ``kubectl create token``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kvault.kube.client import KubeClient
from kvault.kube.resources import SERVICEACCOUNTS, TOKENREVIEWS


async def review(kube: KubeClient, token: str, audiences: Sequence[str]) -> dict[str, Any]:
    """The ``status`` of a TokenReview of ``token`` for ``audiences`` (``{}`` if none)."""
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": list(audiences)},
    }
    reply = await kube.post(TOKENREVIEWS.path(), body)
    status = reply.get("status") or {}
    return status if isinstance(status, dict) else {}


async def request(
    kube: KubeClient, namespace: str, service_account: str, audiences: Sequence[str], seconds: int
) -> str | None:
    """A token for ``namespace/service_account`` bound to ``audiences``; None if the reply
    held none."""
    body = {"spec": {"audiences": list(audiences), "expirationSeconds": seconds}}
    reply = await kube.post(SERVICEACCOUNTS.path(namespace, service_account, "token"), body)
    token = (reply.get("status") or {}).get("token")
    return token if isinstance(token, str) and token else None
