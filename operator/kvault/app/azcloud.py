"""``kvault az-cloud``: the shell lines that point an unmodified Azure CLI at kvault.

The Azure CLI supports custom clouds: a sign-in authority, a Resource Manager URL and a key
vault DNS suffix. kvault serves all three on its data-plane listener (``/{tenant}/v2.0/...``
and ``/{tenant}/oauth2/v2.0/token`` for MSAL, ``/arm/...`` for the subscription ``az login``
lists), and its vaults answer as ``<vault><suffix>`` (``dev.localhost:8443`` on the dev
server, ``<vault>.<namespace>.svc`` in a cluster). What the lines do, in order:

* export ``REQUESTS_CA_BUNDLE`` (kvault's CA: every az call honours it, nothing else does),
  ``AZURE_CORE_INSTANCE_DISCOVERY=false`` (else MSAL asks login.microsoftonline.com about the
  authority first) and ``AZURE_CORE_COLLECT_TELEMETRY=false`` — in this shell only;
* ``az cloud register`` the cloud (``update`` when it is there) with kvault's endpoints;
* ``export AZURE_CLOUD_NAME`` (this shell uses it; ``az cloud set`` would switch every shell);
* ``az login --service-principal --federated-token``: on the dev server the root token, which
  its token endpoint accepts as the assertion; in a cluster a ServiceAccount token of audience
  ``kvault`` from ``kubectl create token``, exchanged at the token endpoint like a pod's.

Nothing here talks to the server: the lines are built from the endpoint and the CA file.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from kvault.api.config import DEV_TENANT
from kvault.api.routes_arm import ARM
from kvault.errors import BadParameter

#: The cloud's name in the Azure CLI.
DEFAULT_CLOUD = "kvault"
#: ``--username`` of ``az login``: the OAuth client id, recorded in kvault tokens (``azp``) and
#: the audit trail; the identity is the token's.
DEFAULT_CLIENT_ID = "kvault-cli"
#: The dev server's vaults are ``<vault>.localhost[:port]``.
_DEV_SUFFIX = ".localhost"
TOKEN_AUDIENCE = "kvault"


@dataclass(frozen=True, slots=True)
class AzCloud:
    #: The data plane's URL as this machine reaches it (``KVAULT_ENDPOINT``).
    endpoint: str
    #: kvault's CA certificate (``KVAULT_CA_FILE``), or ``None`` when the system trusts it.
    ca_file: str | None
    #: A cluster's namespace: its vaults are ``<vault>.<namespace>.svc``. ``None``: the dev
    #: server (``<vault>.localhost``).
    namespace: str | None = None
    #: The ServiceAccount whose token signs in (cluster only).
    service_account: str = "default"
    #: ``az login --federated-token`` takes this shell word (quoted as given): the default is
    #: ``"$KVAULT_TOKEN"`` on the dev server and a ``kubectl create token`` in a cluster.
    token_word: str | None = None
    cloud: str = DEFAULT_CLOUD
    tenant: str = DEV_TENANT
    client_id: str = DEFAULT_CLIENT_ID

    def base(self) -> str:
        """``https://host[:port]`` of :attr:`endpoint` (path, query and fragment refused)."""
        parts = urlsplit(self.endpoint.strip())
        if parts.scheme != "https" or not parts.hostname:
            raise BadParameter(
                f"the endpoint must be an https:// URL (the Azure CLI sends tokens over TLS "
                f"only): {self.endpoint!r}"
            )
        if parts.path.strip("/") or parts.query or parts.fragment or parts.username:
            raise BadParameter(f"the endpoint must be https://host[:port] only: {self.endpoint!r}")
        return f"https://{parts.netloc.lower()}"

    def suffix(self) -> str:
        """The key vault DNS suffix: ``.localhost`` or ``.<namespace>.svc``, with the
        endpoint's port unless it is 443 (the CLI concatenates ``https://<vault><suffix>``)."""
        port = urlsplit(self.endpoint.strip()).port
        tail = f":{port}" if port not in (None, 443) else ""
        if self.namespace is None:
            return _DEV_SUFFIX + tail
        return f".{self.namespace}.svc{tail}"

    def federated_token(self) -> str:
        if self.token_word is not None:
            return self.token_word
        if self.namespace is None:
            return '"$KVAULT_TOKEN"'
        command = shlex.join(
            [
                "kubectl",
                "create",
                "token",
                self.service_account,
                "--namespace",
                self.namespace,
                "--audience",
                TOKEN_AUDIENCE,
            ]
        )
        return f'"$({command})"'

    def register_args(self) -> list[str]:
        base = self.base()
        arm = f"{base}{ARM}/"
        return [
            "--name",
            self.cloud,
            "--endpoint-active-directory",
            base,
            "--endpoint-active-directory-resource-id",
            arm,
            "--endpoint-resource-manager",
            arm,
            "--suffix-keyvault-dns",
            self.suffix(),
            "--skip-endpoint-discovery",
        ]


def script(cloud: AzCloud) -> list[str]:
    """The lines, for ``eval "$(kvault az-cloud)"`` (POSIX shell)."""
    exports = [
        *([f"REQUESTS_CA_BUNDLE={shlex.quote(cloud.ca_file)}"] if cloud.ca_file else []),
        "AZURE_CORE_INSTANCE_DISCOVERY=false",
        "AZURE_CORE_COLLECT_TELEMETRY=false",
    ]
    args = shlex.join(cloud.register_args())
    name = shlex.quote(cloud.cloud)
    login: Sequence[str] = [
        "az",
        "login",
        "--service-principal",
        "--username",
        cloud.client_id,
        "--tenant",
        cloud.tenant,
        "--federated-token",
    ]
    return [
        "export " + " ".join(exports),
        f"if az cloud show --name {name} --output none 2>/dev/null; "
        f"then az cloud update {args} --output none; else az cloud register {args}; fi",
        f"export AZURE_CLOUD_NAME={name}",
        f"{shlex.join(login)} {cloud.federated_token()}",
    ]
