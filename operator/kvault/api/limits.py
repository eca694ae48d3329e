"""How much a client may hold of the data plane: sizes of a request, how long each part of it
may take, and how many connections one address and everyone together may keep open.

Import-free on purpose: the command line shows these defaults without loading aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Bodies are small JSON (values are at most 25 KiB); anything declared larger is refused
#: with 413 before a byte of it is read, anything sent larger (chunked) once it passes this.
MAX_BODY = 256 * 1024
#: The request target (path and query) of the request line, in bytes: longer is 414.
MAX_URL = 8192
#: One header line (name and value), in bytes: longer is 431. It differs from ``MAX_URL`` so
#: that the parser's one "line too long" error tells which of the two was too long.
MAX_HEADER_LINE = 8190
#: Header lines in one request: more is 431.
MAX_HEADERS = 128
#: The whole head of one request (request line and headers), in bytes: more is 431, so that a
#: connection cannot pin 128 lines of 8 KiB each.
MAX_HEAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Timeouts and connection caps of one listener (``kvault server``/``operator`` flags)."""

    #: Seconds from a connection's start (its TLS handshake included), or from the first byte
    #: of a later request, until the request's headers are complete.
    header_timeout: float = 10.0
    #: Seconds from the end of the headers until the whole body has arrived.
    body_timeout: float = 30.0
    #: Seconds a keep-alive connection may wait, idle, for its next request.
    idle_timeout: float = 75.0
    #: Open connections in total (TLS handshakes under way included); more are closed at once.
    max_connections: int = 10_000
    #: Open connections from one client address; more are closed at once.
    max_connections_per_client: int = 256

    def problems(self) -> list[str]:
        """What is wrong with these settings (empty when nothing), in flag terms."""
        out = []
        for flag, seconds in (
            ("--header-timeout", self.header_timeout),
            ("--body-timeout", self.body_timeout),
            ("--idle-timeout", self.idle_timeout),
        ):
            if not seconds > 0:
                out.append(f"{flag} must be more than 0 seconds, got {seconds}")
        for flag, count in (
            ("--max-connections", self.max_connections),
            ("--max-connections-per-client", self.max_connections_per_client),
        ):
            if count < 1:
                out.append(f"{flag} must be at least 1, got {count}")
        return out
