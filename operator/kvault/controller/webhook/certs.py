"""The webhook's serving certificate, issued by kvault's CA for ``<service>.<ns>.svc``.

It is re-issued when two thirds of its validity have passed and swapped into new TLS
handshakes through the SNI callback, so a rotation needs no restart and no new socket.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
import time
from collections.abc import Sequence

from kvault.crypto.authority import CertificateAuthority
from kvault.kube.config import key_paths as _key_paths

log = logging.getLogger(__name__)
DEFAULT_VALIDITY = dt.timedelta(days=30)


def service_names(service: str, namespace: str) -> list[str]:
    """The names the API server may dial (it uses ``<service>.<ns>.svc`` as SNI)."""
    return [
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
        f"{service}.{namespace}",
        service,
    ]


class RotatingCert:
    """A server SSL context whose certificate is renewed in place."""

    def __init__(
        self,
        ca: CertificateAuthority,
        names: Sequence[str],
        validity: dt.timedelta = DEFAULT_VALIDITY,
    ) -> None:
        self._ca = ca
        self._names = list(names)
        self._validity = validity
        self._current = self._issue()
        self.context = self._issue()  # the listener's; handshakes switch to ``_current``
        self.context.sni_callback = self._sni
        self.renewals = 0

    def _issue(self) -> ssl.SSLContext:
        chain, key = self._ca.issue(self._names, self._validity)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        with _key_paths(chain, key) as (cert_file, key_file):  # memfd: the key stays off disk
            ctx.load_cert_chain(cert_file, key_file)
        ctx.set_alpn_protocols(["http/1.1"])
        self._issued = time.monotonic()
        return ctx

    def _sni(self, sock: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _: object) -> None:
        sock.context = self._current

    def renew(self) -> None:
        self._current = self._issue()
        self.renewals += 1

    def due_in(self) -> float:
        """Seconds until the renewal (at two thirds of the validity)."""
        return max(0.0, self._issued + self._validity.total_seconds() * 2 / 3 - time.monotonic())

    async def keep_fresh(self) -> None:
        """Renew before expiry, forever (cancel to stop)."""
        while True:
            await asyncio.sleep(self.due_in())
            self.renew()
            log.info("webhook certificate renewed (%d so far)", self.renewals)
