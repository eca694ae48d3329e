"""Cluster-side helpers shared by ``python -m bench peers operator`` (kvault and ESO alike).

- :class:`SecretFollower`: one raw watch (JSON lines, no model decoding) on the Secrets that
  carry a label, in a set of namespaces: when each was first seen, and its latest ``value``.
- :func:`latency_rounds`: change a value at the source, time until its Secret holds it.
- :func:`proc_stats`: RSS (VmRSS) and CPU seconds (utime + stime) of a process and its children.
- :func:`create_many`, :func:`make_namespaces`, :func:`delete_namespaces`: object churn in
  threads, fresh ``bp-`` namespaces and their removal.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from e2e import kube
from e2e.fixtures import Cluster
from e2e.operator_harness import make_namespace
from e2e.wait import Abort, wait_for

THREADS = 16  # as bench/operator.py creates its objects
MAX_REDONE = 20  # latency rounds done again after an operator crash, at most


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- processes --------------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                continue
    return out


def proc_stats(pid: int) -> dict[str, float]:
    """RSS in MiB (VmRSS) and CPU seconds (utime + stime) of ``pid`` and its children."""
    rss_kb, ticks = 0, 0
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+)", status, re.MULTILINE)
        rss_kb += int(found.group(1)) if found else 0
        fields = stat.rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return {
        "rss_mb": round(rss_kb / 1024, 1),
        "cpu_s": round(ticks / os.sysconf("SC_CLK_TCK"), 2),
    }


def cold_figures(n: int, elapsed: float, stats: dict[str, float], requests: int) -> dict[str, Any]:
    """The figures of a cold reconcile of ``n`` objects, alike for every operator."""
    return {
        "reconcile_s": round(elapsed, 2),
        "per_s": round(n / elapsed, 1),
        "operator_rss_mb": stats["rss_mb"],
        "operator_cpu_s": stats["cpu_s"],
        "cpu_ms_per_object": round(stats["cpu_s"] * 1000 / n, 2),
        "requests_per_object": round(requests / n, 2),
    }


# --- Secrets seen through a watch -------------------------------------------------------------


class SecretFollower:
    """Follows the Secrets with ``label`` in ``namespaces`` through one watch (all namespaces,
    filtered here), started before anything it should see happens."""

    def __init__(self, cluster: Cluster, namespaces: Iterable[str], label: str) -> None:
        self.cluster = cluster
        self.namespaces = frozenset(namespaces)
        self.label = label
        self.first: dict[tuple[str, str], float] = {}  # perf_counter when first seen
        self.latest: dict[tuple[str, str], tuple[float, str]] = {}  # (time, decoded value)
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._rv = ""
        self.error: BaseException | None = None

    def __enter__(self) -> SecretFollower:
        self._relist()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _relist(self) -> None:
        listed = self.cluster.core.list_secret_for_all_namespaces(
            label_selector=self.label, _preload_content=False
        )
        doc = json.loads(listed.data)
        now = time.perf_counter()
        for item in doc["items"]:
            self._record(now, item)
        self._rv = doc["metadata"]["resourceVersion"]

    def _record(self, at: float, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if key[0] not in self.namespaces:
            return
        raw = (obj.get("data") or {}).get("value", "")
        value = base64.b64decode(raw).decode() if raw else ""
        with self.changed:
            self.first.setdefault(key, at)
            self.latest[key] = (at, value)
            self.changed.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                resp = self.cluster.core.list_secret_for_all_namespaces(
                    label_selector=self.label,
                    watch=True,
                    allow_watch_bookmarks=True,
                    resource_version=self._rv,
                    timeout_seconds=60,
                    _preload_content=False,
                )
                buf = b""
                for chunk in resp.stream(65536):
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if line.strip():
                            self._event(json.loads(line))
                    if self._stop.is_set():
                        break
                resp.release_conn()
            except ApiException as exc:
                if exc.status != 410:
                    self.error = exc
                    return
                self._relist()
            except _Gone:
                self._relist()
            except Exception as exc:  # the watch must not die silently
                if self._stop.is_set():
                    return
                self.error = exc
                time.sleep(0.5)  # back off before the next watch
                try:
                    self._relist()
                except Exception:
                    return

    def _event(self, ev: dict[str, Any]) -> None:
        obj = ev.get("object") or {}
        if ev.get("type") == "ERROR":
            if obj.get("code") == 410:
                raise _Gone()
            raise RuntimeError(f"watch error: {obj}")
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self._rv = rv
        if ev.get("type") in ("ADDED", "MODIFIED"):
            self._record(time.perf_counter(), obj)

    def count(self) -> int:
        with self.changed:
            return len(self.first)

    def wait_all(
        self, keys: set[tuple[str, str]], timeout: float, check: Callable[[], None] | None = None
    ) -> float:
        """Wait until every Secret of ``keys`` was seen; the perf_counter of the last one.
        ``check`` raises ``Abort`` to give up early (e.g. the operator died)."""

        def done() -> bool:
            if check is not None:
                check()
            with self.changed:
                return keys <= self.first.keys()

        wait_for(done, timeout, f"{len(keys)} target Secrets", interval=0.2)
        with self.changed:
            return max(self.first[k] for k in keys)

    def wait_value(
        self,
        key: tuple[str, str],
        value: str,
        timeout: float,
        check: Callable[[], None] | None = None,
    ) -> float:
        """Wait until the Secret ``key`` holds ``value``; when the watch saw it. ``check`` (called
        every half second) raises ``Abort`` to give up early."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                seen = self.latest.get(key)
                if seen and seen[1] == value:
                    return seen[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"Secret {key} did not get its new value in {timeout}s")
                if check is not None:
                    check()
                self.changed.wait(min(left, 0.5))


