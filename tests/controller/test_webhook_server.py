"""The webhook over real HTTPS: a client verifying against kvault's CA posts AdmissionReviews;
a short certificate validity shows rotation without a restart. The Kubernetes API behind it
is a small in-memory stand-in (ServiceAccounts, ConfigMaps, one webhook configuration)."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import json
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp

from kvault.api.tls import CertificateAuthority
from kvault.controller.webhook.cabundle import patch_ca_bundle
from kvault.controller.webhook.listener import WebhookSettings, serving
from kvault.kube.client import KubeApiError

SNI = "kvault-webhook.kvault-system.svc"


class FakeKube:
    """Objects by path; apply stores the body, JSON patch understands add/test."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.applied: list[str] = []

    async def get(self, path: str) -> dict[str, Any]:
        if path not in self.objects:
            raise KubeApiError(404, "Not Found", "not found")
        return copy.deepcopy(self.objects[path])

    async def apply(self, path: str, body: dict[str, Any], *, field_manager: str) -> dict[str, Any]:
        assert field_manager == "kvault"
        self.applied.append(path)
        self.objects[path] = copy.deepcopy(body)
        return body

    async def patch(self, path: str, body: list[Any], *, content_type: str = "") -> dict[str, Any]:
        obj = self.objects[path]
        for op in body:
            parts = op["path"].lstrip("/").split("/")
            target: Any = obj
            for part in parts[:-1]:
                target = target[int(part)] if isinstance(target, list) else target[part]
            if op["op"] == "test":
                if target[parts[-1]] != op["value"]:
                    raise KubeApiError(422, "Invalid", "test failed")
            else:
                target[parts[-1]] = op["value"]
        return obj


def _review(labels: dict[str, str], dry_run: bool = False) -> dict[str, Any]:
    pod = {
        "metadata": {"generateName": "app-", "labels": labels},
        "spec": {"serviceAccountName": "app", "containers": [{"name": "main"}]},
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "team-a",
            "operation": "CREATE",
            "object": pod,
            "dryRun": dry_run,
        },
    }


def _client_tls(ca: CertificateAuthority) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.cert_file))


async def _serial(port: int, ctx: ssl.SSLContext) -> int:
    """The serial number of the certificate the server presents (verified against the CA)."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=SNI)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        await writer.wait_closed()
    from cryptography import x509

    return x509.load_der_x509_certificate(der).serial_number


async def test_mutates_labelled_pods_over_verified_tls(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "tls")
    kube = FakeKube()
    kube.objects["/api/v1/namespaces/team-a/serviceaccounts/app"] = {
        "metadata": {"name": "app", "annotations": {"kvault.io/client-id": "my-app"}}
    }
    settings = WebhookSettings(port=0, service="kvault-webhook", namespace="kvault-system")
    async with serving(settings, kube, ca, "127.0.0.1") as hook:
        url = f"https://127.0.0.1:{hook.port}/mutate"
        async with aiohttp.ClientSession() as http:
            tls = _client_tls(ca)
            post = {"ssl": tls, "server_hostname": SNI}
            async with http.post(url, json=_review({"kvault.io/use": "true"}), **post) as r:
                assert r.status == 200
                answer = (await r.json())["response"]
            assert answer["uid"] == "u-1" and answer["allowed"] is True
            assert answer["patchType"] == "JSONPatch"
            ops = json.loads(base64.b64decode(answer["patch"]))
            env = {e["name"]: e["value"] for e in ops[0]["value"]}
            assert env["AZURE_CLIENT_ID"] == "my-app"
            assert env["AZURE_AUTHORITY_HOST"] == "https://kvault.kvault-system.svc"
            cm = kube.objects["/api/v1/namespaces/team-a/configmaps/kvault-ca"]
            assert cm["data"]["ca.crt"] == ca.cert_file.read_text()
            assert "PRIVATE" not in json.dumps(ops)

            async with http.post(url, json=_review({}), **post) as r:
                plain = (await r.json())["response"]
            assert plain == {"uid": "u-1", "allowed": True}

            del kube.objects["/api/v1/namespaces/team-a/configmaps/kvault-ca"]
            review = _review({"kvault.io/use": "true"}, dry_run=True)
            async with http.post(url, json=review, **post) as r:
                assert (await r.json())["response"]["patchType"] == "JSONPatch"
            assert "/api/v1/namespaces/team-a/configmaps/kvault-ca" not in kube.objects

            async with http.post(url, data=b"not json", **post) as r:
                assert r.status == 400


async def test_api_errors_answer_500_so_failure_policy_decides(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "tls")

    class Down(FakeKube):
        async def get(self, path: str) -> dict[str, Any]:
            raise KubeApiError(503, "Service Unavailable", "down")

    settings = WebhookSettings(port=0, service="kvault-webhook", namespace="kvault-system")
    async with (
        serving(settings, Down(), ca, "127.0.0.1") as hook,
        aiohttp.ClientSession() as http,
    ):
        url = f"https://127.0.0.1:{hook.port}/mutate"
        review = _review({"kvault.io/use": "true"})
        async with http.post(url, json=review, ssl=_client_tls(ca), server_hostname=SNI) as r:
            assert r.status == 500


async def test_short_validity_rotates_the_served_certificate(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "tls")
    settings = WebhookSettings(
        port=0,
        service="kvault-webhook",
        namespace="kvault-system",
        validity=dt.timedelta(seconds=3),
    )
    async with serving(settings, FakeKube(), ca, "127.0.0.1") as hook:
        tls = _client_tls(ca)
        first = await _serial(hook.port, tls)
        deadline = time.monotonic() + 10
        while (now := await _serial(hook.port, tls)) == first:
            assert time.monotonic() < deadline, "the certificate was not renewed"
            await asyncio.sleep(0.1)
        assert now != first and hook.cert.renewals >= 1


async def test_ca_bundle_patch_is_idempotent(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "tls")
    kube = FakeKube()
    path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/kv"
    kube.objects[path] = {
        "metadata": {"name": "kv", "resourceVersion": "1"},
        "webhooks": [{"name": "pods.kvault.io", "clientConfig": {"service": {}}}],
    }
    pem = ca.cert_file.read_text()
    assert await patch_ca_bundle(kube, "kv", pem)
    bundle = kube.objects[path]["webhooks"][0]["clientConfig"]["caBundle"]
    assert base64.b64decode(bundle).decode() == pem
    assert not await patch_ca_bundle(kube, "kv", pem)
