"""The peers kvault is measured against, built from their Go modules (issue 14).

Neither peer installs with ``go install pkg@version``: both go.mod files have ``replace``
directives. Each gets a generated *wrapper module* (as e2e/build.py does for Kubernetes) under
``<cache>/<name>/<version>/wrapper``: it requires the peer at its release tag and copies the
peer's module-to-module replaces, read from the published go.mod (never hard-coded); local
``./dir`` replaces cannot be copied (the module zip leaves nested modules out). The binary is
built into ``bin.partial`` and renamed to ``bin`` when it succeeded, with ``build.json``
recording the wall time, so a present ``bin/<name>`` means a complete build and a second call
builds nothing.

- **External Secrets Operator** v0.16.2 (Apache-2.0). v1.3.2 is the only newer version the
  module proxy serves, but its go.mod replaces 56 untagged in-repo modules with ``./`` paths.
- **OpenBao** (MPL-2.0) is refused: its release tags up to v2.6.2 declare a module path without
  ``/v2``, and ``github.com/openbao/openbao/v2@v2.7.2`` answers ``403 Forbidden ... This module
  version is not available.`` (``OPENBAO_REFUSED``). So the store peer is
- **HashiCorp Vault** v1.21.4 (BUSL-1.1). Its release branch's ``./sdk`` matches no published
  sdk, so the wrapper uses a local copy of the sdk version it requires with two changes that
  release made (``_patch_vault_sdk``).

CLI: ``python -m e2e.tools build vault external-secrets`` (this module registers there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from e2e import build, versions

#: ``go mod download -json github.com/openbao/openbao/v2@v2.7.2`` (the proxy's address elided).
OPENBAO_REFUSED = (
    "github.com/openbao/openbao/v2@v2.7.2: reading .../github.com/openbao/openbao/v2/@v/"
    "v2.7.2.info: 403 Forbidden; server response: This module version is not available."
)

VAULT_MODULE = "github.com/hashicorp/vault"
VAULT_VERSION = "v1.21.4"
ESO_MODULE = "github.com/external-secrets/external-secrets"
ESO_VERSION = "v0.16.2"
#: The first published sdk whose keysutil LockManager.RestorePolicy returns (string, error).
VAULT_SDK_DONOR = "v0.25.1"


@dataclass(frozen=True)
class Peer:
    """One peer binary built through a wrapper module."""

    name: str
    module: str
    version: str
    package: str
    license: str
    xflags: tuple[str, ...] = ()
    #: Called with the wrapper dir after ``go get``; returns extra ``-replace`` edits.
    patch: Callable[[Peer, Path], list[str]] | None = None

    @property
    def root(self) -> Path:
        return versions.cache_root() / self.name / self.version

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def path(self) -> Path:
        return self.bin_dir / self.name

    def ldflags(self) -> str:
        return " ".join(["-s", "-w", *(f"-X {x}" for x in self.xflags)])


def go(args: list[str], workdir: Path) -> str:
    """``nice -n 10 go ARGS`` in ``workdir`` with e2e.build's hermetic env; echoes the command."""
    print(f"+ (cd {workdir} && go {' '.join(args)})", file=sys.stderr, flush=True)
    res = subprocess.run(
        ["nice", "-n", "10", "go", *args],
        cwd=workdir,
        env=build.go_env(workdir),
        check=True,
        stdout=subprocess.PIPE,
    )
    return res.stdout.decode()


def download(modver: str, scratch: Path) -> dict[str, str]:
    """``go mod download -json`` of one module version (in a scratch module, so no go.mod
    that matters is touched): its Dir, GoMod, Version."""
    scratch.mkdir(parents=True, exist_ok=True)
    if not (scratch / "go.mod").exists():
        (scratch / "go.mod").write_text("module local/kvault-download\n\ngo 1.24.0\n")
    info: dict[str, str] = json.loads(go(["mod", "download", "-json", modver], scratch))
    if info.get("Error"):
        raise RuntimeError(f"go mod download {modver}: {info['Error']}")
    return info


def gomod_json(path: Path, workdir: Path) -> dict[str, object]:
    """``go mod edit -json`` of a go.mod file (the parser Go itself uses)."""
    out: dict[str, object] = json.loads(go(["mod", "edit", "-json", str(path)], workdir))
    return out


def module_replaces(gomod: dict[str, object]) -> list[str]:
    """``-replace`` edits for the module-to-module replaces of an upstream go.mod; local
    ``./dir`` ones are left out (their directories are not in the module zip)."""
    edits = []
    for rep in gomod.get("Replace") or []:  # type: ignore[attr-defined]
        old, new = rep["Old"], rep["New"]
        if not new.get("Version"):  # a filesystem path
            continue
        lhs = old["Path"] + (f"@{old['Version']}" if old.get("Version") else "")
        edits.append(f"-replace={lhs}={new['Path']}@{new['Version']}")
    return edits


