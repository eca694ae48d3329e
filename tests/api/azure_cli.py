"""The real Azure CLI (``azure-cli`` from PyPI, unmodified) as a test client of the data plane.

It is installed once per version into its own venv outside the repository,
``<cache>/azure-cli/<version>/venv`` (``<cache>``: ``$KVAULT_CACHE_DIR`` or
``~/.cache/kvault``), under a lock so that concurrent sessions install it once; a
``.installed`` marker written last means the venv is complete (a venv cannot be moved once
built: its scripts name their interpreter by absolute path). The first install takes one to
two minutes and about 730 MB.

``az`` reaches a vault as ``https://<vault><suffix>``, so ``<vault>.localhost`` must resolve
to this machine. Where it does not (no systemd-resolved or nss-myhostname) and we are root,
each command runs in a private mount namespace with a copy of ``/etc/hosts`` that adds the
names bound over it (``unshare -m``): the machine's own file is never changed. Otherwise the
tests are skipped with the line to add to ``/etc/hosts``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: The version the azure-cli notes measured; ``KVAULT_AZURE_CLI_VERSION`` tries another.
AZURE_CLI_VERSION = os.environ.get("KVAULT_AZURE_CLI_VERSION", "2.91.0")
#: Where ``kvault`` (this checkout's console script) is.
KVAULT_BIN = Path(sys.executable).parent
_LOOPBACK = {"127.0.0.1", "::1"}


def cache_root() -> Path:
    return Path(os.environ.get("KVAULT_CACHE_DIR", Path.home() / ".cache" / "kvault"))


def install(version: str = AZURE_CLI_VERSION) -> Path:
    """The ``bin`` directory of a venv holding ``azure-cli==version`` (installed if absent)."""
    root = cache_root() / "azure-cli" / version
    venv = root / "venv"
    marker = root / ".installed"
    if marker.exists():
        return venv / "bin"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return venv / "bin"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"azure-cli=={version}",
            ],
            check=True,
            timeout=1800,
        )
        marker.write_text(version + "\n")
    return venv / "bin"


def _resolves_to_loopback(name: str) -> bool:
    try:
        found = {str(a[4][0]) for a in socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)}
    except OSError:
        return False
    return bool(found) and found <= _LOOPBACK


def hosts_prefix(names: Sequence[str], directory: Path) -> list[str]:
    """What to put before a command so that ``names`` resolve to 127.0.0.1 (see the module
    docstring); skips the test when that cannot be arranged."""
    missing = [n for n in names if not _resolves_to_loopback(n)]
    if not missing:
        return []
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip(
            f"{', '.join(missing)} must resolve to 127.0.0.1 for az --vault-name: add "
            f"'127.0.0.1 {' '.join(missing)}' to /etc/hosts (or run as root)"
        )
    hosts = directory / "hosts"
    base = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else ""
    hosts.write_text(base.rstrip("\n") + "\n" + "".join(f"127.0.0.1 {n}\n" for n in missing))
    # unshare -m makes the new namespace's mounts private: the bind never reaches the host.
    return ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]


@dataclass
class Az:
    """Runs ``az`` (and shell scripts that use it) with a config directory of its own."""

    bin_dir: Path
    config_dir: Path
    prefix: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AZURE_", "KVAULT_", "REQUESTS_CA_BUNDLE", "MSAL_"))
        }
        path = os.pathsep.join([str(self.bin_dir), str(KVAULT_BIN), keep.get("PATH", "")])
        return {
            **keep,
            "PATH": path,
            "AZURE_CONFIG_DIR": str(self.config_dir),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "false",
            **self.env,
            **(extra or {}),
        }

    def run(
        self, *args: str, check: bool = True, cwd: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """``az ARGS``; with ``check``, a non-zero exit fails the test with what az said."""
        return self._run(["az", *args], check=check, cwd=cwd, timeout=timeout)

    def bash(self, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(["bash", "-euo", "pipefail", "-c", script], check=check, timeout=300)

    def _run(
        self, argv: list[str], *, check: bool, cwd: Path | None = None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        env = self.environment()
        executable = shutil.which(argv[0], path=env["PATH"]) or argv[0]
        done = subprocess.run(
            [*self.prefix, executable, *argv[1:]],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            pytest.fail(
                f"{' '.join(argv)[:300]} exited {done.returncode}\n"
                f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
            )
        return done