class _Gone(Exception):
    """The watch's resourceVersion expired (410): list again."""


# --- objects and namespaces -------------------------------------------------------------------


def create_many(fn: Callable[[Any], None], items: Sequence[Any]) -> float:
    """``fn(item)`` for every item in ``THREADS`` threads; the seconds it took."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(fn, items))
    return time.perf_counter() - t0


def make_namespaces(cluster: Cluster, prefix: str, count: int) -> list[str]:
    return [make_namespace(cluster, prefix) for _ in range(count)]


def delete_namespaces(
    cluster: Cluster, namespaces: Iterable[str], before: Callable[[str], None] | None = None
) -> None:
    """``before(ns)`` (e.g. a deletecollection), then delete each namespace and wait."""
    names = list(namespaces)
    for ns in names:
        if before is not None:
            before(ns)
        kube.get_or_none(cluster.core.delete_namespace, ns)
    for ns in names:
        wait_for(
            lambda ns=ns: kube.get_or_none(cluster.core.read_namespace, ns) is None,
            900,
            f"namespace {ns} deleted",
            interval=1.0,
        )


def delete_secrets(cluster: Cluster, namespaces: Iterable[str], label: str) -> None:
    """Delete the Secrets with ``label`` and wait until none is left (one call per namespace)."""
    names = list(namespaces)
    for ns in names:
        cluster.core.delete_collection_namespaced_secret(ns, label_selector=label)

    def gone() -> bool:
        return all(
            not cluster.core.list_namespaced_secret(ns, label_selector=label, limit=1).items
            for ns in names
        )

    wait_for(gone, 300, "target Secrets deleted", interval=1.0)


def custom_api(cluster: Cluster) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(cluster.api)


# --- update latency -----------------------------------------------------------------------------


def latency_rounds(
    follower: SecretFollower,
    n: int,
    rounds: int,
    key_of: Callable[[int], tuple[str, str]],
    change: Callable[[int, str], object],
    timeout: float,
    check: Callable[[], None] | None = None,
    recover: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """``rounds`` times: change item i at the source, time until its Secret holds the new value
    (seen by the watch). One round at a time; a first round warms up and is not counted. When
    ``check`` aborts a round and ``recover()`` (e.g. restarting a crashed operator) returns
    True, the round is done again (counted in ``rounds_redone``)."""
    latencies: list[float] = []
    redone = 0
    r = -1
    while r < rounds:
        i = (r * 7919) % n if r >= 0 else n - 1  # 7919 is prime: distinct items for r < n
        value = f"v{r + 2}-{uuid.uuid4().hex}"
        t0 = time.perf_counter()
        change(i, value)
        try:
            seen = follower.wait_value(key_of(i), value, timeout, check)
        except Abort:
            if recover is None or redone >= MAX_REDONE or not recover():
                raise
            redone += 1
            continue
        if r >= 0:
            latencies.append(seen - t0)
        r += 1
    return {**summarize_ms(latencies), "rounds_redone": redone}


def summarize_ms(latencies: list[float]) -> dict[str, Any]:
    """p50/p99/max in ms, as bench/operator.py reports them."""
    xs = sorted(latencies)
    k = len(xs)
    return {
        "writes": k,
        "p50_ms": round(xs[k // 2] * 1000, 1),
        "p99_ms": round(xs[min(k - 1, int(k * 0.99))] * 1000, 1),
        "max_ms": round(xs[-1] * 1000, 1),
        "mean_ms": round(sum(xs) / k * 1000, 1),
    }
