"""``make dev``: kvault for real on this machine — cluster, CRDs, operator, and a demo.

``python -m e2e.dev up`` starts the local cluster, builds the operator image (cached by the
hash of its inputs) into the node, applies the CRDs and installs ``charts/kvault`` with Helm
in ``kvault-system`` (the operator runs as a Pod, as it would for a user), creates namespace
``kvault-demo`` with Vault ``demo`` (a secret ``greeting``), VaultSecret ``demo`` and pod
``demo`` that prints the projected value whenever it changes, and writes
``.kvault/dev/env``. ``down`` stops it all.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubernetes import client, utils

from e2e import kube, lifecycle
from e2e.fixtures import Cluster
from e2e.incluster import Release, ensure_image, install
from e2e.layout import Layout
from e2e.wait import wait_for

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".kvault" / "dev"
NS = "kvault-demo"
RELEASE, RELEASE_NS = "kvault", "kvault-system"
TOKEN_SECONDS = 24 * 3600


def _install(kubeconfig: str) -> Release:
    """The image (cached) into the node, then ``helm upgrade --install`` of the chart with
    its defaults, but the tag of this build (so a changed checkout rolls the Pod)."""
    lay = Layout.default()
    cluster = Cluster(kubeconfig, kube.api_client(kubeconfig), owned=False, existing=False,
                      layout=lay)  # fmt: skip
    tag = ensure_image(cluster)
    return install(cluster, RELEASE, RELEASE_NS, {"image": {"tag": tag}})


def _apply(api: client.ApiClient, docs: list[dict[str, Any]]) -> None:
    custom = client.CustomObjectsApi(api)
    for doc in docs:
        if doc["apiVersion"].startswith("kvault.io/"):
            plural = doc["kind"].lower() + "s"
            name = doc["metadata"]["name"]
            if (
                kube.get_or_none(
                    custom.get_namespaced_custom_object, "kvault.io", "v1alpha1", NS, plural, name
                )
                is None
            ):
                custom.create_namespaced_custom_object("kvault.io", "v1alpha1", NS, plural, doc)
        else:
            try:
                utils.create_from_dict(api, doc, namespace=NS)
            except utils.FailToCreateError as exc:
                if not all(kube.status_of(e) == 409 for e in exc.api_exceptions):
                    raise


def _demo(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    if kube.get_or_none(core.read_namespace, NS) is None:
        core.create_namespace({"metadata": {"name": NS}})
    wait_for(
        lambda: kube.get_or_none(core.read_namespaced_service_account, "default", NS),
        60,
        f"ServiceAccount default in {NS}",
    )
    sa = lambda name: {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}  # noqa: E731
    _apply(api, [sa("demo"), sa("admin")])
    _apply(
        api,
        [
            {
                "apiVersion": "kvault.io/v1alpha1",
                "kind": "Vault",
                "metadata": {"name": "demo"},
                "spec": {
                    "softDeleteRetentionInDays": 7,
                    "roleAssignments": [
                        {
                            "principal": {"serviceAccount": {"name": "demo"}},
                            "role": "Key Vault Secrets User",
                        },
                        {
                            "principal": {"serviceAccount": {"name": "admin"}},
                            "role": "Key Vault Administrator",
                        },
                    ],
                },
            }
        ],
    )


def _ready_vault(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)

    def ready() -> bool:
        vault = custom.get_namespaced_custom_object("kvault.io", "v1alpha1", NS, "vaults", "demo")
        conditions = (vault.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    wait_for(ready, 60, "Vault demo Ready")


def _token(core: client.CoreV1Api, name: str) -> str:
    spec = {"audiences": ["kvault"], "expirationSeconds": TOKEN_SECONDS}
    return str(core.create_namespaced_service_account_token(name, NS, {"spec": spec}).status.token)


def _kvault(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", *args],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def up() -> int:
    STATE.mkdir(parents=True, exist_ok=True, mode=0o700)
    lifecycle.up("node")
    kubeconfig = lifecycle.kubeconfig_path()
    api = kube.api_client(kubeconfig)
    rel = _install(kubeconfig)
    _demo(api)
    _ready_vault(api)
    core = client.CoreV1Api(api)
    ca_file = STATE / "ca.crt"
    ca_file.write_text(core.read_namespaced_config_map("kvault-ca", NS).data["ca.crt"])
    env = {
        "KVAULT_ENDPOINT": rel.endpoint,
        "KVAULT_CA_FILE": str(ca_file),
        "KUBECONFIG": kubeconfig,
        "KVAULT_TOKEN": _token(core, "admin"),
    }
    if kube.get_or_none(core.read_namespaced_pod, "demo", NS) is None:
        _kvault(
            env,
            "secret",
            "set",
            "--vault-name",
            "demo",
            "--namespace",
            NS,
            "--name",
            "greeting",
            "--value",
            "hello from kvault",
        )
    _apply(
        api,
        [
            {
                "apiVersion": "kvault.io/v1alpha1",
                "kind": "VaultSecret",
                "metadata": {"name": "demo"},
                "spec": {
                    "vaultRef": {"name": "demo"},
                    "serviceAccountName": "demo",
                    "refreshInterval": "1h",
                    "data": [{"secretKey": "greeting", "remoteRef": {"name": "greeting"}}],
                    "target": {"name": "demo"},
                },
            }
        ],
    )
    wait_for(
        lambda: kube.get_or_none(core.read_namespaced_secret, "demo", NS),
        60,
        "Secret demo projected",
    )
    script = (
        'last=""; while true; do v=$(cat /etc/demo/greeting); '
        'if [ "$v" != "$last" ]; then echo "greeting: $v"; last="$v"; fi; sleep 1; done'
    )
    pod = kube.busybox_pod(
        "demo",
        script,
        volumes=[{"name": "demo", "secret": {"secretName": "demo"}}],
        mounts=[{"name": "demo", "mountPath": "/etc/demo"}],
    )
    pod["spec"]["restartPolicy"] = "Always"
    _apply(api, [pod])
    kube.wait_pod_running(core, NS, "demo")
    wait_for(
        lambda: "greeting: " in (kube.get_or_none(core.read_namespaced_pod_log, "demo", NS) or ""),
        60,
        "the demo pod printing its value",
    )
    bin_dir = lifecycle.bin_dir()
    exports = {**env, "PATH": f"{ROOT / '.venv' / 'bin'}:{bin_dir}:$PATH"}
    (STATE / "env").write_text("".join(f'export {k}="{v}"\n' for k, v in exports.items()))
    os.chmod(STATE / "env", 0o600)
    print(f"""
kvault is running: the local cluster, kvault installed by Helm in {RELEASE_NS}
(helm install -> Ready in {rel.install_seconds:.0f} s), and a demo in {NS}.

  source .kvault/dev/env
  kubectl -n {NS} get vaults,vaultsecrets,secrets
  kubectl -n {RELEASE_NS} logs deploy/{RELEASE}              # the operator
  kubectl -n {NS} logs -f demo                     # prints the projected value on change
  kvault secret set --vault-name demo --namespace {NS} --name greeting --value "hi again"
  kvault secret show --vault-name demo --namespace {NS} --name greeting --query value -o tsv

Stop everything with: make dev-down
""")
    return 0


def down() -> int:
    lifecycle.down()
    print("kvault dev environment stopped (the cluster and its volumes are removed)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.dev")
    parser.add_argument("command", choices=("up", "down"))
    return up() if parser.parse_args().command == "up" else down()


if __name__ == "__main__":
    sys.exit(main())
