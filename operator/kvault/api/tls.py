"""The data plane's TLS: a default server certificate plus one per SNI vault name.

Certificates come from kvault's CA (:mod:`kvault.crypto.authority`) at start-up and per SNI
name on demand, and are kept only in memory-backed SSL contexts; their key files are written
0600 into ``tls/`` because :mod:`ssl` loads certificates only from files.
"""

from __future__ import annotations

import re
import ssl
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from kvault.crypto.authority import CA_CERT as CA_CERT
from kvault.crypto.authority import CA_KEY as CA_KEY
from kvault.crypto.authority import CertificateAuthority as CertificateAuthority
from kvault.crypto.pem import write_private

#: OpenSSL ignores ``*.localhost`` (a wildcard needs two labels after it); it is there for
#: other clients, and SNI gets each ``<labels>.localhost`` a certificate of its own.
_DEV_NAMES = ("localhost", "*.localhost", "dev.localhost", "127.0.0.1", "::1")
#: SNI names that get a certificate of their own: vault service names and dev sub-domains.
_SNI_NAME = re.compile(
    r"[a-z0-9-]{1,63}\.[a-z0-9-]{1,63}\.svc(\.cluster\.local)?|([a-z0-9-]{1,63}\.){1,2}localhost"
)
_SNI_CACHE = 256


class ServerTLS:
    """The server's SSL context: a default certificate plus one per SNI vault name."""

    def __init__(
        self, ca: CertificateAuthority, directory: Path, names: Sequence[str] = _DEV_NAMES
    ) -> None:
        self.ca = ca
        self._dir = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._names = tuple(names)
        self._lock = threading.Lock()
        self._by_name: OrderedDict[str, ssl.SSLContext] = OrderedDict()
        self.context = self._context("default", self._names)
        self.context.sni_callback = self._sni

    def _context(self, label: str, names: Sequence[str]) -> ssl.SSLContext:
        chain, key = self.ca.issue(names)
        cert_file, key_file = self._dir / f"{label}.pem", self._dir / f"{label}-key.pem"
        write_private(key_file, key)
        cert_file.write_bytes(chain)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(cert_file, key_file)
        finally:  # loaded into memory: the files have done their job
            key_file.unlink(missing_ok=True)
            cert_file.unlink(missing_ok=True)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def _sni(
        self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext
    ) -> None:
        """Switch to a certificate naming ``name`` when it is a vault host the default one
        does not cover (``V.N.svc``, ``a.b.localhost``); other names get the default."""
        if not name:
            return
        name = name.lower().rstrip(".")
        if name in self._names or not _SNI_NAME.fullmatch(name):
            return
        with self._lock:
            ctx = self._by_name.get(name)
            if ctx is None:
                ctx = self._context(f"sni-{len(self._by_name)}-{name}", [name])
                self._by_name[name] = ctx
                if len(self._by_name) > _SNI_CACHE:
                    self._by_name.popitem(last=False)
            else:
                self._by_name.move_to_end(name)
        sock.context = ctx
