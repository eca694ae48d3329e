"""Data-plane benchmark: secret GET over keep-alive HTTPS with token validation.

A real ``kvault server --dev`` subprocess serves; a load generator in another process keeps
``CONNECTIONS`` keep-alive TLS connections busy, first on the authenticated no-op route
(``/healthz/noop``: TLS, HTTP parsing, middleware, token check) and then on
``GET /secrets/NAME/`` (the same plus vault lookup, RBAC, storage read, envelope open, audit
line). ``get_vs_noop`` is the throughput ratio of the two in the same run, so it holds on any
machine; the absolute figures are for this one. Loopback only, bounded in time and count.

``--storage postgresql`` (:func:`run_storage`) compares backends instead: secret GET and SET
on a SQLite server, on one server over PostgreSQL, and on two servers over the same
PostgreSQL database with the load split across both (replicas), all interleaved in one run.
The PostgreSQL server is the tests' own (``tests/fixtures/postgres.py``): ``initdb`` in a
temporary directory, removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

CONNECTIONS = 32
MAX_REQUESTS = 200_000  # per measurement, whatever the duration
ROOT = Path(__file__).resolve().parents[1]
#: Unthrottled: the benchmark measures the server, not its rate limits.
_SERVER = (
    *(sys.executable, "-m", "kvault.cli.main", "server", "--dev", "--port", "0"),
    *("--vault-rate-limit", "0", "--principal-rate-limit", "0"),
)


def _start_server(
    data_dir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    checkout: Path | None = None,
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``kvault server --dev`` on ``data_dir`` (``env``: added to ours), once it listens;
    ``checkout``: the server of another checkout (its ``operator/`` first on the path)."""
    if checkout is not None:
        env = {**(env or {}), "PYTHONPATH": str(checkout / "operator")}
    proc = subprocess.Popen(
        [*_SERVER, "--data-dir", str(data_dir), *extra],
        cwd=checkout or ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
    assert proc.stdout is not None
    announced: dict[str, str] = {}
    for line in proc.stdout:
        key, sep, value = line.strip().partition("=")
        if sep and key.startswith("KVAULT_"):
            announced[key] = value
        if len(announced) == 3:
            return proc, announced
    proc.wait()
    raise RuntimeError(
        f"kvault server --dev of {checkout or ROOT} exited before printing its endpoint"
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    """Terminate a server started by :func:`_start_server`, killed if it lingers."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


#: In a URL, replaced by a counter modulo :data:`ROTATE` on each request: a SET arm writes
#: new versions of that many secrets in turn, so concurrent writers seldom race for one.
SLOT = "__N__"
ROTATE = 1000


def _method(method: str | None, body: str | None) -> str:
    return method or ("GET" if body is None else "POST")


async def _load(
    url: str,
    token: str,
    ca: str,
    seconds: float,
    connections: int,
    body: str | None = None,
    method: str | None = None,
) -> dict[str, Any]:
    """Run ``connections`` workers against ``url`` for ``seconds`` (a GET, or ``method``
    (default POST) with the JSON ``body``); latencies in ms."""
    ctx = ssl.create_default_context(cafile=ca)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    method = _method(method, body)
    data = None if body is None else body.encode()
    counter = 0

    def target() -> str:
        nonlocal counter
        counter += 1
        return url.replace(SLOT, str(counter % ROTATE))

    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections, ssl=ctx)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        # Warm up: open every connection (TLS handshakes are not what we measure).
        await asyncio.gather(
            *(session.request(method, target(), data=data) for _ in range(connections))
        )
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            nonlocal errors
            while len(latencies) < MAX_REQUESTS:
                t0 = time.perf_counter()
                if t0 >= deadline:
                    return
                async with session.request(method, target(), data=data) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "errors": errors,
        "req_per_s": round(n / elapsed, 1),
        "p50_ms": round(latencies[n // 2] * 1000, 3),
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 3),
    }


# The token travels in the environment, not on wrk's command line (visible in ps).
_WRK_REPORT = """
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KVAULT_TOKEN")
local body = os.getenv("KVAULT_BENCH_BODY")
if body and body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local method = os.getenv("KVAULT_BENCH_METHOD")
if method and method ~= "" then
  wrk.method = method
end
local rotate = tonumber(os.getenv("KVAULT_BENCH_ROTATE") or "0") or 0
if rotate > 0 then
  local counter = 0
  request = function()
    counter = counter + 1
    local path = string.gsub(wrk.path, "__N__", tostring(counter % rotate))
    return wrk.format(nil, path)
  end
end
done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "errors": %d, "req_per_s": %.1f, "p50_ms": %.3f, "p99_ms": %.3f}\\n',
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    summary.requests / s, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def _measure(
    url: str,
    env: dict[str, str],
    seconds: float,
    body: str | None = None,
    *,
    method: str | None = None,
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    """The load generator runs in its own process, so it does not share the server's core:
    wrk (C, one thread) when installed, else the asyncio generator below. ``body``: POST
    this JSON (or send it with ``method``) instead of a GET; :data:`SLOT` in ``url``
    rotates over :data:`ROTATE` values."""
    env = {
        **env,
        "KVAULT_BENCH_BODY": body or "",
        "KVAULT_BENCH_METHOD": method or "",
        "KVAULT_BENCH_ROTATE": str(ROTATE) if SLOT in url else "",
    }
    wrk = shutil.which("wrk")
    if wrk:
        return _measure_wrk(wrk, url, env, seconds, connections)
    out = subprocess.run(
        [sys.executable, "-m", "bench.api", "--load", url, str(seconds), str(connections)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _measure_wrk(
    wrk: str, url: str, env: dict[str, str], seconds: float, connections: int = CONNECTIONS
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_WRK_REPORT)
        script.flush()
        out = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{int(seconds)}s", "-s", script.name, url],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["generator"] = "wrk"
    return result


def _server_cpu(pid: int) -> float:
    """CPU seconds (user + system) the server process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure_cpu(
    pid: int,
    url: str,
    env: dict[str, str],
    seconds: float,
    body: str | None = None,
    *,
    method: str | None = None,
) -> dict[str, Any]:
    """:func:`_measure`, plus the server's CPU time per request (a figure that noise from
    other tenants of the host moves far less than the request rate)."""
    before = _server_cpu(pid)
    result = _measure(url, env, seconds, body, method=method)
    spent = _server_cpu(pid) - before
    done = result.get("requests") or 0
    result["server_cpu_us_per_req"] = round(spent / done * 1e6, 1) if done else None
    return result


def _measure_split(arms: list[Arm], seconds: float) -> dict[str, Any]:
    """The arms' servers under load at once, :data:`CONNECTIONS` split between them (one
    generator each): requests and rates summed, latencies the worst of them, CPU per
    request over every server."""
    each = max(1, CONNECTIONS // len(arms))
    before = [_server_cpu(arm.pid) for arm in arms]
    with ThreadPoolExecutor(len(arms)) as pool:
        parts = list(
            pool.map(
                lambda arm: _measure(
                    arm.url, arm.env, seconds, arm.body, method=arm.method, connections=each
                ),
                arms,
            )
        )
    spent = sum(_server_cpu(arm.pid) for arm in arms) - sum(before)
    done = sum(p["requests"] for p in parts)
    return {
        "requests": done,
        "errors": sum(p.get("errors", 0) for p in parts),
        "req_per_s": round(sum(p["req_per_s"] for p in parts), 1),
        "p50_ms": max(p["p50_ms"] for p in parts),
        "p99_ms": max(p["p99_ms"] for p in parts),
        "server_cpu_us_per_req": round(spent / done * 1e6, 1) if done else None,
        "per_server_req_per_s": [p["req_per_s"] for p in parts],
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True)
class Arm:
    """One side of an interleaved measurement: a server process and what to send it.
    ``also``: more servers loaded at the same time, the connections split among them all
    (replicas behind one Service)."""

    pid: int
    env: dict[str, str]
    url: str
    body: str | None = None  # POST this JSON (or send it with ``method``); None: GET
    method: str | None = None
    also: tuple[Arm, ...] = ()


#: Rounds of an interleaved measurement: the arms take turns, so a change in the host's
#: speed during the run moves every side of each ratio alike.
ROUNDS = 5


def interleaved(
    arms: dict[str, Arm], seconds: float, rounds: int = ROUNDS
) -> dict[str, list[dict[str, Any]]]:
    """Each arm for ``seconds / rounds`` (at least 1 s) in turn, ``rounds`` times: the
    results of every window, per arm."""
    window = max(1.0, seconds / rounds)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, arm in arms.items():
            if arm.also:
                runs[name].append(_measure_split([arm, *arm.also], window))
            else:
                runs[name].append(
                    _measure_cpu(arm.pid, arm.url, arm.env, window, arm.body, method=arm.method)
                )
    return runs


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the windows of one arm."""
    cpu = [r["server_cpu_us_per_req"] for r in results if r["server_cpu_us_per_req"]]
    return {
        "req_per_s": round(_median([r["req_per_s"] for r in results]), 1),
        "p99_ms": round(_median([r["p99_ms"] for r in results]), 3),
        "server_cpu_us_per_req": round(_median(cpu), 1) if cpu else None,
        "errors": sum(r.get("errors", 0) for r in results),
    }


def ratio(over: list[dict[str, Any]], under: list[dict[str, Any]]) -> float:
    """The median over rounds of ``over``'s rate divided by ``under``'s in the same round."""
    each = [
        a["req_per_s"] / b["req_per_s"] for a, b in zip(over, under, strict=True) if b["req_per_s"]
    ]
    return round(_median(each), 3) if each else 0.0


async def _seed(env: dict[str, str], name: str) -> None:
    ctx = ssl.create_default_context(cafile=env["KVAULT_CA_FILE"])
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {env['KVAULT_TOKEN']}"}
    ) as session:
        url = f"{env['KVAULT_ENDPOINT']}/secrets/{name}?api-version=7.5"
        async with session.put(url, json={"value": "x" * 64}, ssl=ctx) as response:
            response.raise_for_status()


async def run(seconds: float, storage: str = "sqlite") -> dict[str, Any]:
    """Secret GET against the no-op route on SQLite; ``storage="postgresql"``:
    :func:`run_storage`."""
    if storage == "postgresql":
        return await run_storage(seconds)
    if storage != "sqlite":
        raise ValueError(f"unknown storage {storage!r}: sqlite or postgresql")
    duration = max(3.0, seconds * 3)
    with tempfile.TemporaryDirectory(prefix="kvault-bench-") as tmp:
        proc, env = _start_server(Path(tmp) / "data")
        try:
            await _seed(env, "bench")
            base = env["KVAULT_ENDPOINT"]
            noop = _measure(f"{base}/healthz/noop", env, duration)
            get = _measure(f"{base}/secrets/bench/?api-version=7.5", env, duration)
        finally:
            _stop(proc)
    return {
        "transport": "HTTPS keep-alive, loopback",
        "connections": CONNECTIONS,
        "seconds_each": duration,
        "noop": noop,
        "secret_get": get,
        "get_vs_noop": round(get["req_per_s"] / noop["req_per_s"], 3) if noop["req_per_s"] else 0,
        "goal_req_per_s": 4000,
    }


_API = "api-version=7.5"
_DSN_VAR = "KVAULT_BENCH_PG_DSN"
#: What each SET writes: a new version of one of :data:`ROTATE` secrets.
SET_BODY = json.dumps({"value": "s" * 64})
#: The goals of issue 13 for ``--storage postgresql``.
GOAL_GET_VS_SQLITE = 0.8
GOAL_SET_PER_S = 1000.0


@contextlib.contextmanager
def _serving(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[Arm]:
    """A server for the duration; an :class:`Arm` of its secret GET (the caller rewrites
    url/body/method for other requests)."""
    proc, announced = _start_server(data_dir, *extra, env=env)
    try:
        url = f"{announced['KVAULT_ENDPOINT']}/secrets/bench/?{_API}"
        yield Arm(proc.pid, announced, url)
    finally:
        _stop(proc)


def _set_arm(get: Arm, names: str = "bench-set") -> Arm:
    """The SET (``PUT /secrets/{names}-N``) arm of the server of ``get``. Arms sharing a
    database write secrets of their own: one arm's writes would otherwise make the next
    arm's replica read every head back from the database (its notices invalidate them),
    a cost of the interleaving, not of the arm measured."""
    base = get.env["KVAULT_ENDPOINT"]
    url = f"{base}/secrets/{names}-{SLOT}?{_API}"
    return Arm(get.pid, get.env, url, SET_BODY, "PUT")


def _table(arms: dict[str, dict[str, Any]]) -> str:
    lines = [f"{'arm':<24}{'req/s':>10}{'p99 ms':>10}{'CPU us/req':>12}{'errors':>8}"]
    for name, got in arms.items():
        cpu = got["server_cpu_us_per_req"]
        lines.append(
            f"{name:<24}{got['req_per_s']:>10,.0f}{got['p99_ms']:>10.2f}"
            f"{'-' if cpu is None else f'{cpu:,.0f}':>12}{got['errors']:>8}"
        )
    return "\n".join(lines)


async def run_storage(seconds: float) -> dict[str, Any]:
    """Secret GET and SET on SQLite, on PostgreSQL with one server, and on PostgreSQL with
    two servers sharing the database (load split across both), interleaved in
    :data:`ROUNDS` rounds of ``seconds`` (at least 1) per arm. Prints a table on stderr."""
    from tests.fixtures.postgres import PostgresServer  # the tests' throwaway server

    window = max(1.0, seconds)
    pg_flags = ("--storage", "postgresql", "--storage-option", f"dsn_env={_DSN_VAR}")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kvault-bench-pg-")))
        server = stack.enter_context(PostgresServer())
        env = {_DSN_VAR: server.create_database("bench")}
        sqlite = stack.enter_context(_serving(tmp / "sqlite"))
        first = stack.enter_context(_serving(tmp / "pg1", *pg_flags, env=env))
        # The second replica: its own data directory (audit log, TLS, token) with the
        # first one's HSM root, as every replica of one installation has.
        (tmp / "pg2").mkdir(mode=0o700)
        shutil.copy2(tmp / "pg1" / "hsm.key", tmp / "pg2" / "hsm.key")
        second = stack.enter_context(_serving(tmp / "pg2", *pg_flags, env=env))
        for arm in (sqlite, first):
            await _seed(arm.env, "bench")
        arms = {
            "sqlite/get": sqlite,
            "postgresql/get": first,
            "postgresql x2/get": replace(first, also=(second,)),
            "sqlite/set": _set_arm(sqlite),
            "postgresql/set": _set_arm(first),
            "postgresql x2/set": replace(
                _set_arm(first, "bench-set2"), also=(_set_arm(second, "bench-set2"),)
            ),
        }
        settings = {
            name: server.psql(f"SHOW {name}").strip()
            for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers")
        }
        runs = interleaved(arms, window * ROUNDS)
    summaries = {name: summary(results) for name, results in runs.items()}
    ratios = {
        "get_postgresql_vs_sqlite": ratio(runs["postgresql/get"], runs["sqlite/get"]),
        "set_postgresql_vs_sqlite": ratio(runs["postgresql/set"], runs["sqlite/set"]),
        "get_2_replicas_vs_1": ratio(runs["postgresql x2/get"], runs["postgresql/get"]),
        "set_2_replicas_vs_1": ratio(runs["postgresql x2/set"], runs["postgresql/set"]),
    }
    set_rate = summaries["postgresql/set"]["req_per_s"]
    goals = {
        "get_postgresql_vs_sqlite": {
            "measured": ratios["get_postgresql_vs_sqlite"],
            "goal": GOAL_GET_VS_SQLITE,
            "met": ratios["get_postgresql_vs_sqlite"] >= GOAL_GET_VS_SQLITE,
        },
        "set_postgresql_req_per_s": {
            "measured": set_rate,
            "goal": GOAL_SET_PER_S,
            "met": set_rate >= GOAL_SET_PER_S,
        },
    }
    table = _table(summaries)
    print(table, file=sys.stderr)
    for name, value in ratios.items():
        print(f"{name:<28}{value:>8.3f}", file=sys.stderr)
    for name, goal in goals.items():
        verdict = "met" if goal["met"] else "NOT met"
        print(f"goal {name}: {goal['measured']} (goal {goal['goal']}) {verdict}", file=sys.stderr)
    return {
        "transport": "HTTPS keep-alive, loopback",
        "connections": CONNECTIONS,
        "rounds": ROUNDS,
        "seconds_each": window,
        "cores": os.cpu_count(),
        "postgresql": {"settings": settings, "pool_size_per_server": 10},
        "set": f"PUT a new version of one of {ROTATE} secrets in turn, 64-byte value",
        "arms": summaries,
        "ratios": ratios,
        "goals": goals,
    }


def _load_main(argv: list[str]) -> int:
    url, seconds, connections = argv[0], float(argv[1]), int(argv[2])
    env = os.environ
    body = env.get("KVAULT_BENCH_BODY") or None
    method = env.get("KVAULT_BENCH_METHOD") or None
    token, ca = env["KVAULT_TOKEN"], env["KVAULT_CA_FILE"]
    result = asyncio.run(_load(url, token, ca, seconds, connections, body, method))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        sys.exit(_load_main(sys.argv[2:]))
    print(json.dumps(asyncio.run(run(1.0)), indent=2))
