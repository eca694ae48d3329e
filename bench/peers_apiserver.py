"""The apiserver's own count of an operator's requests, for ``python -m bench peers operator``.

The local cluster is shared, so ``apiserver_request_total`` (no user label) mixes everyone's
requests. Each operator therefore runs as an :class:`Identity` of its own: a ServiceAccount
bound to cluster-admin, with a FlowSchema that matches only it (priority level ``exempt``, so
it is never queued, like the admin user) and whose name keys
``apiserver_flowcontrol_dispatched_requests_total``: exactly that operator's requests. The
cluster-wide ``apiserver_request_total`` of the resources it uses is reported beside, for the
breakdown by verb and resource (other users' requests included). ``/metrics`` is read with the
admin kubeconfig (client certificate, group ``system:masters``).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from e2e import kube
from e2e.fixtures import Cluster
from e2e.wait import wait_for

#: (verb, group, resource, subresource)
RequestKey = tuple[str, str, str, str]

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class Scrape:
    """One read of the apiserver's ``/metrics``."""

    #: ``apiserver_request_total`` summed over code, scope, version and component.
    requests: Counter[RequestKey]
    #: ``apiserver_flowcontrol_dispatched_requests_total`` by FlowSchema.
    by_flow: Counter[str]


def scrape(cluster: Cluster) -> Scrape:
    """The apiserver's ``/metrics``, read as the admin kubeconfig's user (``system:masters``)."""
    request = cluster.api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])
    resp = cluster.api.call_api(*request)
    if resp.status != 200:
        raise RuntimeError(f"GET /metrics: HTTP {resp.status}")
    out = Scrape(Counter(), Counter())
    for line in resp.read().decode().splitlines():
        if line.startswith("apiserver_request_total{"):
            labels_text, _, value = line.rpartition("} ")
            labels = dict(_LABEL.findall(labels_text))
            key = (
                labels.get("verb", ""),
                labels.get("group", ""),
                labels.get("resource", ""),
                labels.get("subresource", ""),
            )
            out.requests[key] += int(float(value))
        elif line.startswith("apiserver_flowcontrol_dispatched_requests_total{"):
            labels_text, _, value = line.rpartition("} ")
            out.by_flow[dict(_LABEL.findall(labels_text)).get("flow_schema", "")] += int(
                float(value)
            )
    return out


def request_delta(
    before: Counter[RequestKey], after: Counter[RequestKey], keep: Callable[[RequestKey], bool]
) -> dict[str, int]:
    """Requests between two scrapes for the keys ``keep`` selects, by ``VERB group/res[/sub]``."""
    out: dict[str, int] = {}
    for key, n in after.items():
        d = n - before.get(key, 0)
        if d > 0 and keep(key):
            verb, group, resource, sub = key
            out[f"{verb} {group or 'core'}/{resource}{'/' + sub if sub else ''}"] = d
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def between(
    before: Scrape,
    after: Scrape,
    seconds: float,
    who: Identity,
    keep: Callable[[RequestKey], bool],
    n: int,
) -> dict[str, Any]:
    """The requests of ``who`` (its FlowSchema's count) between two scrapes, per object and
    minute; beside them, cluster-wide counts of the resources ``keep`` selects (every user's)."""
    ours = after.by_flow[who.name] - before.by_flow[who.name]
    minutes = seconds / 60
    return {
        "window_s": round(seconds, 1),
        "requests": ours,
        "per_object": round(ours / n, 3),
        "per_object_per_min": round(ours / n / minutes, 4),
        "cluster_by_request": request_delta(before.requests, after.requests, keep),
        "cluster_all_requests": sum(after.requests.values()) - sum(before.requests.values()),
    }


def quiet_window(
    cluster: Cluster, seconds: float, who: Identity, keep: Callable[[RequestKey], bool], n: int
) -> dict[str, Any]:
    """Scrape, let ``seconds`` pass with nothing changing at the source, scrape again."""
    before = scrape(cluster)
    t0 = time.monotonic()
    time.sleep(seconds)  # the measurement itself: a window of steady state, not a wait
    after = scrape(cluster)
    return between(before, after, time.monotonic() - t0, who, keep, n)


# --- an identity per operator -------------------------------------------------------------------


@dataclass
class Identity:
    """A ServiceAccount bound to cluster-admin with a FlowSchema of its own (priority level
    ``exempt``, as ``system:masters`` has): the apiserver counts its requests apart from every
    other user's (``apiserver_flowcontrol_dispatched_requests_total{flow_schema=NAME}``)."""

    name: str
    namespace: str
    kubeconfig: Path
    cluster: Cluster


def make_identity(cluster: Cluster, ns: str, name: str, directory: Path) -> Identity:
    """``name`` (a ``bp-`` name) as ServiceAccount, ClusterRoleBinding and FlowSchema, with a
    kubeconfig holding a 6-hour token; :func:`drop_identity` removes the cluster-wide parts."""
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": name}})
    subject = {"kind": "ServiceAccount", "name": name, "namespace": ns}
    client.RbacAuthorizationV1Api(cluster.api).create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [subject],
        }
    )
    every = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"]}
    flowcontrol = client.FlowcontrolApiserverV1Api(cluster.api)
    flowcontrol.create_flow_schema(
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "FlowSchema",
            "metadata": {"name": name},
            "spec": {
                "priorityLevelConfiguration": {"name": "exempt"},
                "matchingPrecedence": 50,
                "rules": [
                    {
                        "subjects": [
                            {
                                "kind": "ServiceAccount",
                                "serviceAccount": {"name": name, "namespace": ns},
                            }
                        ],
                        "resourceRules": [{**every, "clusterScope": True}],
                        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                    }
                ],
            },
        }
    )

    def active() -> bool:
        fs = flowcontrol.read_flow_schema(name)
        conditions = (fs.status and fs.status.conditions) or []
        return any(c.type == "Dangling" and c.status == "False" for c in conditions)

    wait_for(active, 60, f"FlowSchema {name} active")
    token = cluster.core.create_namespaced_service_account_token(
        name, ns, {"spec": {"expirationSeconds": 6 * 3600}}
    ).status.token
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    path = directory / f"{name}.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": admin["clusters"][:1],
                "users": [{"name": name, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": name,
                        "context": {"cluster": admin["clusters"][0]["name"], "user": name},
                    }
                ],
                "current-context": name,
            }
        )
    )
    path.chmod(0o600)
    api = kube.api_client(str(path))
    return Identity(name, ns, path, Cluster(str(path), api, owned=False, existing=True))


def drop_identity(cluster: Cluster, who: Identity) -> None:
    """The FlowSchema and ClusterRoleBinding (the ServiceAccount goes with its namespace)."""
    kube.get_or_none(client.FlowcontrolApiserverV1Api(cluster.api).delete_flow_schema, who.name)
    kube.get_or_none(
        client.RbacAuthorizationV1Api(cluster.api).delete_cluster_role_binding, who.name
    )
