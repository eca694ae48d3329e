"""``maxresults`` and ``nextLink``: Azure's paging, with our continuation token."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from kvault.errors import BadParameter

MAX_RESULTS = 25
SKIP_TOKEN = "$skiptoken"
#: A listing's filter, carried into its ``nextLink`` (the SDKs follow the link as given).
INCLUDE_PENDING = "includePending"


def max_results(query: Mapping[str, str]) -> int | None:
    raw = query.get("maxresults")
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_RESULTS:
        raise BadParameter(f"maxresults must be an integer from 1 to {MAX_RESULTS}")
    return int(raw)


def skip_token(query: Mapping[str, str]) -> str | None:
    return query.get(SKIP_TOKEN) or None


def next_link(
    base: str, path: str, query: Mapping[str, str], token: str | None, size: int | None
) -> str | None:
    """An absolute URL on the same authority (so the client's cached challenge applies)."""
    if token is None:
        return None
    params = {"api-version": query.get("api-version", ""), SKIP_TOKEN: token}
    if size is not None:
        params["maxresults"] = str(size)
    if query.get(INCLUDE_PENDING):
        params[INCLUDE_PENDING] = query[INCLUDE_PENDING]
    return f"{base}{path}?{urlencode(params, safe='$')}"
