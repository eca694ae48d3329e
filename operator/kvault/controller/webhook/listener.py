"""The webhook's HTTPS listener in the operator process (every replica), with its
certificate renewal and the caBundle / own-namespace CA upkeep beside it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from kvault.controller.webhook.cabundle import Kube, ensure_ca_config_map, patch_ca_bundle
from kvault.controller.webhook.certs import DEFAULT_VALIDITY, RotatingCert, service_names
from kvault.controller.webhook.mutation import Injection
from kvault.controller.webhook.server import Webhook, webhook_app
from kvault.crypto.authority import CertificateAuthority

log = logging.getLogger(__name__)
#: How often the caBundle is checked (a `helm upgrade` or a re-install may reset it).
UPKEEP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    port: int  # 0: any free port
    service: str  # the webhook's Service (its DNS names go into the certificate)
    namespace: str  # the operator's namespace
    configuration: str = ""  # MutatingWebhookConfiguration to patch ("" : none)
    authority_host: str = ""  # kvault's data plane; default https://kvault.<namespace>.svc
    tenant: str = "kvault"
    validity: dt.timedelta = DEFAULT_VALIDITY


@dataclass(frozen=True, slots=True)
class Serving:
    port: int
    cert: RotatingCert


async def _upkeep(kube: Kube, settings: WebhookSettings, ca_pem: str) -> None:
    while True:
        try:
            await patch_ca_bundle(kube, settings.configuration, ca_pem)
        except Exception as exc:  # retried at the next round
            log.warning("webhook caBundle upkeep failed: %s", type(exc).__name__)
        await asyncio.sleep(UPKEEP_SECONDS)


async def publish_ca(kube: Kube, namespace: str, ca_pem: str) -> None:
    """``kvault-ca`` in the operator's own namespace (the chart's ``helm test`` pod and
    clients there trust kvault through it); retried until it is written."""
    while True:
        try:
            await ensure_ca_config_map(kube, namespace, ca_pem)
            return
        except Exception as exc:
            log.warning("cannot publish kvault-ca in %s: %s", namespace, type(exc).__name__)
        await asyncio.sleep(UPKEEP_SECONDS / 6)


@contextlib.asynccontextmanager
async def serving(
    settings: WebhookSettings,
    kube: Kube,
    ca: CertificateAuthority,
    host: str,
) -> AsyncIterator[Serving]:
    """Listen on ``host:settings.port`` until the block ends."""
    ca_pem = ca.cert_file.read_text()
    authority = settings.authority_host or f"https://kvault.{settings.namespace}.svc"
    hook = Webhook(kube, Injection(authority_host=authority, tenant=settings.tenant), ca_pem)
    cert = RotatingCert(ca, service_names(settings.service, settings.namespace), settings.validity)
    runner = web.AppRunner(webhook_app(hook), access_log=None, handle_signals=False)
    await runner.setup()
    tasks: list[asyncio.Task[None]] = []
    try:
        site = web.TCPSite(runner, host, settings.port, ssl_context=cert.context)
        await site.start()
        sockets = getattr(site._server, "sockets", None)  # asyncio's Server or uvloop's
        assert sockets, "the webhook site is not listening"
        port: int = sockets[0].getsockname()[1]
        tasks.append(asyncio.create_task(cert.keep_fresh()))
        if settings.configuration:
            tasks.append(asyncio.create_task(_upkeep(kube, settings, ca_pem)))
        yield Serving(port, cert)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.cleanup()
