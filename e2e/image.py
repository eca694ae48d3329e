"""kvault's images built from Debian packages, without a container engine.

``python -m e2e.image build [--import] [--kind operator|client|all]`` writes an OCI archive
of two uncompressed layers: a Debian root file system by ``mmdebstrap`` (from the mirrors in
the host's apt sources) and ``/opt/<name>``, a venv of Debian's python3 holding the pinned
wheels of ``requirements/<kind>.lock`` (+ kvault's own wheel). The Dockerfile builds the same
thing with an engine. Both are cached by a hash of their inputs under
``~/.cache/kvault/images/``, so a second build with the same inputs builds nothing.
``python -m e2e.image lock`` regenerates the lock files from pyproject.toml.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from e2e import images, versions

ROOT = Path(__file__).resolve().parent.parent
SUITE = "bookworm"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
#: pip itself is run from its wheel inside the chroot (so scripts get the image's python
#: in their shebang); it is not installed into the image. The Dockerfile names it too.
BOOTSTRAP_PIP = "pip==26.3"
UID = GID = 65532
USER = "kvault"
#: Docs, man pages, locales: not needed at run time (copyright files are kept: licenses).
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/lintian/*",
)
LABELS = {
    "org.opencontainers.image.source": "https://github.com/kvault/kvault",
    "org.opencontainers.image.licenses": "Apache-2.0",
}
#: Builds of each kind kept in the cache (the newest ones).
KEEP = 3


@dataclass(frozen=True)
class Spec:
    """What one image is made of."""

    kind: str
    repository: str
    fixed_tag: str
    packages: tuple[str, ...]
    lock: Path
    prefix: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    project: bool = False
    files: tuple[tuple[str, Path], ...] = ()

    def env(self) -> list[str]:
        """The same environment the Dockerfile sets (read-only root: HOME/TMPDIR=/tmp)."""
        return [
            f"PATH={self.prefix}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONDONTWRITEBYTECODE=1",
            "PYTHONUNBUFFERED=1",
            "HOME=/tmp",
            "TMPDIR=/tmp",
            "LANG=C.UTF-8",
        ]


SPECS = {
    "operator": Spec(
        kind="operator",
        repository=versions.KVAULT_REPOSITORY,
        fixed_tag=versions.KVAULT_IMAGE.rsplit(":", 1)[1],
        packages=("passwd", "python3", "libsofthsm2", "ca-certificates"),
        lock=ROOT / "requirements" / "image.lock",
        prefix="/opt/kvault",
        entrypoint=("kvault",),
        cmd=("--help",),
        project=True,
    ),
    "client": Spec(
        kind="client",
        repository=versions.CLIENT_REPOSITORY,
        fixed_tag=versions.CLIENT_IMAGE.rsplit(":", 1)[1],
        packages=("passwd", "python3", "ca-certificates"),
        lock=ROOT / "requirements" / "client.lock",
        prefix="/opt/azure-client",
        entrypoint=("/opt/azure-client/bin/python", "/opt/azure-client/azure_client.py"),
        files=(("opt/azure-client/azure_client.py", ROOT / "e2e" / "azure_client.py"),),
    ),
}


@dataclass(frozen=True)
class Built:
    """A built image archive: its names (``ref`` is the content-hash tag), size and hash."""

    kind: str
    repository: str
    tag: str
    names: tuple[str, ...]
    archive: Path
    size: int
    hash: str
    seconds: float

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"

    def save(self, path: Path) -> None:
        data = {**asdict(self), "archive": str(self.archive), "names": list(self.names)}
        path.write_text(json.dumps(data, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> Built:
        data = json.loads(path.read_text())
        data["archive"], data["names"] = Path(data["archive"]), tuple(data["names"])
        return cls(**data)


# --- inputs and their hash -------------------------------------------------------------


def debian_mirrors(texts: Iterable[str], suite: str = SUITE) -> list[str]:
    """One-line ``deb URI SUITE COMPONENTS`` entries for ``suite`` (and its -updates,
    -security) from apt source files, deb822 (.sources) or one-line (.list)."""
    lines: list[str] = []
    for text in texts:
        for stanza in re.split(r"\n\s*\n", text):
            fields = _deb822(stanza)
            if fields:
                if "deb" in fields.get("Types", "").split() and fields.get("Enabled") != "no":
                    for uri in fields.get("URIs", "").split():
                        lines += [f"deb {uri} {s} {fields.get('Components', 'main')}"
                                  for s in fields.get("Suites", "").split()]  # fmt: skip
                continue
            for raw in stanza.splitlines():
                words = re.sub(r"\[[^]]*\]", "", raw.split("#", 1)[0]).split()  # no [options]
                if len(words) >= 4 and words[0] == "deb":
                    lines.append(" ".join(words))
    wanted = [ln for ln in lines if ln.split()[2] == suite or ln.split()[2].startswith(suite + "-")]
    return list(dict.fromkeys(wanted))


def _deb822(stanza: str) -> dict[str, str]:
    """The fields of one deb822 stanza (empty for one-line format)."""
    fields: dict[str, str] = {}
    for line in stanza.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
        if not m:
            return {}
        fields[m.group(1)] = m.group(2)
    return fields if "URIs" in fields else {}


def host_mirrors() -> list[str]:
    """The Debian mirrors this host's apt already uses (no other network is reachable)."""
    texts = []
    for src in APT_SOURCES:
        found = sorted(src.glob("*.list")) + sorted(src.glob("*.sources"))
        paths = found if src.is_dir() else [src]
        texts += [p.read_text() for p in paths if p.is_file()]
    mirrors = debian_mirrors(texts)
    if not mirrors:
        raise RuntimeError(f"no deb source for {SUITE} in {', '.join(map(str, APT_SOURCES))}")
    return mirrors


