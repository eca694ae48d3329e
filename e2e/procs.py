"""Daemons that outlive the command that started them: setsid + pid files.

A pid file holds ``pid starttime`` (field 22 of /proc/PID/stat) so a recycled pid is never
mistaken for our process. Zombies (our own exited children) count as dead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, starttime) of a process, or None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (None if gone)."""
    st = _stat(pid)
    return st[1] if st else None


def is_running(pid: int, starttime: int | None = None) -> bool:
    """True if ``pid`` is a live (non-zombie) process, started at ``starttime`` if given."""
    st = _stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return starttime is None or st[1] == starttime


def read_pidfile(path: Path) -> tuple[int, int] | None:
    """(pid, starttime) from a pid file, or None."""
    try:
        pid, start = path.read_text().split()
        return int(pid), int(start)
    except (FileNotFoundError, ValueError):
        return None


def alive(pidfile: Path) -> bool:
    """True if the process recorded in ``pidfile`` is still running."""
    rec = read_pidfile(pidfile)
    return rec is not None and is_running(*rec)


def spawn(argv: list[str], log: Path, pidfile: Path, env: Mapping[str, str] | None = None) -> int:
    """Start ``argv`` in its own session (survives our exit), log to ``log``, write pid file."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n=== {time.strftime('%F %T')} {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            close_fds=True,
        )
    st = _stat(proc.pid)
    pidfile.write_text(f"{proc.pid} {st[1] if st else 0}\n")
    return proc.pid


def _reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def kill(pid: int, sig: int) -> None:
    """Send ``sig``, ignoring a process that is already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Poll until every pid has exited or ``timeout`` passes; return the survivors."""
    deadline = time.monotonic() + timeout
    left = list(pids)
    while True:
        for pid in left:
            _reap(pid)
        left = [p for p in left if is_running(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def stop(pidfile: Path, timeout: float = 10.0) -> None:
    """SIGTERM the recorded process, SIGKILL it after ``timeout``, remove the pid file."""
    rec = read_pidfile(pidfile)
    if rec is not None and is_running(*rec):
        kill(rec[0], signal.SIGTERM)
        if wait_gone([rec[0]], timeout):
            kill(rec[0], signal.SIGKILL)
            wait_gone([rec[0]], 5.0)
    pidfile.unlink(missing_ok=True)


def pids_matching(needle: str, programs: Collection[str]) -> list[int]:
    """Pids of ``programs`` (argv[0] basename) whose command line contains ``needle``.

    Matching on the program too spares, say, a ``tail -f`` of one of our log files.
    """
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if (
            os.path.basename(argv[0]) in programs
            and needle in " ".join(argv)
            and is_running(int(entry.name))
        ):
            found.append(int(entry.name))
    return found
