"""Which test sessions use the local cluster, so one never tears it down under another.

Each session registers ``sessions/<pid>`` (pid + start time) in the cluster dir. A session
that had to start the cluster leaves the marker ``started-by-tests``; whichever session ends
last turns the cluster off if that marker is there ("last one out"). A cluster started by
hand (``python -m e2e.cluster up``) has no marker and is left running. Every cleanup (``down``
or a fresh ``up``) deletes the marker, as it is not among the kept files.
"""

from __future__ import annotations

import os
from pathlib import Path

from e2e import procs
from e2e.layout import Layout

MARKER = "started-by-tests"


def _dir(lay: Layout) -> Path:
    return lay.root / "sessions"


def register(lay: Layout) -> None:
    """Record this process as a user of the cluster."""
    d = _dir(lay)
    d.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    (d / str(pid)).write_text(f"{pid} {procs.start_time(pid)}\n")


def unregister(lay: Layout) -> None:
    """Forget this process."""
    (_dir(lay) / str(os.getpid())).unlink(missing_ok=True)


def others(lay: Layout) -> list[int]:
    """Live sessions other than this one (stale records of dead ones are removed)."""
    d = _dir(lay)
    live = []
    for f in d.glob("[0-9]*") if d.is_dir() else []:
        rec = procs.read_pidfile(f)
        if rec is None or not procs.is_running(*rec):
            f.unlink(missing_ok=True)
        elif rec[0] != os.getpid():
            live.append(rec[0])
    return live


def mark_started(lay: Layout) -> None:
    """The cluster was started for tests: the last session out may stop it."""
    (lay.root / MARKER).touch()


def started_by_tests(lay: Layout) -> bool:
    """True while the running cluster is one a test session started."""
    return (lay.root / MARKER).exists()
