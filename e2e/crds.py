"""kvault's CustomResourceDefinitions on a cluster: load, server-side apply, wait Established.

Reusable by any e2e test (controller tests included)::

    from e2e.crds import apply_crds
    apply_crds(kube_cluster.api)          # idempotent; returns the CRD names

or from a shell: ``python -m e2e.crds [KUBECONFIG]``.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from e2e import kube
from e2e.wait import wait_for

ROOT = Path(__file__).resolve().parent.parent
CRD_DIR = ROOT / "crds"
EXAMPLES_DIR = ROOT / "docs" / "examples"
GROUP = "kvault.io"
VERSION = "v1alpha1"
FIELD_MANAGER = "kvault-crds"
ESTABLISH_TIMEOUT = 60.0


def load_crds(directory: Path = CRD_DIR) -> list[dict[str, Any]]:
    """Every CRD document of ``crds/*.yaml``, in file order."""
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def load_examples(name: str) -> list[dict[str, Any]]:
    """The documents of ``docs/examples/<name>``."""
    return [d for d in yaml.safe_load_all((EXAMPLES_DIR / name).read_text()) if d]


def _established(ext: client.ApiextensionsV1Api, name: str) -> bool:
    crd = ext.read_custom_resource_definition(name)
    conditions = (crd.status and crd.status.conditions) or []
    state = {c.type: c.status for c in conditions}
    return state.get("Established") == "True" and state.get("NamesAccepted") == "True"


def apply_crds(
    api: client.ApiClient, timeout: float = ESTABLISH_TIMEOUT, directory: Path = CRD_DIR
) -> list[str]:
    """Server-side apply every CRD and wait until each is Established; idempotent."""
    ext = client.ApiextensionsV1Api(api)
    names: list[str] = []
    for crd in load_crds(directory):
        name = crd["metadata"]["name"]
        ext.patch_custom_resource_definition(
            name,
            crd,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        names.append(name)
    for name in names:
        wait_for(partial(_established, ext, name), timeout, f"CRD {name} Established")
    return names


def main(argv: list[str]) -> int:
    kubeconfig = argv[0] if argv else None
    for name in apply_crds(kube.api_client(kubeconfig)):
        print(f"{name} established")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