def required_version(gomod: dict[str, object], module: str) -> str:
    """The version an upstream go.mod requires of ``module``."""
    for req in gomod.get("Require") or []:  # type: ignore[attr-defined]
        if req["Path"] == module:
            return str(req["Version"])
    raise KeyError(f"{module} is not required")


def _patch_vault_sdk(peer: Peer, wrapper: Path) -> list[str]:
    """Vault's release tag builds against its own ``./sdk``, which is newer than the sdk it
    requires. Copy the required sdk and apply the two changes the release depends on: the
    2-argument ``framework.Backend.ActivationFunc`` and keysutil's ``RestorePolicy`` returning
    ``(string, error)`` (taken whole from the first sdk that has it)."""
    scratch = peer.root / "download"
    upstream = gomod_json(
        Path(download(f"{peer.module}@{peer.version}", scratch)["GoMod"]), wrapper
    )
    sdk_mod = f"{peer.module}/sdk"
    sdk = Path(download(f"{sdk_mod}@{required_version(upstream, sdk_mod)}", scratch)["Dir"])
    donor = Path(download(f"{sdk_mod}@{VAULT_SDK_DONOR}", scratch)["Dir"])
    dest = wrapper / "sdk-patched"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(sdk, dest)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)  # the module cache is read-only
    backend = dest / "framework" / "backend.go"
    old = "ActivationFunc func(context.Context, *logical.Request, string) error"
    text = backend.read_text()
    if old not in text:
        raise RuntimeError(f"{backend}: {old!r} not found; the sdk patch needs a look")
    backend.write_text(
        text.replace(old, "ActivationFunc func(context.Context, *logical.Request) error")
    )
    lock_manager = Path("helper") / "keysutil" / "lock_manager.go"
    shutil.copyfile(donor / lock_manager, dest / lock_manager)
    return [f"-replace={sdk_mod}=./sdk-patched"]


PEERS: dict[str, Peer] = {
    "external-secrets": Peer(
        "external-secrets",
        ESO_MODULE,
        ESO_VERSION,
        ESO_MODULE,
        "Apache-2.0",
    ),
    "vault": Peer(
        "vault",
        VAULT_MODULE,
        VAULT_VERSION,
        VAULT_MODULE,
        "BUSL-1.1",
        (f"{VAULT_MODULE}/version.GitCommit={VAULT_VERSION}",),
        _patch_vault_sdk,
    ),
}
#: The store peer ``bench peers store`` runs (OpenBao when its module is served).
STORE_PEER = "vault"


def is_built(name: str) -> bool:
    """True when the peer's binary of the pinned version is in the cache."""
    return os.access(PEERS[name].path, os.X_OK)


def build_info(name: str) -> dict[str, object]:
    """What the build recorded (version, license, seconds), or {} before a build."""
    stamp = PEERS[name].bin_dir / "build.json"
    return json.loads(stamp.read_text()) if stamp.is_file() else {}


def ensure(name: str) -> Path:
    """Path of the peer's binary, building it (niced, atomically) only if it is missing."""
    peer = PEERS[name]
    if is_built(name):
        return peer.path
    if shutil.which("go") is None:
        raise RuntimeError(f"Go toolchain not found: install Go to build {name}")
    started = time.monotonic()
    wrapper = peer.root / "wrapper"
    wrapper.mkdir(parents=True, exist_ok=True)
    info = download(f"{peer.module}@{peer.version}", peer.root / "download")
    upstream = gomod_json(Path(info["GoMod"]), wrapper)
    for stale in ("go.mod", "go.sum"):
        (wrapper / stale).unlink(missing_ok=True)
    go(["mod", "init", f"local/kvault-{name}-build"], wrapper)
    go(
        [
            "mod",
            "edit",
            f"-go={upstream['Go']}",
            f"-require={peer.module}@{peer.version}",
            *module_replaces(upstream),
        ],
        wrapper,
    )
    go(["get", f"{peer.module}@{peer.version}"], wrapper)
    if peer.patch is not None:
        go(["mod", "edit", *peer.patch(peer, wrapper)], wrapper)
    fetched = time.monotonic() - started
    partial = peer.bin_dir.with_name("bin.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    go(
        ["build", "-trimpath", "-ldflags", peer.ldflags(), "-o", str(partial / name), peer.package],
        wrapper,
    )
    total = time.monotonic() - started
    record = {
        "name": name,
        "module": peer.module,
        "version": peer.version,
        "license": peer.license,
        "get_seconds": round(fetched),
        "build_seconds": round(total - fetched),
    }
    (partial / "build.json").write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(peer.bin_dir, ignore_errors=True)
    partial.rename(peer.bin_dir)
    print(f"built {name} {peer.version} in {total:.0f}s", file=sys.stderr)
    return peer.path