def project_files() -> list[Path]:
    """What goes into kvault's wheel: operator/**, pyproject.toml, README.md."""
    found = [ROOT / "pyproject.toml", ROOT / "README.md"]
    for path in sorted((ROOT / "operator").rglob("*")):
        rel = path.relative_to(ROOT).parts
        if path.is_file() and not any(p == "__pycache__" or p.endswith(".egg-info") for p in rel):
            found.append(path)
    return found


def _digest(parts: Iterable[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in parts:
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def builder_code() -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in (Path(__file__), Path(images.__file__))]


def base_hash(spec: Spec, mirrors: Sequence[str]) -> str:
    """Inputs of the Debian layer: suite, mirrors, packages, excludes, the builder code."""
    recipe = json.dumps([SUITE, list(mirrors), spec.packages, DPKG_EXCLUDES, UID, USER])
    return _digest([("recipe", recipe.encode()), *builder_code()])


def input_hash(spec: Spec, mirrors: Sequence[str]) -> str:
    """Inputs of the whole image: the base, the lock file, kvault's sources, extra files."""
    parts = [("base", base_hash(spec, mirrors).encode()), ("lock", spec.lock.read_bytes())]
    parts += [("spec", json.dumps([spec.entrypoint, spec.cmd, spec.env(), spec.prefix]).encode())]
    if spec.project:
        parts += [(str(p.relative_to(ROOT)), p.read_bytes()) for p in project_files()]
    parts += [(dest, src.read_bytes()) for dest, src in spec.files]
    return _digest(parts)


def images_dir() -> Path:
    return versions.cache_root() / "images"


# --- building --------------------------------------------------------------------------


def mmdebstrap_argv(spec: Spec, target: Path, mirrors: Sequence[str]) -> list[str]:
    """A minimal Debian (essential + our packages, merged /usr without usrmerge/perl) with
    the non-root user 65532; docs and locales left out, apt lists and caches cleaned."""
    argv = ["mmdebstrap", "--mode=unshare", "--variant=essential", "--quiet",
            "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
            f"--include={','.join(spec.packages)}"]  # fmt: skip
    argv += [f"--dpkgopt={opt}" for opt in DPKG_EXCLUDES]
    argv += [
        f'--customize-hook=chroot "$1" groupadd -g {GID} {USER}',
        f'--customize-hook=chroot "$1" useradd -u {UID} -g {GID} -d /tmp -M '
        f"-s /usr/sbin/nologin {USER}",
        '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* '
        '"$1"/var/cache/debconf/*-old "$1"/var/log/* "$1"/tmp/*',
    ]
    return [*argv, SUITE, str(target), *mirrors]


def ensure_base(spec: Spec, mirrors: Sequence[str]) -> Path:
    """The Debian root file system (directory + its layer tar), cached by base_hash."""
    out = images_dir() / f"base-{spec.kind}-{base_hash(spec, mirrors)[:12]}"
    if (out / "layer.tar").exists():
        return out
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _run(mmdebstrap_argv(spec, partial / "rootfs", mirrors))
    images.tree_layer(partial / "rootfs", partial / "layer.tar")
    partial.rename(out)
    return out


def requirements_from_pyproject(kind: str) -> list[str]:
    """Runtime dependencies (operator) or the Azure SDK packages of the test extras (client)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    if kind == "operator":
        return list(project["dependencies"])
    return [r for r in project["optional-dependencies"]["test"] if r.startswith("azure-")]


def lock_lines(report: dict[str, Any]) -> list[str]:
    """``name==version --hash=sha256:...`` for each distribution of a ``pip --report``."""
    lines = []
    for item in sorted(report["install"], key=lambda i: i["metadata"]["name"].lower()):
        meta, info = item["metadata"], item["download_info"]
        sha = info["archive_info"]["hashes"]["sha256"]
        lines.append(f"{meta['name']}=={meta['version']} --hash=sha256:{sha}")
    return lines


def write_lock(spec: Spec) -> Path:
    """Resolve the requirements (binary wheels for cp311 linux x86_64) into the lock file."""
    reqs = requirements_from_pyproject(spec.kind)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        _run([sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed",
              "--only-binary=:all:", "--report", str(report), *reqs])  # fmt: skip
        lines = lock_lines(json.loads(report.read_text()))
    head = [f"# {spec.kind} image: pinned from pyproject.toml ({', '.join(reqs)}).",
            "# Regenerate: python -m e2e.image lock (wheels: cp311, linux x86_64)"]  # fmt: skip
    spec.lock.parent.mkdir(parents=True, exist_ok=True)
    spec.lock.write_text("\n".join([*head, *lines]) + "\n")
    return spec.lock


def download_wheels(spec: Spec, dest: Path) -> None:
    """The locked wheels (hash-checked, shared cache) and the pip that installs them."""
    wheels = images_dir() / "wheels"
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(wheels)]  # fmt: skip
    _run([*pip, "--require-hashes", "-r", str(spec.lock)])
    _run([*pip, BOOTSTRAP_PIP])
    dest.mkdir(parents=True)
    for whl in wheels.glob("*.whl"):
        shutil.copy2(whl, dest / whl.name)


def build_project_wheel(dest: Path) -> Path:
    """kvault's wheel, built from a copy of its sources (the checkout stays clean)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        for path in project_files():
            target = src / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
              "--disable-pip-version-check", "-w", str(dest), str(src)])  # fmt: skip
    return next(dest.glob("kvault-*.whl"))


