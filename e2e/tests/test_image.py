"""The images built from Debian packages (e2e/image.py), run as real pods on the local node.

Each pod runs the way the chart runs kvault: UID/GID 65532, read-only root file system,
an emptyDir at /tmp, no privilege escalation, image pulled never (imported, not pushed).
"""

from __future__ import annotations

import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from e2e import image, images
from e2e.fixtures import Cluster
from e2e.wait import Abort, wait_for


@pytest.fixture(scope="module")
def built(kube_cluster: Cluster) -> dict[str, image.Built]:
    """Both images, built (cached by input hash) and imported into the node's containerd."""
    if kube_cluster.layout is None:
        pytest.skip("KVAULT_E2E_EXISTING: load the images yourself (docs/image.md)")
    found = {kind: image.ensure_image(kind) for kind in image.SPECS}
    for b in found.values():
        image.import_image(b, kube_cluster.layout.containerd_sock)
    return found


def locked_down_pod(name: str, ref: str, args: list[str], command: list[str] | None = None
                    ) -> dict[str, Any]:  # fmt: skip
    """A one-container pod as the chart runs kvault (non-root, read-only root, /tmp)."""
    container: dict[str, Any] = {
        "name": "main",
        "image": ref,
        "imagePullPolicy": "Never",
        "args": args,
        "securityContext": {
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if command:
        container["command"] = command
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def run_to_end(core: client.CoreV1Api, ns: str, manifest: dict[str, Any]) -> tuple[str, str]:
    """Create the pod, wait until it ended; return (phase, log)."""
    core.create_namespaced_pod(ns, manifest)
    name = manifest["metadata"]["name"]

    def ended() -> str | None:
        phase = core.read_namespaced_pod(name, ns).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for(ended, 90, f"pod {ns}/{name} to end")
    return phase, core.read_namespaced_pod_log(name, ns)


def test_operator_image_size_and_names(built: dict[str, image.Built]) -> None:
    op = built["operator"]
    assert op.size <= 250e6, f"operator image is {op.size / 1e6:.0f} MB"
    assert built["client"].size < op.size
    assert f"{op.repository}:{op.tag}" in op.names and op.archive.is_file()


def test_second_build_builds_nothing(built: dict[str, image.Built]) -> None:
    started = time.monotonic()
    again = image.ensure_image("operator")
    assert time.monotonic() - started < 1.0
    assert again.archive == built["operator"].archive


def test_kvault_help_as_nonroot_readonly(
    kube_cluster: Cluster, namespace: str, built: dict[str, image.Built]
) -> None:
    pod = locked_down_pod("help", built["operator"].ref, ["--help"])
    phase, log = run_to_end(kube_cluster.core, namespace, pod)
    assert phase == "Succeeded", log
    assert "usage: kvault" in log


def test_dev_server_starts(
    kube_cluster: Cluster, namespace: str, built: dict[str, image.Built]
) -> None:
    core = kube_cluster.core
    pod = locked_down_pod("dev", built["operator"].ref, ["server", "--dev", "--host", "0.0.0.0"])
    core.create_namespaced_pod(namespace, pod)

    def endpoint() -> str | None:
        if core.read_namespaced_pod("dev", namespace).status.phase in ("Succeeded", "Failed"):
            raise Abort(core.read_namespaced_pod_log("dev", namespace))
        log = core.read_namespaced_pod_log("dev", namespace)
        return next((ln for ln in log.splitlines() if "KVAULT_ENDPOINT=https://" in ln), None)

    wait_for(endpoint, 90, "the dev server to print KVAULT_ENDPOINT=")


def test_pkcs11_and_softhsm_in_image(
    kube_cluster: Cluster, namespace: str, built: dict[str, image.Built]
) -> None:
    """SoftHSM's own config is root:softhsm 0640; like the pkcs11 plugin in a cluster, the
    pod points SOFTHSM2_CONF at a token directory on a writable volume (here /tmp)."""
    script = (
        "import os, pkcs11; p = '/usr/lib/softhsm/libsofthsm2.so'; "
        "assert os.path.isfile(p), p; os.makedirs('/tmp/tokens'); "
        "open('/tmp/softhsm2.conf', 'w').write('directories.tokendir = /tmp/tokens\\n'); "
        "os.environ['SOFTHSM2_CONF'] = '/tmp/softhsm2.conf'; lib = pkcs11.lib(p); "
        "print('pkcs11', lib.manufacturer_id, os.getuid(), os.getgid())"
    )
    pod = locked_down_pod("pkcs11", built["operator"].ref, ["-c", script], command=["python"])
    phase, log = run_to_end(kube_cluster.core, namespace, pod)
    assert phase == "Succeeded", log
    assert "pkcs11" in log and "65532 65532" in log


def test_client_image_runs_the_sdk_program(
    kube_cluster: Cluster, namespace: str, built: dict[str, image.Built]
) -> None:
    """No identity is injected here: DefaultAzureCredential fails and the program says so
    per secret (the webhook test gives it one)."""
    pod = locked_down_pod("client", built["client"].ref, ["https://nowhere.invalid", "s1"])
    phase, log = run_to_end(kube_cluster.core, namespace, pod)
    assert phase == "Failed", log
    assert "s1 ERROR" in log and "azure-client: ok=0 failed=1" in log, log


# --- the builder's own logic (no cluster) -------------------------------------------------

DEB822 = """Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
"""


def test_mirrors_come_from_the_hosts_apt_sources() -> None:
    one_line = "deb [arch=amd64] http://deb.debian.org/debian-security bookworm-security main\n"
    assert image.debian_mirrors([DEB822, one_line, "deb-src http://x bookworm main"]) == [
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ]


def test_lock_lines_pin_version_and_hash() -> None:
    report = {"install": [
        {"metadata": {"name": "yarl", "version": "1.2"},
         "download_info": {"archive_info": {"hashes": {"sha256": "ab"}}}},
        {"metadata": {"name": "Attrs", "version": "26.1.0"},
         "download_info": {"archive_info": {"hashes": {"sha256": "cd"}}}},
    ]}  # fmt: skip
    assert image.lock_lines(report) == [
        "Attrs==26.1.0 --hash=sha256:cd",
        "yarl==1.2 --hash=sha256:ab",
    ]


def test_lock_files_cover_pyproject() -> None:
    """Every runtime dependency of pyproject.toml is pinned in the operator's lock."""
    for kind, spec in image.SPECS.items():
        pinned = {ln.split("==")[0].lower().replace("_", "-")
                  for ln in spec.lock.read_text().splitlines() if "==" in ln}  # fmt: skip
        for req in image.requirements_from_pyproject(kind):
            name = req.split(">")[0].split("=")[0].split("<")[0].strip().lower()
            assert name in pinned, f"{name} missing from {spec.lock.name}"


def test_tree_layer_is_reproducible(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "opt" / "app" / "bin").mkdir(parents=True)
    (root / "opt" / "app" / "bin" / "tool").write_text("x")
    (root / "opt" / "app" / "link").symlink_to("bin/tool")
    (root / "etc").mkdir()
    first = images.tree_layer(root, tmp_path / "a.tar", only=["opt/app"])
    (root / "opt" / "app" / "bin" / "tool").touch()  # a new mtime changes nothing
    second = images.tree_layer(root, tmp_path / "b.tar", only=["opt/app"])
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        assert tar.getnames() == ["opt", "opt/app", "opt/app/bin", "opt/app/bin/tool",
                                  "opt/app/link"]  # fmt: skip
