"""Which vault a request addresses, from its Host header (the way Azure uses DNS names), and
the URL its ids carry (never an arbitrary Host: see :func:`vault_url` and :func:`local_base`)."""

from __future__ import annotations

from functools import lru_cache

_SVC = ".svc"
_CLUSTER = ".svc.cluster.local"
_LOCAL = ".localhost"
#: Names of this machine: a dev server reached by one of them names it in ids as it was asked.
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]"})


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


@lru_cache(maxsize=1024)
def authority(host: str) -> str:
    """``host[:port]`` as ids spell it: the :func:`hostname` and the port (if any)."""
    host = host.strip()
    if host.startswith("["):
        rest = host[host.find("]") + 1 :] if "]" in host else ""
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, sep, port = host.rpartition(":")
        port = port if sep and ":" not in name else ""
    return f"{hostname(host)}:{port}" if port.isdigit() else hostname(host)


def vault_url(vault: str) -> str:
    """The vault's canonical URL, the prefix of its ids in the cluster: ``https://V.N.svc`` for
    vault ``V.N`` (the ``Vault``'s ``status.vaultUri``); a vault named without a namespace
    (created by hand in a data directory) is ``https://V.localhost``."""
    if vault.count(".") == 1:
        return f"https://{vault}{_SVC}"
    return f"https://{vault}{_LOCAL}"


@lru_cache(maxsize=1024)
def local_base(host: str, vault: str) -> str | None:
    """Where a server with a default vault (``kvault server --dev``) roots ``vault``'s ids for a
    request to ``host``: as asked when the host is this machine (``localhost``, ``127.0.0.1``,
    ``[::1]``) or ``<vault>.localhost``, with its port, so that a client following an id comes
    back the way it came; the canonical URL when the host is the vault's service name;
    ``None`` when the host names nothing of ours (the caller uses the server's own address)."""
    name = hostname(host)
    if name in _LOOPBACK or name == vault + _LOCAL:
        return "https://" + authority(host)
    if vault_for_host(host, None) == vault:
        return vault_url(vault)
    return None
