"""The Go tools come from the version-keyed cache: a second ``ensure`` builds nothing."""

from __future__ import annotations

import subprocess
import sys
import time

from e2e import tools


def test_helm_is_the_pinned_release() -> None:
    started = time.monotonic()
    path = tools.ensure("helm")  # `make install` built it; here it must only be found
    assert time.monotonic() - started < 5
    out = subprocess.run([str(path), "version", "--short"], capture_output=True, text=True)
    assert out.stdout.strip() == tools.HELM_VERSION


def test_cli_prints_cached_paths() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "e2e.tools", "path", "coredns"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert out.stdout.strip().endswith(f"coredns/{tools.COREDNS_VERSION}/bin/coredns")
    bad = subprocess.run(
        [sys.executable, "-m", "e2e.tools", "build", "nope"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "unknown tools" in bad.stderr
