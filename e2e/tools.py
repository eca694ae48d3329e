"""Go tools the cluster and the tests need (helm, CoreDNS, local-path-provisioner).

Each is a plain ``go install module/pkg@version`` (none has ``replace`` directives), built
into ``<cache>/<name>/<version>/bin.partial`` and renamed to ``bin`` when it succeeded, so a
present ``bin/<name>`` means a complete build and a second call builds nothing.

CLI: ``python -m e2e.tools build [NAME...]`` prints the paths; ``python -m e2e.tools path NAME``.
The peers of issue 14 (``vault``, ``external-secrets``) need wrapper modules: they are built by
e2e/peers.py and registered here by name, but ``build`` with no name leaves them out.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from e2e import build, peers, versions


@dataclass(frozen=True)
class Tool:
    """One Go binary: module package, pinned version and the -X flags upstream stamps."""

    name: str
    package: str
    version: str
    xflags: tuple[str, ...]

    @property
    def bin_dir(self) -> Path:
        return versions.cache_root() / self.name / self.version / "bin"

    @property
    def path(self) -> Path:
        return self.bin_dir / self.name

    def ldflags(self) -> str:
        return " ".join(["-s", "-w", *(f"-X {x}" for x in self.xflags)])


_HELM = "helm.sh/helm/v3"
HELM_VERSION = "v3.21.4"
COREDNS_VERSION = "v1.15.0"
LOCAL_PATH_VERSION = "v0.0.30"

#: The k8s minor helm v3.21.4 reports (client-go v0.36), as its Makefile stamps it.
TOOLS: dict[str, Tool] = {
    "helm": Tool(
        "helm",
        f"{_HELM}/cmd/helm",
        HELM_VERSION,
        (
            f"{_HELM}/internal/version.version={HELM_VERSION}",
            f"{_HELM}/internal/version.metadata=",
            f"{_HELM}/internal/version.gitTreeState=clean",
            f"{_HELM}/pkg/lint/rules.k8sVersionMajor=1",
            f"{_HELM}/pkg/lint/rules.k8sVersionMinor=36",
            f"{_HELM}/pkg/chartutil.k8sVersionMajor=1",
            f"{_HELM}/pkg/chartutil.k8sVersionMinor=36",
        ),
    ),
    "coredns": Tool(
        "coredns",
        "github.com/coredns/coredns",
        COREDNS_VERSION,
        (f"github.com/coredns/coredns/coremain.GitCommit={COREDNS_VERSION}",),
    ),
    "local-path-provisioner": Tool(
        "local-path-provisioner",
        "github.com/rancher/local-path-provisioner",
        LOCAL_PATH_VERSION,
        (f"main.VERSION={LOCAL_PATH_VERSION}",),
    ),
}
#: What the node tier runs besides the Kubernetes binaries.
NODE_TOOLS = ("coredns", "local-path-provisioner")


def is_built(name: str) -> bool:
    """True when the tool's binary of the pinned version is in the cache."""
    if name in peers.PEERS:
        return peers.is_built(name)
    return os.access(TOOLS[name].path, os.X_OK)


def path(name: str) -> Path:
    """Where the tool's (or peer's) binary is, built or not."""
    return peers.PEERS[name].path if name in peers.PEERS else TOOLS[name].path


def ensure(name: str) -> Path:
    """Path of the tool's binary, building it (niced, atomically) only if it is missing."""
    if name in peers.PEERS:
        return peers.ensure(name)
    tool = TOOLS[name]
    if is_built(name):
        return tool.path
    if shutil.which("go") is None:
        raise RuntimeError(f"Go toolchain not found: install Go to build {name}")
    partial = tool.bin_dir.with_name("bin.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.monotonic()
    argv = ["install", "-trimpath", "-ldflags", tool.ldflags(), f"{tool.package}@{tool.version}"]
    _run_go_install(argv, partial.parent, str(partial))
    shutil.rmtree(tool.bin_dir, ignore_errors=True)
    partial.rename(tool.bin_dir)
    print(f"built {name} {tool.version} in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return tool.path


def _run_go_install(argv: list[str], workdir: Path, gobin: str) -> None:
    """``go install`` with the hermetic env of e2e.build, niced, into ``gobin``."""
    env = build.go_env(workdir)
    env["GOBIN"] = gobin
    env["GOFLAGS"] = "-buildvcs=false"  # -mod=mod has no meaning for pkg@version
    print(f"+ go {' '.join(argv)}", file=sys.stderr, flush=True)
    subprocess.run(["nice", "-n", "10", "go", *argv], cwd=workdir, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    """``build [NAME...]`` (default: all) or ``path NAME``; prints binary paths."""
    ap = argparse.ArgumentParser(prog="python -m e2e.tools", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_build = sub.add_parser("build", help="build (or find cached) tools; print their paths")
    known = [*TOOLS, *peers.PEERS]
    p_build.add_argument("names", nargs="*", metavar="NAME", help=", ".join(known))
    p_path = sub.add_parser("path", help="print where a tool's binary is (built or not)")
    p_path.add_argument("name", choices=known)
    args = ap.parse_args(argv)
    if args.cmd == "path":
        print(path(args.name))
        return 0
    if "openbao" in args.names:
        ap.error(f"openbao: refused by the Go module proxy ({peers.OPENBAO_REFUSED}); use vault")
    unknown = [n for n in args.names if n not in known]
    if unknown:
        ap.error(f"unknown tools {unknown}; known: {', '.join(known)}")
    for name in args.names or list(TOOLS):
        print(ensure(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
