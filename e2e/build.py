"""Build Kubernetes and etcd binaries from the Go module proxy, cached by version.

``go install k8s.io/kubernetes/cmd/...@vX`` fails (k/k's go.mod has ``replace`` directives
and requires its staging modules at ``v0.0.0``), so we generate a throw-away *wrapper
module* that requires k/k and pins every staging module to its published ``v0.Y.Z`` tag.
etcd's server module has the same problem and gets its own wrapper. A completed build
writes a stamp file; a second run finds it and builds nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from e2e import versions

STAMP = ".complete"
K8S_PKG = "k8s.io/kubernetes/cmd/"
ETCD_PKG = "go.etcd.io/etcd/server/v3"
STAGING_RE = re.compile(r"^\s*(k8s\.io/[A-Za-z0-9._-]+)\s+=>\s+\./staging/", re.M)


def go_env(workdir: Path) -> dict[str, str]:
    """Environment for hermetic, static builds with the installed toolchain only."""
    env = dict(os.environ)
    env.update(GOTOOLCHAIN="local", GOFLAGS="-mod=mod -buildvcs=false", CGO_ENABLED="0")
    env.setdefault("GOPATH", str(Path.home() / "go"))
    env["PWD"] = str(workdir)
    return env


def run_go(args: list[str], workdir: Path) -> str:
    """Run ``go`` in ``workdir``; echo the command so a long build shows progress."""
    print(f"+ (cd {workdir} && go {' '.join(args)})", file=sys.stderr, flush=True)
    res = subprocess.run(
        ["go", *args], cwd=workdir, env=go_env(workdir), check=True, stdout=subprocess.PIPE
    )
    return res.stdout.decode()


def stamp_text(k8s_version: str, etcd_version: str) -> str:
    """What a complete cache records; a different pin means a rebuild."""
    return json.dumps({"kubernetes": k8s_version, "etcd": etcd_version}, sort_keys=True)


def is_cached(k8s_version: str = versions.K8S_VERSION) -> bool:
    """True when every binary of this version pin is already built."""
    bdir = versions.bin_dir(k8s_version)
    stamp = bdir / STAMP
    if not stamp.is_file() or stamp.read_text() != stamp_text(k8s_version, versions.ETCD_VERSION):
        return False
    return all(os.access(bdir / name, os.X_OK) for name in versions.ALL_BINARIES)


def staging_modules(kk_gomod: str) -> list[str]:
    """The modules k/k replaces with ./staging (generated, never hard-coded)."""
    return sorted(set(STAGING_RE.findall(kk_gomod)))


def k8s_wrapper_gomod(kk_gomod: str, k8s_version: str) -> str:
    """go.mod requiring k/k with every staging module pinned to its published tag."""
    staging_version = "v0." + k8s_version.split(".", 1)[1]
    head = [ln for ln in kk_gomod.splitlines() if ln.startswith(("go ", "godebug "))]
    lines = [
        "module local/kvault-k8s-build",
        "",
        *head,
        "",
        f"require k8s.io/kubernetes v{k8s_version}",
    ]
    lines += ["", "replace ("]
    lines += [f"\t{m} => {m} {staging_version}" for m in staging_modules(kk_gomod)]
    lines += [")", ""]
    return "\n".join(lines)


def version_ldflags(k8s_version: str) -> str:
    """-X flags that hack/lib/version.sh sets, so ``kubectl version`` shows the real version."""
    major, minor = k8s_version.split(".")[:2]
    build_date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion=v{k8s_version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.gitCommit=unknown",
            f"-X {pkg}.buildDate={build_date}",
        ]
    return " ".join(flags)


def build_k8s(k8s_version: str, out: Path) -> None:
    """Build the control-plane and node binaries of one release into ``out``."""
    work = versions.build_dir(k8s_version) / "k8s-wrapper"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text("module local/bootstrap\n\ngo 1.24.0\n")
    info = json.loads(
        run_go(["mod", "download", "-json", f"k8s.io/kubernetes@v{k8s_version}"], work)
    )
    (work / "go.mod").write_text(k8s_wrapper_gomod(Path(info["GoMod"]).read_text(), k8s_version))
    pkgs = [K8S_PKG + name for name in versions.K8S_BINARIES]
    run_go(["get", *(f"{p}@v{k8s_version}" for p in pkgs)], work)
    run_go(
        ["build", "-trimpath", "-ldflags", version_ldflags(k8s_version), "-o", f"{out}/", *pkgs],
        work,
    )


def build_etcd(etcd_version: str, out: Path, k8s_version: str) -> None:
    """Build the etcd server (its own wrapper keeps the k8s dependency graph untouched)."""
    work = versions.build_dir(k8s_version) / "etcd-wrapper"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(
        f"module local/kvault-etcd-build\n\ngo 1.24.0\n\nrequire {ETCD_PKG} v{etcd_version}\n"
    )
    run_go(["get", f"{ETCD_PKG}@v{etcd_version}"], work)
    run_go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"), ETCD_PKG], work)


def ensure_built(k8s_version: str = versions.K8S_VERSION) -> Path:
    """Return the bin dir for ``k8s_version``, building it first if the cache is incomplete."""
    bdir = versions.bin_dir(k8s_version)
    if is_cached(k8s_version):
        return bdir
    if shutil.which("go") is None:
        raise RuntimeError("Go toolchain not found: install Go >= 1.24 to build Kubernetes")
    started = time.monotonic()
    tmp = bdir.with_name("bin.partial")
    tmp.mkdir(parents=True, exist_ok=True)
    build_etcd(versions.ETCD_VERSION, tmp, k8s_version)
    build_k8s(k8s_version, tmp)
    (tmp / STAMP).write_text(stamp_text(k8s_version, versions.ETCD_VERSION))
    if bdir.exists():
        shutil.rmtree(bdir)
    tmp.rename(bdir)
    print(f"built {versions.ALL_BINARIES} in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return bdir
