"""A small HTTPS client for the data plane (stdlib only: the CLI starts fast, needs no SDK)."""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from kvault.cli.errors import (
    EXIT_AUTH,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
)

API_VERSION = "7.5"


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str  # https://host:port of the kvault data plane
    token: str
    ca_file: str | None
    vault_host: str  # the Host header that names the vault, e.g. "dev.localhost"


class DataPlane:
    """Requests against one vault; follows the Azure error shape into :class:`CliError`."""

    def __init__(self, endpoint: Endpoint, timeout: float = 30.0) -> None:
        parts = urlsplit(endpoint.url)
        if parts.scheme != "https" or not parts.hostname:
            raise CliError(
                f"KVAULT_ENDPOINT must be an https:// URL, got {endpoint.url!r}", EXIT_USAGE
            )
        try:
            context = ssl.create_default_context(cafile=endpoint.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise CliError(f"cannot load CA file {endpoint.ca_file}: {exc}", EXIT_USAGE) from None
        context.check_hostname = False  # the vault is named by the Host header, not the URL
        self._endpoint = endpoint
        self._conn = http.client.HTTPSConnection(
            parts.hostname, parts.port or 443, context=context, timeout=timeout
        )

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def reaching(self) -> Iterator[None]:
        """Connection and TLS failures of the block as the CLI's "unreachable" error."""
        try:
            yield
        except ssl.SSLCertVerificationError as exc:
            raise CliError(
                f"TLS verification of {self._endpoint.url} failed ({exc.verify_message}); "
                "set KVAULT_CA_FILE to kvault's CA certificate",
                EXIT_UNREACHABLE,
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise CliError(
                f"cannot reach {self._endpoint.url}: {exc or type(exc).__name__}",
                EXIT_UNREACHABLE,
            ) from None

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; return the parsed JSON body (``None`` for 204)."""
        params = {"api-version": API_VERSION, **(query or {})}
        target = path if "?" in path else f"{path}?{urlencode(params)}"
        headers = {
            "Host": self._endpoint.vault_host,
            "Authorization": f"Bearer {self._endpoint.token}",
            "Accept": "application/json",
            "x-ms-client-request-id": str(uuid.uuid4()),
        }
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        with self.reaching():
            self._conn.request(method, target, body=payload, headers=headers)
            response = self._conn.getresponse()
            raw = response.read()
        if response.status == 204 or not raw:
            if response.status >= 400:
                raise CliError(f"({response.status}) {response.reason}", EXIT_FAILED)
            return None
        try:
            doc = json.loads(raw)
        except ValueError:
            raise CliError(
                f"the service answered {response.status} with a body that is not JSON", EXIT_FAILED
            ) from None
        if response.status >= 400:
            raise _error(response.status, doc)
        return doc

    def pages(self, path: str, query: dict[str, str] | None = None) -> list[Any]:
        """Every item of a paged listing, following ``nextLink``."""
        items: list[Any] = []
        doc = self.request("GET", path, query=query)
        while True:
            items.extend(doc.get("value") or [])
            link = doc.get("nextLink")
            if not link:
                return items
            parts = urlsplit(link)
            doc = self.request("GET", f"{parts.path}?{parts.query}")


def _error(status: int, doc: Any) -> CliError:
    error = doc.get("error", {}) if isinstance(doc, dict) else {}
    code = error.get("code") or str(status)
    inner = (error.get("innererror") or {}).get("code")
    message = " ".join(str(error.get("message") or "").split())  # one line
    label = f"({inner or code})"
    exit_code = {401: EXIT_AUTH, 404: EXIT_NOT_FOUND}.get(status, EXIT_FAILED)
    return CliError(f"{label} {message}".strip(), exit_code)
