"""Secret GET of two checkouts side by side, in one run (issue 14: before and after).

``python -m bench.compare_commits BEFORE [AFTER] [--seconds S] [--rounds N] [--profile S]``

Each checkout's ``kvault server --dev`` is started from its own ``operator/`` directory
(``PYTHONPATH``, this interpreter and its packages), seeded with one secret, and loaded as in
``python -m bench api`` (:mod:`bench.api`: wrk or the asyncio generator, 32 keep-alive TLS
connections): the authenticated no-op route and secret GET of each server take turns, round
after round, so a change of the host's speed moves both checkouts alike. Reported per
checkout: the medians of GET req/s, no-op req/s and the server's CPU time per request, and
the GET / no-op ratio (median of each round's ratio); then, with ``--profile``, a py-spy
profile of each server under GET load (taken after the measured rounds: the sampler slows
the server it samples) grouped into the costs of the GET path (:data:`COSTS`), top 5 each.

The old commit is a ``git worktree`` (``git worktree add /tmp/kv-before COMMIT``); AFTER
defaults to this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.api import (
    CONNECTIONS,
    ROOT,
    Arm,
    _seed,
    _start_server,
    _stop,
    interleaved,
    ratio,
    summary,
)

_API = "api-version=7.5"
#: Unthrottled, as in bench.api: the benchmark measures the server, not its rate limits.
GOAL_RATIO = 0.6
GOAL_REQ_PER_S = 4000.0

#: The costs of the GET path: a profile sample counts for the first group (from the
#: innermost frame outwards) whose pattern matches one of its frames (``function (file)``).
COSTS: tuple[tuple[str, str], ...] = (
    ("audit write", r"AuditLog\.|kvault/audit/|Core\.record"),
    ("storage read", r"kvault/storage/"),
    ("decryption", r"kvault/barrier/envelope|Barrier\.open|aead"),
    ("record decoding", r"kvault/vault/items/records|kvault/vault/records|kvault/barrier/memo"),
    ("RBAC", r"kvault/vault/access|kvault/identity/rbac"),
    ("authentication", r"kvault/api/auth|kvault/identity/"),
    ("JSON body", r"^(ok|dump) \(kvault/api/request|kvault/api/bodies"),
    ("response shape", r"kvault/api/shapes|\.properties \(kvault/vault/|\(kvault/vault/model"),
    (
        "vault lookup, throttle",
        r"kvault/api/request|kvault/api/throttle|kvault/api/hosts|vault_row",
    ),
    ("domain (engine, contexts)", r"kvault/vault/|kvault/barrier/"),
    ("metrics", r"kvault/api/metrics|prometheus_client"),
    ("request id", r"uuid|^request_id \(kvault/api/middleware"),
    ("middleware", r"kvault/api/middleware"),
    ("TLS", r"sslproto|ssl\.py|SSLObject"),
    ("HTTP (aiohttp)", r"aiohttp/|kvault/api/connections|multidict|yarl"),
    ("event loop, socket I/O", r"asyncio/|selectors|uvloop"),
)
_COSTS = tuple((name, re.compile(pattern)) for name, pattern in COSTS)
_FRAME = re.compile(r"(.*) \((.*?):\d+\)$")
#: A thread of a pool waiting for work (py-spy counts it as running).
_IDLE = "_worker (concurrent/futures/thread"


def _frames(stack: str) -> list[str]:
    out = []
    for frame in stack.split(";"):
        m = _FRAME.match(frame)
        out.append(f"{m.group(1)} ({m.group(2)})" if m else frame)
    return out


def costs(raw: str) -> dict[str, Any]:
    """A py-spy ``--format raw`` profile (collapsed stacks) grouped by :data:`COSTS`; the
    functions where most samples ended (self time), for the detail."""
    groups: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames, n = _frames(stack), int(count)
        if frames[-1].startswith(_IDLE):
            continue
        total += n
        leaves[frames[-1]] += n
        group = "other"
        for frame in reversed(frames):
            group = next((name for name, rx in _COSTS if rx.search(frame)), "")
            if group:
                break
        groups[group or "other"] += n

    def share(counter: collections.Counter[str], top: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)]

    return {"samples": total, "costs_pct": share(groups, 20), "self_pct": share(leaves, 10)}


def profile(pid: int, env: dict[str, str], url: str, seconds: float) -> dict[str, Any] | None:
    """py-spy on the server ``pid`` while GET load runs; ``None`` without py-spy."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        return None
    with tempfile.TemporaryDirectory(prefix="kvault-profile-") as tmp:
        out = Path(tmp) / "profile.txt"
        argv = [spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw"]
        argv += ["--duration", str(int(seconds) + 1), "--output", str(out)]
        rec = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _load(url, env, seconds)
            rec.wait(timeout=seconds + 30)
        finally:
            if rec.poll() is None:
                rec.terminate()
                rec.wait()
        return costs(out.read_text()) if out.exists() else None


def _load(url: str, env: dict[str, str], seconds: float) -> None:
    from bench.api import _measure

    _measure(url, env, seconds)


@contextlib.contextmanager
def _server(
    checkout: Path, data_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """``kvault server --dev`` of ``checkout`` (its ``operator/`` first on the path)."""
    proc, announced = _start_server(data_dir, env=extra_env, checkout=checkout)
    try:
        yield proc.pid, announced
    finally:
        _stop(proc)


def _commit(checkout: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = subprocess.run(
        ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


#: ``--default-loop``: a third server, of AFTER on the standard asyncio loop (uvloop's part).
DEFAULT_LOOP = "after-asyncio"
_ENVS = {DEFAULT_LOOP: {"KVAULT_EVENT_LOOP": "asyncio"}}


async def compare(
    checkouts: dict[str, Path], seconds: float, rounds: int, profile_seconds: float
) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kvault-compare-")))
        arms: dict[str, Arm] = {}
        for label, checkout in checkouts.items():
            pid, env = stack.enter_context(_server(checkout, tmp / label, _ENVS.get(label)))
            await _seed(env, "bench")
            base = env["KVAULT_ENDPOINT"]
            arms[f"{label}/noop"] = Arm(pid, env, f"{base}/healthz/noop")
            arms[f"{label}/get"] = Arm(pid, env, f"{base}/secrets/bench/?{_API}")
        load_before = os.getloadavg()
        runs = interleaved(arms, seconds * rounds, rounds)
        load_after = os.getloadavg()
        profiles = {}
        if profile_seconds > 0:
            for label in checkouts:
                arm = arms[f"{label}/get"]
                profiles[label] = profile(arm.pid, arm.env, arm.url, profile_seconds)
    result: dict[str, Any] = {
        "transport": "HTTPS keep-alive, loopback",
        "connections": CONNECTIONS,
        "rounds": rounds,
        "seconds_each": max(1.0, seconds),
        "cores": os.cpu_count(),
        "load_average": {"before": load_before, "after": load_after},
        "goals": {"get_vs_noop": GOAL_RATIO, "get_req_per_s": GOAL_REQ_PER_S},
        "checkouts": {},
    }
    for label, checkout in checkouts.items():
        get, noop = runs[f"{label}/get"], runs[f"{label}/noop"]
        entry = {
            "path": str(checkout),
            "commit": _commit(checkout),
            "secret_get": summary(get),
            "noop": summary(noop),
            "get_vs_noop": ratio(get, noop),
            "get_req_per_s_rounds": [r["req_per_s"] for r in get],
            "noop_req_per_s_rounds": [r["req_per_s"] for r in noop],
        }
        if label in profiles:
            entry["profile"] = profiles[label]
        result["checkouts"][label] = entry
    return result


def report(result: dict[str, Any]) -> str:
    """The comparison as a small text table (and the top 5 costs of each profile)."""
    lines = [
        f"{'checkout':<14}{'GET req/s':>11}{'no-op req/s':>13}{'GET/no-op':>11}"
        f"{'GET CPU us':>12}{'no-op CPU us':>14}"
    ]
    for label, e in result["checkouts"].items():
        get, noop = e["secret_get"], e["noop"]
        lines.append(
            f"{label:<14}{get['req_per_s']:>11,.0f}{noop['req_per_s']:>13,.0f}"
            f"{e['get_vs_noop']:>11.3f}{get['server_cpu_us_per_req'] or 0:>12,.0f}"
            f"{noop['server_cpu_us_per_req'] or 0:>14,.0f}"
        )
    la = result["load_average"]
    lines.append(f"load average: {la['before'][0]:.2f} before, {la['after'][0]:.2f} after")
    for label, e in result["checkouts"].items():
        prof = e.get("profile")
        if prof:
            top = ", ".join(f"{name} {pct}%" for name, pct in prof["costs_pct"][:5])
            lines.append(f"{label} GET profile top 5: {top}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare_commits", description=__doc__)
    parser.add_argument("before", type=Path, help="the old checkout (a git worktree)")
    parser.add_argument("after", type=Path, nargs="?", default=ROOT, help="default: this one")
    parser.add_argument("--seconds", type=float, default=2.0, help="per arm and round (>= 1)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", type=float, default=0.0, metavar="S", help="py-spy seconds")
    parser.add_argument(
        "--default-loop",
        action="store_true",
        help=f"also AFTER with KVAULT_EVENT_LOOP=asyncio (as {DEFAULT_LOOP!r}): uvloop's share",
    )
    args = parser.parse_args(argv)
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    if args.default_loop:
        checkouts[DEFAULT_LOOP] = checkouts["after"]
    for checkout in checkouts.values():
        if not (checkout / "operator" / "kvault").is_dir():
            parser.error(f"{checkout} is not a kvault checkout (no operator/kvault)")
    result = asyncio.run(compare(checkouts, args.seconds, args.rounds, args.profile))
    print(report(result), file=sys.stderr)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
