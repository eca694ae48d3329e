"""Which vault a request addresses, from its Host header (the way Azure uses DNS names)."""

from __future__ import annotations

from functools import lru_cache

_SVC = ".svc"
_CLUSTER = ".svc.cluster.local"
_LOCAL = ".localhost"


def hostname(host: str) -> str:
    """``host[:port]`` without the port, lower-cased, without a trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        return host[: host.find("]") + 1] if "]" in host else host
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        host = name
    return host.rstrip(".")


@lru_cache(maxsize=1024)
def vault_for_host(host: str, default: str | None) -> str | None:
    """``V.N.svc[.cluster.local]`` -> ``V.N``; ``<labels>.localhost`` -> ``<labels>``; anything
    else -> ``default`` (the dev server's vault), or ``None`` when there is none."""
    name = hostname(host)
    for suffix in (_CLUSTER, _SVC):
        if name.endswith(suffix):
            labels = name[: -len(suffix)]
            if labels.count(".") == 1 and all(labels.split(".")):
                return labels
            return default
    if name.endswith(_LOCAL) and len(name) > len(_LOCAL):
        return name[: -len(_LOCAL)]
    return default


@lru_cache(maxsize=1024)
def challenge_resource(host: str) -> str:
    """The ``resource`` of the 401 challenge: ``https://N.svc`` for ``V.N.svc`` hosts, so that a
    client verifying the resource sees the vault as a sub-domain; else the host itself."""
    name = hostname(host)
    for suffix in (_CLUSTER, _SVC):
        if name.endswith(suffix):
            labels = name[: -len(suffix)].split(".")
            if len(labels) == 2 and all(labels):
                return f"https://{labels[1]}{suffix}"
    return f"https://{name}"
