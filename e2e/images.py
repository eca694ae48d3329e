"""OCI image archives written by our own code from Debian's busybox-static.

There is no registry here, so the pod-sandbox (pause) image and the busybox test image are
built as one OCI-layout tar and imported with ``ctr images import``. Both images share one
reproducible layer (fixed mtimes/owners), so re-imports are no-ops.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from e2e import versions

BUSYBOX = Path("/bin/busybox")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
#: sleep as PID 1 ignores SIGTERM; containerd stops sandboxes with SIGKILL, so that is fine.
PAUSE_ENTRYPOINT = ["/bin/busybox", "sleep", "2147483647"]
BUSYBOX_CMD = ["sh"]


def _tarinfo(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    return info


def applets(busybox: Path = BUSYBOX) -> list[str]:
    """Applet names the binary provides (each becomes a /bin symlink)."""
    out = subprocess.run([str(busybox), "--list"], check=True, capture_output=True, text=True)
    return sorted({a for a in out.stdout.split() if a and "/" not in a and a != "busybox"})


def busybox_layer(busybox: Path = BUSYBOX) -> bytes:
    """An uncompressed, reproducible rootfs layer: /bin/busybox plus applet symlinks."""
    buf = io.BytesIO()
    data = busybox.read_bytes()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d, mode in (("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("proc", 0o555),
                        ("sys", 0o555), ("tmp", 0o1777), ("var", 0o755)):  # fmt: skip
            tar.addfile(_tarinfo(d, tarfile.DIRTYPE, mode))
        tar.addfile(_tarinfo("bin/busybox", tarfile.REGTYPE, 0o755, len(data)), io.BytesIO(data))
        for name in applets(busybox):
            tar.addfile(_tarinfo(f"bin/{name}", tarfile.SYMTYPE, 0o777, link="busybox"))
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        tar.addfile(_tarinfo("etc/passwd", tarfile.REGTYPE, 0o644, len(passwd)), io.BytesIO(passwd))
    return buf.getvalue()


class Layout:
    """An in-memory OCI image layout (content-addressed blobs + index).

    Large blobs (rootfs layers) stay on disk: ``add_blob_file`` records the path only.
    """

    def __init__(self) -> None:
        self.blobs: dict[str, bytes | Path] = {}
        self.manifests: list[dict[str, object]] = []

    def add_blob(self, data: bytes, media_type: str) -> dict[str, object]:
        """Store a blob and return its descriptor."""
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def add_blob_file(self, path: Path, media_type: str) -> dict[str, object]:
        """Reference a blob on disk (hashed in chunks, copied only by ``write_tar``)."""
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        self.blobs[h.hexdigest()] = path
        return {"mediaType": media_type, "digest": f"sha256:{h.hexdigest()}",
                "size": path.stat().st_size}  # fmt: skip

    def add_image(self, name: str, layer: bytes, config: Mapping[str, object]) -> None:
        """Add a single-layer linux/amd64 image named ``name`` (repo:tag)."""
        self.add_layered_image([name], [self.add_blob(layer, OCI_LAYER)], config)

    def add_layered_image(
        self,
        names: Sequence[str],
        layers: Sequence[dict[str, object]],
        config: Mapping[str, object],
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """Add one linux/amd64 image of uncompressed ``layers`` (descriptors from add_blob*)
        under every name in ``names``; ``config`` is the OCI config's ``config`` object."""
        cfg = {
            "architecture": "amd64",
            "os": "linux",
            "config": {**config, **({"Labels": dict(labels)} if labels else {})},
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layers]},
        }
        cfg_desc = self.add_blob(json.dumps(cfg, sort_keys=True).encode(), OCI_CONFIG)
        manifest: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": cfg_desc,
            "layers": list(layers),
        }
        if labels:
            manifest["annotations"] = dict(labels)
        data = json.dumps(manifest, sort_keys=True).encode()
        for name in names:
            desc = self.add_blob(data, OCI_MANIFEST)
            desc["annotations"] = {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
            }
            self.manifests.append(desc)

    def write_tar(self, out: Path) -> None:
        """Write the layout as a tar that ``ctr images import`` accepts."""
        index = {"schemaVersion": 2, "manifests": self.manifests}
        files: dict[str, bytes | Path] = {
            "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
            "index.json": json.dumps(index, sort_keys=True).encode(),
        }
        files.update({f"blobs/sha256/{d}": b for d, b in sorted(self.blobs.items())})
        with tarfile.open(out, "w") as tar:
            for d in ("blobs", "blobs/sha256"):
                tar.addfile(_tarinfo(d, tarfile.DIRTYPE, 0o755))
            for name, data in files.items():
                if isinstance(data, Path):
                    info = _tarinfo(name, tarfile.REGTYPE, 0o644, data.stat().st_size)
                    with data.open("rb") as f:
                        tar.addfile(info, f)
                else:
                    info = _tarinfo(name, tarfile.REGTYPE, 0o644, len(data))
                    tar.addfile(info, io.BytesIO(data))


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Reproducible entries: fixed mtime, numeric owners only."""
    info.mtime, info.uname, info.gname = 0, "", ""
    return info


def tree_layer(root: Path, out: Path, only: Sequence[str] = ()) -> Path:
    """Write the tree under ``root`` (or only its subpaths ``only``, with their parent
    directories) as an uncompressed layer tar, sorted, with fixed mtimes; keep owners, modes,
    symlinks and hard links."""
    tops = [root / p for p in only] if only else [root]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for top in tops:
            for parent in reversed(top.relative_to(root).parents[:-1]):
                tar.add(root / parent, str(parent), recursive=False, filter=_normalized)
            for path in _walk(top):
                arc = str(path.relative_to(root))
                if arc != ".":
                    tar.add(path, arc, recursive=False, filter=_normalized)
    return out


def _walk(top: Path) -> list[Path]:
    """``top`` and everything below it, parents first, sorted; symlinks are not followed."""
    found: list[Path] = []
    for dirpath, dirs, files in os.walk(top):
        base = Path(dirpath)
        found.append(base)
        found.extend(base / n for n in files)
        found.extend(base / d for d in dirs if (base / d).is_symlink())
    return sorted(found, key=lambda p: p.parts)


def write_archive(out: Path, include_pause: bool = True) -> list[str]:
    """Write the (pause +) busybox OCI archive to ``out``; return the image names.

    Other clusters (kind) have a real pause image: leave ours out there.
    """
    layer = busybox_layer()
    env = ["PATH=/bin"]
    layout = Layout()
    names = [versions.BUSYBOX_IMAGE]
    layout.add_image(versions.BUSYBOX_IMAGE, layer, {"Cmd": BUSYBOX_CMD, "Env": env})
    if include_pause:
        entry = {"Entrypoint": PAUSE_ENTRYPOINT, "Env": env}
        layout.add_image(versions.PAUSE_IMAGE, layer, entry)
        names.append(versions.PAUSE_IMAGE)
    out.parent.mkdir(parents=True, exist_ok=True)
    layout.write_tar(out)
    return names


def import_archive(archive: Path, containerd_address: str) -> None:
    """Import the archive into containerd's ``k8s.io`` namespace (the one CRI reads)."""
    subprocess.run(
        ["ctr", "--address", containerd_address, "-n", "k8s.io", "images", "import", str(archive)],
        check=True,
        capture_output=True,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m e2e.images OUT.tar [--busybox-only]``: e.g. for ``kind load image-archive``."""
    ap = argparse.ArgumentParser(prog="python -m e2e.images", description=main.__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--busybox-only", action="store_true", help="leave out the pause image")
    args = ap.parse_args(argv)
    for name in write_archive(args.out, include_pause=not args.busybox_only):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
