"""Fast checks of the harness's own logic (no cluster needed)."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from cryptography import x509

from e2e import build, images, pki, versions
from e2e.wait import Abort, WaitTimeout, wait_for

KK_GOMOD = """module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
\tk8s.io/api v0.0.0
\tgo.etcd.io/etcd/client/v3 v3.6.4
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/cri-streaming => ./staging/src/k8s.io/cri-streaming
)
"""


def test_wrapper_gomod_pins_every_staging_module_to_its_tag() -> None:
    gomod = build.k8s_wrapper_gomod(KK_GOMOD, "1.34.4")
    assert "go 1.24.0" in gomod and "godebug default=go1.24" in gomod
    assert "require k8s.io/kubernetes v1.34.4" in gomod
    for mod in ("k8s.io/api", "k8s.io/client-go", "k8s.io/cri-streaming"):
        assert f"\t{mod} => {mod} v0.34.4" in gomod
    assert "./staging" not in gomod


def test_version_ldflags_stamp_both_version_packages() -> None:
    flags = build.version_ldflags("1.34.4")
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {pkg}.gitVersion=v1.34.4" in flags
        assert f"-X {pkg}.gitMinor=34" in flags


def test_oci_archive_is_content_addressed_and_named(tmp_path: Path) -> None:
    out = tmp_path / "images.tar"
    names = images.write_archive(out)
    assert set(names) == {versions.PAUSE_IMAGE, versions.BUSYBOX_IMAGE}
    with tarfile.open(out) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    index = json.loads(files["index.json"])
    named = {m["annotations"]["io.containerd.image.name"] for m in index["manifests"]}
    assert named == set(names)
    for desc in index["manifests"]:
        manifest = json.loads(files[f"blobs/sha256/{desc['digest'].split(':')[1]}"])
        config = json.loads(files[f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"])
        assert (config["os"], config["architecture"]) == ("linux", "amd64")


def test_archive_is_reproducible(tmp_path: Path) -> None:
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    images.write_archive(a)
    images.write_archive(b)
    assert a.read_bytes() == b.read_bytes()


def test_certificates_chain_to_the_ca(tmp_path: Path) -> None:
    pki.generate(tmp_path, "node-x", "192.0.2.2", "10.96.0.1")
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    api = x509.load_pem_x509_certificate((tmp_path / "apiserver.crt").read_bytes())
    api.verify_directly_issued_by(ca)
    sans = api.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    kubelet = x509.load_pem_x509_certificate((tmp_path / "kubelet.crt").read_bytes())
    assert kubelet.subject.rfc4514_string() == "CN=system:node:node-x,O=system:nodes"
    assert oct((tmp_path / "ca.key").stat().st_mode & 0o777) == "0o600"


def test_wait_for_returns_value_times_out_and_aborts() -> None:
    calls = iter([None, 0, "ready"])
    assert wait_for(lambda: next(calls), 5, "value", interval=0.01) == "ready"
    with pytest.raises(WaitTimeout, match="never"):
        wait_for(lambda: False, 0.05, "never", interval=0.01)

    def dead() -> bool:
        raise Abort("daemon died")

    with pytest.raises(Abort):
        wait_for(dead, 5, "abort")
