"""Find HSM plugins by entry point, so third parties can add one without touching kvault."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points

from kvault.errors import ConfigError
from kvault.hsm.base import HSM

GROUP = "kvault.hsm"


def available() -> list[str]:
    """Names of the installed plugins."""
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load(name: str, options: Mapping[str, str]) -> HSM:
    """Build the plugin ``name`` from its options (not yet opened)."""
    found = entry_points(group=GROUP, name=name)
    if not found:
        raise ConfigError(f"unknown HSM plugin {name!r}; installed: {', '.join(available())}")
    (ep,) = tuple(found)
    cls = ep.load()
    plugin: HSM = cls.from_options(options)
    return plugin
