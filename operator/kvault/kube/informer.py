"""List, then watch, one collection: every object's events to a callback, at little cost.

The VaultSecrets and the Secrets they project are many. kopf handled their events before,
and spent on each one (an ``on.event`` handler included) a diff base, causes, three loggers,
a body wrapper and a patch: 45 % of the operator's CPU in a cold reconcile of 2,000 objects
(py-spy; docs/performance.md). Their controllers only need the events, so this delivers them
itself: a paginated list (each item as an event of type ``None``, as kopf delivered a
listing), then a watch from the list's ``resourceVersion`` with bookmarks. A watch that
ends is resumed where it stopped; one whose version expired (410) lists again and delivers
``DELETED`` for every object that went meanwhile, so the callback sees every deletion.
kopf keeps the Vaults, which are few and have change handlers and a finalizer of kopf's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import orjson

from kvault.errors import KvaultError, Unavailable
from kvault.kube.client import KubeClient
from kvault.kube.errors import ApiError

log = logging.getLogger(__name__)

#: Objects per page of a list (as kopf's ``chunk_size`` was set).
CHUNK = 500
#: Seconds the API server keeps one watch open (it ends it then; the informer resumes).
WATCH_SECONDS = 300
#: Back-off between failed attempts: doubling from the first to the last.
BACKOFF = (0.5, 30.0)
#: What an informer remembers of each object, to deliver it as ``DELETED`` after a relist
#: (with the annotations it is told to keep).
_KEPT = ("name", "namespace", "uid")

Deliver = Callable[[Mapping[str, Any]], None]


class _Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class Informer:
    """Delivers the events of collection ``path`` (e.g. ``/apis/g/v/things``, or one
    namespace's) to ``deliver``; :meth:`run` until cancelled. ``annotations``: the ones a
    ``DELETED`` event delivered after a relist carries (the others are not remembered).
    ``accept``: which namespaces' objects to deliver (a cluster-wide collection filtered)."""

    def __init__(
        self,
        kube: KubeClient,
        path: str,
        deliver: Deliver,
        *,
        label_selector: str = "",
        annotations: tuple[str, ...] = (),
        accept: Callable[[str], bool] | None = None,
    ) -> None:
        self.kube = kube
        self.path = path
        self.deliver = deliver
        self.label_selector = label_selector
        self.annotations = annotations
        self.accept = accept
        #: (namespace, name) -> the metadata kept of each object listed or watched.
        self.known: dict[tuple[str, str], dict[str, Any]] = {}
        self.lists = 0  # how often it listed (the first time, and after each 410)
        #: The resourceVersion of the last event delivered (a watch resumes from it).
        self.version: str | None = None

    async def run(self) -> None:
        delay = BACKOFF[0]
        while True:
            try:
                if self.version is None:
                    self.version = await self._list()
                await self._watch(self.version)
                delay = BACKOFF[0]
            except _Expired:
                self.version = None
            except (KvaultError, aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                why = str(exc) if isinstance(exc, ApiError) else type(exc).__name__
                log.warning("watch of %s failed (%s); again in %.1f s", self.path, why, delay)
                await asyncio.sleep(delay)
                delay = min(BACKOFF[1], delay * 2)

    def _params(self, **more: str) -> dict[str, str]:
        params = dict(more)
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        return params

    async def _list(self) -> str:
        """Every object, page by page, as events of type ``None``; then ``DELETED`` for the
        ones known before that are gone. The list's resourceVersion."""
        seen: set[tuple[str, str]] = set()
        token = ""
        while True:
            params = self._params(limit=str(CHUNK))
            if token:
                params["continue"] = token
            page = await self.kube.get(self.path, params)
            api_version = str(page.get("apiVersion", ""))
            kind = str(page.get("kind", "")).removesuffix("List")
            for item in page.get("items") or ():
                if not self._accepted(item):
                    continue
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                seen.add(self._keep(item))
                self._deliver(None, item)
            meta = page.get("metadata") or {}
            token = str(meta.get("continue") or "")
            if not token:
                break
        for key in [k for k in self.known if k not in seen]:
            self._deliver("DELETED", {"metadata": self.known.pop(key)})
        self.lists += 1
        return str(meta.get("resourceVersion", ""))

    async def _watch(self, version: str) -> None:
        """Events from ``version`` until the server ends the watch (:attr:`version` follows
        them, so a watch cut off is resumed after the last event delivered)."""
        params = self._params(
            watch="1",
            resourceVersion=version,
            allowWatchBookmarks="true",
            timeoutSeconds=str(WATCH_SECONDS),
        )
        async for event in self._stream(params):
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise _Expired()
                raise ApiError(int(obj.get("code") or 500), obj.get("reason", ""), "watch error")
            seen = (obj.get("metadata") or {}).get("resourceVersion")
            if kind != "BOOKMARK" and self._accepted(obj):
                if kind == "DELETED":
                    self.known.pop(_key(obj), None)
                else:
                    self._keep(obj)
                self._deliver(kind, obj)
            if seen:
                self.version = str(seen)

    async def _stream(self, params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The watch's events, one JSON object per line (lines of any length)."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=WATCH_SECONDS + 30)
        url = self.kube.config.server + self.path
        async with self.kube.session().get(
            url, params=params, headers=self.kube.auth_headers(), timeout=timeout
        ) as resp:
            if resp.status == 410:
                raise _Expired()
            if resp.status >= 400:
                raise ApiError(resp.status, resp.reason or "", "watch refused")
            pending = b""
            async for chunk in resp.content.iter_any():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield orjson.loads(line)
        if pending.strip():
            raise Unavailable(f"the watch of {self.path} ended inside an event")

    def _accepted(self, obj: Mapping[str, Any]) -> bool:
        return self.accept is None or self.accept(_key(obj)[0])

    def _keep(self, obj: Mapping[str, Any]) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        key = _key(obj)
        kept = {k: meta[k] for k in _KEPT if k in meta}
        if self.annotations:
            have = meta.get("annotations") or {}
            kept["annotations"] = {k: have[k] for k in self.annotations if k in have}
        self.known[key] = kept
        return key

    def _deliver(self, kind: str | None, obj: Mapping[str, Any]) -> None:
        try:
            self.deliver({"type": kind, "object": obj})
        except Exception:  # one object's handler must not stop the others' events
            log.exception("handling a watch event of %s failed", self.path)


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")
