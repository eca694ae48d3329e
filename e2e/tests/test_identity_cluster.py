"""Identity against a real kube-apiserver: TokenReview, the token exchange, local verification.

No fakes: ServiceAccounts and tokens come from the cluster (TokenRequest), reviews go to its
API server through kvault's own Kubernetes client, and the signing key lives in a real
kvault (SQLite + software HSM). kvault's credentials here are the admin kubeconfig; in a
deployment its ServiceAccount needs ClusterRole system:auth-delegator, checked below too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import pytest
from kubernetes import client

from e2e import kube
from e2e.fixtures import Cluster
from kvault.app.backends import open_kvault
from kvault.errors import Unauthenticated, Unavailable
from kvault.hsm.registry import load
from kvault.identity import jws
from kvault.identity.exchange import ASSERTION_TYPE
from kvault.identity.service import open_identity
from kvault.identity.tokenreview import KubeTokenReviewer, ReviewStatus, TokenReviewAuthenticator
from kvault.kube.client import KubeClient, KubeConfig, load_config
from kvault.vault.service import Kvault

AUDIENCE = "kvault"


class CountingReviewer:
    """The real reviewer, counting the TokenReviews it sends."""

    def __init__(self, inner: KubeTokenReviewer) -> None:
        self.inner = inner
        self.calls = 0

    async def __call__(self, token: str, audiences: Sequence[str]) -> ReviewStatus:
        self.calls += 1
        return await self.inner(token, audiences)


def service_account(cluster: Cluster, ns: str, name: str = "app") -> client.V1ServiceAccount:
    return cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": name}})


def request_token(
    cluster: Cluster, ns: str, sa: str, audiences: list[str] | None, seconds: int = 3600
) -> str:
    """A bound token from the TokenRequest API (what a projected volume holds)."""
    spec: dict[str, object] = {"expirationSeconds": seconds}
    if audiences is not None:
        spec["audiences"] = audiences
    resp = cluster.core.create_namespaced_service_account_token(sa, ns, {"spec": spec})
    return str(resp.status.token)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 30) -> None:
    """Poll ``check`` until true, with a deadline (RBAC and SA deletion propagate async)."""
    try:
        async with asyncio.timeout(within):
            while True:  # the cluster offers no event to wait on: poll with a deadline
                if await check():
                    return
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out after {within}s waiting for {what}") from None


@pytest.fixture
async def kube_client(kube_cluster: Cluster) -> AsyncIterator[KubeClient]:
    async with KubeClient(load_config(kube_cluster.kubeconfig)) as c:
        yield c


@pytest.fixture
def reviewer(kube_client: KubeClient) -> CountingReviewer:
    return CountingReviewer(KubeTokenReviewer(kube_client))


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[Kvault]:
    hsm = load("software", {"key_file": str(tmp_path / "root.keys")})
    kv = await open_kvault(tmp_path / "data", hsm)
    yield kv
    await kv.close()


async def test_service_account_token_becomes_principal(
    kube_cluster: Cluster, namespace: str, reviewer: CountingReviewer
) -> None:
    sa = service_account(kube_cluster, namespace)
    token = request_token(kube_cluster, namespace, "app", [AUDIENCE])
    auth = TokenReviewAuthenticator(reviewer)

    p = await auth.authenticate(token)
    assert p.name == f"system:serviceaccount:{namespace}:app"
    assert {
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    } <= set(p.groups)
    assert p.uid == sa.metadata.uid
    assert p.expires == jws.claims_unverified(token)["exp"]
    assert not p.superuser

    await auth.authenticate(token)
    assert reviewer.calls == 1  # cached by digest


async def test_other_audiences_are_refused(
    kube_cluster: Cluster, namespace: str, reviewer: CountingReviewer
) -> None:
    service_account(kube_cluster, namespace)
    auth = TokenReviewAuthenticator(reviewer)
    for audiences in (["other"], None):  # None: the API server's own audience
        token = request_token(kube_cluster, namespace, "app", audiences)
        with pytest.raises(Unauthenticated, match="wrong audience") as info:
            await auth.authenticate(token)
        assert token not in info.value.message
        # The API server agrees: asked about audience kvault, it does not authenticate it.
        assert not (await reviewer.inner(token, [AUDIENCE])).authenticated

    # A token the API server refuses (audience kvault, but a configured audience it lacks).
    token = request_token(kube_cluster, namespace, "app", [AUDIENCE])
    strict = TokenReviewAuthenticator(reviewer, audiences=[AUDIENCE, "also"])
    assert (await strict.authenticate(token)).name.endswith(":app")
    elsewhere = TokenReviewAuthenticator(reviewer, audiences=["elsewhere"])
    with pytest.raises(Unauthenticated, match="wrong audience"):
        await elsewhere.authenticate(token)


async def test_deleted_service_account_invalidates_its_token(
    kube_cluster: Cluster, namespace: str, reviewer: CountingReviewer
) -> None:
    service_account(kube_cluster, namespace, "doomed")
    token = request_token(kube_cluster, namespace, "doomed", [AUDIENCE])
    assert (await TokenReviewAuthenticator(reviewer).authenticate(token)).name.endswith(":doomed")
    kube_cluster.core.delete_namespaced_service_account("doomed", namespace)

    async def refused() -> bool:
        try:
            await TokenReviewAuthenticator(reviewer).authenticate(token)  # fresh cache
        except Unauthenticated as exc:
            assert "invalid token" in exc.message and token not in exc.message
            return True
        return False

    await eventually(refused, "the token of a deleted ServiceAccount to be refused")


async def test_exchange_then_local_verification(
    kube_cluster: Cluster, namespace: str, reviewer: CountingReviewer, kv: Kvault
) -> None:
    service_account(kube_cluster, namespace)
    assertion = request_token(kube_cluster, namespace, "app", [AUDIENCE], seconds=3600)
    identity = await open_identity(kv.sealed, reviewer)

    resp = await identity.exchange.exchange(
        {
            "client_assertion": assertion,
            "client_assertion_type": ASSERTION_TYPE,
            "client_id": "app",
            "grant_type": "client_credentials",
            "scope": "https://v1.kvault.example/.default",
        }
    )
    assert resp.status == 200, resp.body
    assert resp.body["token_type"] == "Bearer"
    assert 0 < resp.body["expires_in"] <= 3600
    access = resp.body["access_token"]
    assert reviewer.calls == 1

    p = await identity.authenticator.authenticate(access)
    assert p.name == f"system:serviceaccount:{namespace}:app"
    assert f"system:serviceaccounts:{namespace}" in p.groups
    assert reviewer.calls == 1  # verified locally: no TokenReview for kvault's own token
    # Another replica (same storage, its own caches) verifies it by signature, also locally.
    replica = await open_identity(kv.sealed, reviewer)
    assert (await replica.authenticator.authenticate(access)) == p
    assert reviewer.calls == 1

    # The access token never outlives the assertion it was exchanged for.
    assert jws.claims_unverified(access)["exp"] <= jws.claims_unverified(assertion)["exp"]

    # A ServiceAccount token presented directly still works through the chain.
    direct = request_token(kube_cluster, namespace, "app", [AUDIENCE])
    assert (await identity.authenticator.authenticate(direct)).name == p.name
    assert reviewer.calls == 2

    # A refused assertion is OAuth invalid_client, naming the reason but not the token.
    other = request_token(kube_cluster, namespace, "app", ["other"])
    bad = await identity.exchange.exchange(
        {
            "client_assertion": other,
            "client_assertion_type": ASSERTION_TYPE,
            "grant_type": "client_credentials",
        }
    )
    assert (bad.status, bad.body["error"]) == (401, "invalid_client")
    assert "wrong audience" in bad.body["error_description"]
    assert other not in bad.body["error_description"]


@pytest.fixture
def delegator(kube_cluster: Cluster, namespace: str) -> Iterator[Callable[[], None]]:
    """Grants the test ServiceAccount system:auth-delegator on demand; removed afterwards."""
    rbac = client.RbacAuthorizationV1Api(kube_cluster.api)
    name = f"kvault-e2e-{uuid.uuid4().hex[:8]}"

    def grant() -> None:
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": name, "labels": {"kvault.io/e2e": "true"}},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:auth-delegator",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "kvault", "namespace": namespace}],
            }
        )

    yield grant
    kube.get_or_none(rbac.delete_cluster_role_binding, name)


async def test_kvault_needs_auth_delegator(
    kube_cluster: Cluster, namespace: str, delegator: Callable[[], None]
) -> None:
    """kvault running as its own ServiceAccount: refused without the ClusterRole (a clear
    Unavailable, not a caller error), working with it."""
    service_account(kube_cluster, namespace, "kvault")
    service_account(kube_cluster, namespace, "app")
    own = request_token(kube_cluster, namespace, "kvault", None)  # for the API server
    admin = load_config(kube_cluster.kubeconfig)
    as_kvault = KubeConfig(server=admin.server, ca_pem=admin.ca_pem, token=own)
    token = request_token(kube_cluster, namespace, "app", [AUDIENCE])

    async with KubeClient(as_kvault) as kc:
        auth = KubeTokenReviewer(kc)
        with pytest.raises(Unavailable, match="system:auth-delegator"):
            await auth(token, [AUDIENCE])
        delegator()

        async def allowed() -> bool:
            try:
                return (await auth(token, [AUDIENCE])).authenticated
            except Unavailable:
                return False

        await eventually(allowed, "the auth-delegator binding to take effect")


async def test_unreachable_api_is_unavailable(kube_cluster: Cluster) -> None:
    admin = load_config(kube_cluster.kubeconfig)
    dead = KubeConfig(server="https://127.0.0.1:9", ca_pem=admin.ca_pem, token="x")
    async with KubeClient(dead, timeout=5) as kc:
        auth = TokenReviewAuthenticator(KubeTokenReviewer(kc))
        with pytest.raises(Unavailable, match="unreachable"):
            await auth.authenticate("abcdef.0123456789abcdef")
