"""How a server process logs: plain text for the servers, JSON lines for the operator."""

from __future__ import annotations

import logging

from kvault.controller.logs import configure as json_lines

__all__ = ["json_lines", "plain"]


def plain() -> None:
    """Timestamped text lines on stderr (``kvault server``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
