"""A token for a ServiceAccount through a kubeconfig (TokenRequest): whoever may create tokens
for a ServiceAccount may act as it, the identity rule kvault follows everywhere."""

from __future__ import annotations

from kvault.errors import KvaultError
from kvault.kube import tokens
from kvault.kube.client import KubeClient, load_config
from kvault.kube.errors import ApiError


class TokenRequestRefused(KvaultError):
    """The API server refused the TokenRequest (its status text, never a token)."""

    code = "TokenRequestRefused"


async def request_token(
    namespace: str | None,
    service_account: str,
    kubeconfig: str | None,
    *,
    audience: str,
    lifetime: int,
) -> tuple[str, str | None]:
    """(the namespace used, a token bound to ``audience`` or None if the reply held none);
    ``namespace`` defaults to the kubeconfig's."""
    config = load_config(kubeconfig)
    ns = namespace or config.namespace
    async with KubeClient(config) as kube:
        try:
            token = await tokens.request(kube, ns, service_account, [audience], lifetime)
        except ApiError as exc:
            raise TokenRequestRefused(str(exc)) from None
    return ns, token