def install_venv(spec: Spec, rootfs: Path, wheel: Path | None) -> None:
    """A venv at the prefix, made by the image's own python3 in a chroot; the locked wheels
    (and kvault's) installed by pip from its wheel, byte-compiled by that same python."""
    stage = rootfs / "tmp" / "wheels"
    download_wheels(spec, stage)
    shutil.copy2(spec.lock, rootfs / "tmp" / "requirements.lock")
    if wheel is not None:
        shutil.copy2(wheel, stage / wheel.name)
    py = f"{spec.prefix}/bin/python"
    pip_whl = next(stage.glob("pip-*.whl")).name
    pip = [py, f"/tmp/wheels/{pip_whl}/pip"]
    opts = ["--no-index", "--find-links", "/tmp/wheels", "--no-cache-dir", "-q"]
    _chroot(rootfs, ["/usr/bin/python3", "-m", "venv", "--without-pip", spec.prefix])
    _chroot(rootfs, [*pip, "install", *opts, "--require-hashes", "-r", "/tmp/requirements.lock"])
    if wheel is not None:
        _chroot(rootfs, [*pip, "install", *opts, "--no-deps", f"/tmp/wheels/{wheel.name}"])
    _chroot(rootfs, [*pip, "check"])
    for dest, src in spec.files:
        shutil.copy2(src, rootfs / dest)
        _chroot(rootfs, [py, "-m", "compileall", "-q", f"/{dest}"])
    shutil.rmtree(stage)
    (rootfs / "tmp" / "requirements.lock").unlink()


def _chroot(rootfs: Path, argv: Sequence[str]) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_WARN_SCRIPT_LOCATION": "1"}  # fmt: skip
    _run(["chroot", str(rootfs), *argv], env=env)


def _run(argv: Sequence[str], env: dict[str, str] | None = None) -> None:
    """Run a build step; fail with its output (build tools print no secrets)."""
    if env is None:  # only PyPI: a site-wide PIP_FIND_LINKS would change what is locked
        env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
    res = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed ({res.returncode}):\n"
                           f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")  # fmt: skip


