"""One authenticated aiohttp session to the API server: JSON in, JSON out, error statuses as
the classes of :mod:`kvault.kube.errors`.

kvault needs only a handful of API calls, so this is a thin transport rather than a generated
client; the calls themselves live beside it, one module per concern (objects, events, lease,
tokens). The configuration names are re-exported for older importers.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, cast

import aiohttp
import orjson

from kvault.errors import ConfigError, Unavailable
from kvault.kube.config import (
    SA_DIR,
    KubeConfig,
    from_kubeconfig,
    in_cluster,
    key_paths,
    load_config,
    ssl_context,
)
from kvault.kube.errors import ApiError, KubeApiError

#: A token file (in-cluster, bound and rotated by the kubelet) is re-read this often.
TOKEN_FILE_TTL = 60.0
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
_key_paths = key_paths

__all__ = [
    "APPLY_PATCH",
    "JSON_PATCH",
    "MERGE_PATCH",
    "SA_DIR",
    "ApiError",
    "KubeApiError",
    "KubeClient",
    "KubeConfig",
    "from_kubeconfig",
    "in_cluster",
    "key_paths",
    "load_config",
    "ssl_context",
]


class KubeClient:
    """One authenticated aiohttp session to the API server; JSON in, JSON out.

    Transport failures raise :class:`Unavailable`; error statuses raise the
    :class:`~kvault.kube.errors.ApiError` of their status.
    """

    def __init__(self, config: KubeConfig, *, timeout: float = 10.0) -> None:
        self.config = config
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ssl = ssl_context(config)
        self._session: aiohttp.ClientSession | None = None
        self._file_token: tuple[float, str] | None = None

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _token(self) -> str | None:
        if self.config.token:
            return self.config.token
        if self.config.token_file is None:
            return None
        now = time.monotonic()
        if self._file_token is None or now - self._file_token[0] > TOKEN_FILE_TTL:
            try:
                token = self.config.token_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the Kubernetes token file {self.config.token_file}: "
                    f"{exc.strerror or type(exc).__name__}"
                ) from None
            self._file_token = (now, token)
        return self._file_token[1]

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=self._ssl),
                headers={"Accept": "application/json", "User-Agent": "kvault"},
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | list[Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """``method`` ``path`` (e.g. ``/api/v1/namespaces``) with a JSON body; the JSON reply.

        ``content_type`` selects the patch flavour (merge, JSON or server-side apply); the
        body is always sent as JSON, which every flavour (apply's YAML too) accepts."""
        headers = {}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = orjson.dumps(body)
        url = self.config.server + path
        try:
            async with self._open().request(
                method, url, data=data, params=params, headers=headers
            ) as resp:
                if resp.status >= 400:
                    raise ApiError(resp.status, resp.reason or "", await _status_message(resp))
                reply = orjson.loads(await resp.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unavailable(
                f"the Kubernetes API at {self.config.server} is unreachable: {type(exc).__name__}"
            ) from None
        except ValueError:
            raise Unavailable(f"the Kubernetes API at {url} answered with invalid JSON") from None
        if not isinstance(reply, dict):
            raise Unavailable(f"the Kubernetes API at {url} answered with a non-object")
        return cast(dict[str, Any], reply)

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body=body)

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return await self.request("GET", path, params=params)

    async def patch(
        self,
        path: str,
        body: Mapping[str, Any] | list[Any],
        *,
        content_type: str = MERGE_PATCH,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """PATCH with a merge patch (default), a JSON patch, or server-side apply."""
        return await self.request(
            "PATCH", path, body=body, params=params, content_type=content_type
        )

    async def apply(
        self, path: str, body: Mapping[str, Any], *, field_manager: str, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply of ``body`` as ``field_manager`` (the object's full intent)."""
        params = {"fieldManager": field_manager, "force": "true" if force else "false"}
        return await self.patch(path, body, content_type=APPLY_PATCH, params=params)

    async def delete(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return await self.request("DELETE", path, body=body)

    @property
    def tls(self) -> ssl.SSLContext:
        """The TLS context to the API server (CA and client certificate), for other clients
        of the same server such as kopf's watches."""
        return self._ssl

    def session(self) -> aiohttp.ClientSession:
        """The authenticated session (e.g. for a watch or to hand to kopf)."""
        return self._open()

    def auth_headers(self) -> dict[str, str]:
        token = self._token()
        return {"Authorization": f"Bearer {token}"} if token else {}


async def _status_message(resp: aiohttp.ClientResponse) -> str:
    """The ``message`` of a ``Status`` reply, short; never the request."""
    try:
        doc = await resp.json(content_type=None)
        message = str(doc.get("message", "")) if isinstance(doc, dict) else ""
    except (ValueError, aiohttp.ClientError):
        message = ""
    return message[:300]
