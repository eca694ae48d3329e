"""Data-plane benchmark: secret GET over keep-alive HTTPS with token validation.

A real ``kvault server --dev`` subprocess serves; a load generator in another process keeps
``CONNECTIONS`` keep-alive TLS connections busy, first on the authenticated no-op route
(``/healthz/noop``: TLS, HTTP parsing, middleware, token check) and then on
``GET /secrets/NAME/`` (the same plus vault lookup, RBAC, storage read, envelope open, audit
line). ``get_vs_noop`` is the throughput ratio of the two in the same run, so it holds on any
machine; the absolute figures are for this one. Loopback only, bounded in time and count.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


def _start_server(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [*_SERVER, "--data-dir", str(data_dir), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    env: dict[str, str] = {}
    for line in proc.stdout:
        key, sep, value = line.strip().partition("=")
        if sep and key.startswith("KVAULT_"):
            env[key] = value
        if len(env) == 3:
            return proc, env
    proc.wait()
    raise RuntimeError("kvault server --dev exited before printing its endpoint")


async def _load(
    url: str, token: str, ca: str, seconds: float, connections: int, body: str | None = None
) -> dict[str, Any]:
    """Run ``connections`` workers against ``url`` for ``seconds`` (a GET, or a POST of the
    JSON ``body``); latencies in ms."""
    ctx = ssl.create_default_context(cafile=ca)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    method, data = ("GET", None) if body is None else ("POST", body.encode())
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections, ssl=ctx)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        # Warm up: open every connection (TLS handshakes are not what we measure).
        await asyncio.gather(*(session.request(method, url, data=data) for _ in range(connections)))
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            nonlocal errors
            while len(latencies) < MAX_REQUESTS:
                t0 = time.perf_counter()
                if t0 >= deadline:
                    return
                async with session.request(method, url, data=data) as response:
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
    url: str, env: dict[str, str], seconds: float, body: str | None = None
) -> dict[str, Any]:
    """The load generator runs in its own process, so it does not share the server's core:
    wrk (C, one thread) when installed, else the asyncio generator below. ``body``: POST
    this JSON instead of a GET."""
    env = {**env, "KVAULT_BENCH_BODY": body or ""}
    wrk = shutil.which("wrk")
    if wrk:
        return _measure_wrk(wrk, url, env, seconds)
    out = subprocess.run(
        [sys.executable, "-m", "bench.api", "--load", url, str(seconds), str(CONNECTIONS)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _measure_wrk(wrk: str, url: str, env: dict[str, str], seconds: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_WRK_REPORT)
        script.flush()
        out = subprocess.run(
            [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{int(seconds)}s", "-s", script.name, url],
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
    pid: int, url: str, env: dict[str, str], seconds: float, body: str | None = None
) -> dict[str, Any]:
    """:func:`_measure`, plus the server's CPU time per request (a figure that noise from
    other tenants of the host moves far less than the request rate)."""
    before = _server_cpu(pid)
    result = _measure(url, env, seconds, body)
    spent = _server_cpu(pid) - before
    done = result.get("requests") or 0
    result["server_cpu_us_per_req"] = round(spent / done * 1e6, 1) if done else None
    return result


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True)
class Arm:
    """One side of an interleaved measurement: a server process and what to send it."""

    pid: int
    env: dict[str, str]
    url: str
    body: str | None = None  # POST this JSON; None: GET


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
            runs[name].append(_measure_cpu(arm.pid, arm.url, arm.env, window, arm.body))
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


async def run(seconds: float) -> dict[str, Any]:
    duration = max(3.0, seconds * 3)
    with tempfile.TemporaryDirectory(prefix="kvault-bench-") as tmp:
        proc, env = _start_server(Path(tmp) / "data")
        try:
            await _seed(env, "bench")
            base = env["KVAULT_ENDPOINT"]
            noop = _measure(f"{base}/healthz/noop", env, duration)
            get = _measure(f"{base}/secrets/bench/?api-version=7.5", env, duration)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return {
        "transport": "HTTPS keep-alive, loopback",
        "connections": CONNECTIONS,
        "seconds_each": duration,
        "noop": noop,
        "secret_get": get,
        "get_vs_noop": round(get["req_per_s"] / noop["req_per_s"], 3) if noop["req_per_s"] else 0,
        "goal_req_per_s": 4000,
    }


def _load_main(argv: list[str]) -> int:
    url, seconds, connections = argv[0], float(argv[1]), int(argv[2])
    env = os.environ
    body = env.get("KVAULT_BENCH_BODY") or None
    result = asyncio.run(
        _load(url, env["KVAULT_TOKEN"], env["KVAULT_CA_FILE"], seconds, connections, body)
    )
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        sys.exit(_load_main(sys.argv[2:]))
    print(json.dumps(asyncio.run(run(1.0)), indent=2))