def image_config(spec: Spec) -> dict[str, object]:
    config: dict[str, object] = {
        "User": f"{UID}:{GID}",
        "Env": spec.env(),
        "WorkingDir": "/",
        "Entrypoint": list(spec.entrypoint),
    }
    if spec.cmd:
        config["Cmd"] = list(spec.cmd)
    return config


def build(spec: Spec) -> Built:
    """Build the image archive (nothing if the same inputs were built before)."""
    started = time.monotonic()
    mirrors = host_mirrors()
    digest = input_hash(spec, mirrors)
    out = images_dir() / f"{spec.kind}-{digest[:12]}"
    if (out / "built.json").exists():
        return Built.load(out / "built.json")
    base = ensure_base(spec, mirrors)
    work = Path(tempfile.mkdtemp(prefix=f"tmp-{spec.kind}-", dir=images_dir()))
    try:
        rootfs = work / "rootfs"
        _run(["cp", "-a", str(base / "rootfs"), str(rootfs)])
        wheel = build_project_wheel(work / "dist") if spec.project else None
        install_venv(spec, rootfs, wheel)
        app = images.tree_layer(rootfs, work / "app.tar", only=[spec.prefix.lstrip("/")])
        layout = images.Layout()
        layers = [layout.add_blob_file(p, images.OCI_LAYER) for p in (base / "layer.tar", app)]
        tag = digest[:12]
        names = (f"{spec.repository}:{spec.fixed_tag}", f"{spec.repository}:{tag}")
        labels = {**LABELS, "org.opencontainers.image.title": spec.repository.split("/")[-1],
                  "org.opencontainers.image.version": spec.fixed_tag}  # fmt: skip
        layout.add_layered_image(names, layers, image_config(spec), labels)
        (work / "out").mkdir()
        layout.write_tar(work / "out" / "image.tar")
        size = sum(int(str(d["size"])) for d in layers)
        built = Built(spec.kind, spec.repository, tag, names, out / "image.tar", size, digest,
                      round(time.monotonic() - started, 1))  # fmt: skip
        built.save(work / "out" / "built.json")
        shutil.rmtree(out, ignore_errors=True)
        (work / "out").rename(out)
        prune(f"{spec.kind}-", KEEP)
        prune(f"base-{spec.kind}-", KEEP)
        return built
    finally:
        shutil.rmtree(work, ignore_errors=True)


def prune(prefix: str, keep: int) -> None:
    """Remove all but the ``keep`` newest builds of one kind (sources change all day; an
    older archive may still be in use by another session, so a few stay)."""
    done = [p for p in images_dir().glob(f"{prefix}*") if p.is_dir() and "." not in p.name]
    done = [p for p in done if p.name[len(prefix) :].isalnum()]
    for old in sorted(done, key=lambda p: p.stat().st_mtime, reverse=True)[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def ensure_image(kind: str = "operator") -> Built:
    """The image of ``kind`` ("operator" or "client"), built once per set of inputs."""
    return build(SPECS[kind])


def import_image(built: Built, containerd_sock: str | os.PathLike[str]) -> None:
    """Import all of the image's names into the node's containerd (``k8s.io`` namespace)."""
    images.import_archive(built.archive, str(containerd_sock))


def main(argv: list[str] | None = None) -> int:
    """``python -m e2e.image build [--import] [--kind operator|client|all]`` | ``lock``."""
    ap = argparse.ArgumentParser(prog="python -m e2e.image", description=main.__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (cached) the image archive(s)")
    b.add_argument("--kind", choices=[*SPECS, "all"], default="operator")
    b.add_argument("--import", dest="do_import", action="store_true",
                   help="import into the local cluster's containerd")  # fmt: skip
    lk = sub.add_parser("lock", help="regenerate requirements/*.lock from pyproject.toml")
    lk.add_argument("--kind", choices=[*SPECS, "all"], default="all")
    args = ap.parse_args(argv)
    kinds = list(SPECS) if args.kind == "all" else [args.kind]
    if args.cmd == "lock":
        for kind in kinds:
            print(write_lock(SPECS[kind]).relative_to(ROOT))
        return 0
    from e2e.layout import Layout

    for kind in kinds:
        started = time.monotonic()
        built = ensure_image(kind)
        took = time.monotonic() - started
        print(f"{kind}: {built.archive} {built.size / 1e6:.1f} MB ({took:.2f} s)")
        for name in built.names:
            print(f"  {name}")
        if args.do_import:
            sock = Layout.default().containerd_sock
            if not sock.exists():
                raise SystemExit(f"no containerd at {sock}: run `python -m e2e.cluster up`")
            import_image(built, sock)
            print(f"  imported into {sock}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
