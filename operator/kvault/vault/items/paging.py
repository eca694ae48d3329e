"""Page sizes and continuation tokens of the item listings (the token is the last key part)."""

from __future__ import annotations

import base64
from collections.abc import Callable

from kvault.errors import BadParameter

MAX_PAGE = 25


def page_size(max_results: int | None) -> int:
    if max_results is None:
        return MAX_PAGE
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise BadParameter("maxresults must be an integer")
    if not 1 <= max_results <= MAX_PAGE:
        raise BadParameter(f"maxresults must be 1-{MAX_PAGE}, got {max_results}")
    return max_results


def token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode().rstrip("=")


def start_after(value: str | None, check: Callable[[str], str]) -> str | None:
    """The key part a token names, checked like a name (a forged token is a 400)."""
    if not value:
        return None
    try:
        return check(base64.urlsafe_b64decode(value.encode() + b"==").decode())
    except (ValueError, BadParameter):
        raise BadParameter("the continuation token is not valid") from None
