"""Publishing the audit log's checkpoints (:mod:`kvault.audit.checkpoint`) while kvault runs.

At start, every minute in which lines were added, and at shutdown, the chain's head is sealed
under the HSM root and handed to each sink: a file beside the log (``audit.checkpoint``; it
shares the log's volume, so it catches an accidental truncation, not a deliberate one) and,
in the cluster, a key of the ConfigMap ``kvault-audit-checkpoint`` in the operator's
namespace (one key per pod, server-side applied by that pod), which someone who can write
the volume cannot also rewrite. A sink that fails is logged and tried again next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kvault.audit.checkpoint import Checkpoint, Sealer
from kvault.audit.log import AuditLog
from kvault.barrier.portable import PortableSealer
from kvault.hsm.base import HSM
from kvault.kube.client import KubeClient
from kvault.kube.resources import CONFIGMAPS
from kvault.vault.service import Kvault

log = logging.getLogger(__name__)

#: The checkpoint file beside the audit log.
CHECKPOINT_FILE = "audit.checkpoint"
#: The ConfigMap (in the operator's namespace) that holds each pod's last checkpoint.
CHECKPOINT_CONFIGMAP = "kvault-audit-checkpoint"
#: Seconds between two checkpoints (when lines were added).
INTERVAL = 60.0

Sink = Callable[[dict[str, Any]], Awaitable[None]]


def file_sink(path: Path) -> Sink:
    """Replace ``path`` atomically with the checkpoint (written, synced, renamed)."""

    async def write(doc: dict[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        data = json.dumps(doc, indent=2).encode() + b"\n"

        def replace() -> None:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)

        await asyncio.to_thread(replace)

    return write


def config_map_sink(kube: KubeClient, namespace: str, key: str) -> Sink:
    """Apply the checkpoint as key ``<key>.json`` of :data:`CHECKPOINT_CONFIGMAP`."""
    path = CONFIGMAPS.path(namespace, CHECKPOINT_CONFIGMAP)

    async def write(doc: dict[str, Any]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CHECKPOINT_CONFIGMAP,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "kvault"},
            },
            "data": {f"{key}.json": json.dumps(doc, sort_keys=True)},
        }
        await kube.apply(path, body, field_manager=f"kvault-audit-{key}")

    return write


@dataclass
class CheckpointPublisher:
    """Seals the head of ``audit`` and gives it to every sink when it moved."""

    audit: AuditLog
    sealer: Sealer
    sinks: list[Sink]
    interval: float = INTERVAL
    _published: tuple[int, str] | None = None

    async def publish(self) -> bool:
        """One checkpoint if lines were added since the last; whether one was made."""
        seen = self.audit.head()
        if seen is None or seen == self._published:  # held lines: wait until they are out
            return False
        lines, head = seen
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        doc = await Checkpoint(self.audit.path.name, lines, head, now).sealed(self.sealer)
        delivered = True
        for sink in self.sinks:
            try:
                await sink(doc)
            except Exception as exc:  # the next checkpoint tries again
                delivered = False
                log.warning("audit checkpoint not published: %s", type(exc).__name__)
        if delivered:
            self._published = (lines, head)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """A checkpoint now, then every :attr:`interval` seconds until ``stop``, and one at the
        end."""
        while True:
            try:
                await self.publish()
            except Exception:
                log.exception("audit checkpoint failed")
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)


@contextlib.asynccontextmanager
async def publishing(kv: Kvault, sinks: Sequence[Sink] = ()) -> AsyncIterator[None]:
    """Checkpoints of ``kv``'s audit log, to its :data:`CHECKPOINT_FILE` and ``sinks``, while
    the block runs, and a last one when it ends (before ``kv`` closes)."""
    audit = kv.core.auditor
    if not isinstance(audit, AuditLog):  # tools and tests without an audit file
        yield
        return
    here = file_sink(audit.path.with_name(CHECKPOINT_FILE))
    publisher = CheckpointPublisher(audit, kv.barrier, [here, *sinks])
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def open_checkpoint(doc: Any, hsm: HSM) -> Checkpoint:
    """A published checkpoint, opened with ``hsm`` (a tool's: no storage needed)."""
    await hsm.open()
    try:
        return await Checkpoint.opened(doc, PortableSealer(hsm))
    finally:
        await hsm.close()
