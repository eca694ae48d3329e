"""Option and secret-file helpers shared by the HSM plugins.

Plugins take flat string options (CLI flags, env, Helm values), so typos must fail loudly
instead of silently falling back to a default.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from kvault.errors import ConfigError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def check_known(plugin: str, options: Mapping[str, str], known: Iterable[str]) -> None:
    """Refuse options the plugin does not understand (a misspelt ``key_file`` would otherwise
    silently generate a fresh root key)."""
    allowed = set(known)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"{plugin} HSM: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(allowed))}"
        )


def parse_bool(plugin: str, name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"{plugin} HSM: option {name} must be true or false, got {value!r}")


def check_private(path: Path, st: os.stat_result, what: str) -> None:
    """Refuse a secret file that group or others can access, as ssh does for private keys."""
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{what} {path} is accessible by group/others (mode {mode:04o}); "
            f"it holds secret key material: run `chmod 600 {path}`"
        )


def read_secret_file(path: Path, what: str) -> bytes:
    """Read a small secret file, naming the file (never its content) in errors."""
    try:
        with path.open("rb") as f:
            check_private(path, os.fstat(f.fileno()), what)
            return f.read()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory, expected a file") from None
    except PermissionError:
        raise ConfigError(f"{what} {path} is not readable by this process") from None
