"""The CLI's third token source: a TokenRequest for a ServiceAccount via the kubeconfig.

``kubectl create token SA --audience kvault``, done for you: whoever may create tokens for a
ServiceAccount may act as it, which is the identity rule kvault follows everywhere.
"""

from __future__ import annotations

import asyncio

from kvault.cli.errors import EXIT_AUTH, CliError
from kvault.errors import KvaultError
from kvault.identity.tokenrequest import TokenRequestRefused, request_token

AUDIENCE = "kvault"
LIFETIME = 600


async def _request(namespace: str | None, service_account: str, kubeconfig: str | None) -> str:
    ns, token = await request_token(
        namespace, service_account, kubeconfig, audience=AUDIENCE, lifetime=LIFETIME
    )
    if token is None:
        raise CliError(f"the TokenRequest for {ns}/{service_account} returned no token", EXIT_AUTH)
    return token


def service_account_token(
    namespace: str | None, service_account: str, kubeconfig: str | None = None
) -> str:
    """A short-lived token (audience ``kvault``) for ``namespace/service_account``."""
    try:
        return asyncio.run(_request(namespace, service_account, kubeconfig))
    except TokenRequestRefused as exc:
        raise CliError(
            f"cannot get a token for ServiceAccount {service_account} through the kubeconfig: "
            f"{exc}",
            EXIT_AUTH,
        ) from None
    except KvaultError as exc:
        raise CliError(f"no token: {exc.message}", EXIT_AUTH) from None
