"""The controller's Lease: one active controller among replicas, reported as a metric."""

from __future__ import annotations

from kvault.controller import metrics
from kvault.kube import lease


class Lease(lease.Lease):
    def held_changed(self, held: bool) -> None:
        metrics.LEADER.set(1 if held else 0)
