"""The data plane's connection caps and deadlines as the command line spells them (light:
``kvault --help`` shows the defaults without loading the server)."""

from __future__ import annotations

from kvault.api.limits import ConnectionLimits
from kvault.errors import ConfigError

__all__ = ["DEFAULT_CONNECTIONS", "ConnectionLimits", "connection_limits"]

DEFAULT_CONNECTIONS = ConnectionLimits()


def connection_limits(
    *,
    header_timeout: float,
    body_timeout: float,
    idle_timeout: float,
    max_connections: int,
    max_connections_per_client: int,
) -> ConnectionLimits:
    """The settings, checked; :class:`ConfigError` names the first flag that is wrong."""
    limits = ConnectionLimits(
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_connections_per_client=max_connections_per_client,
    )
    problems = limits.problems()
    if problems:
        raise ConfigError(problems[0])
    return limits
