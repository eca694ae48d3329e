"""``python -m bench peers store``: kvault's data plane beside HashiCorp Vault's (issue 14).

The peer is built from its Go module (e2e/peers.py; OpenBao's module is refused by the module
proxy, so it is Vault) and started on loopback with TLS from a throwaway CA, in three ways:

- ``vault-dev``: ``vault server -dev`` (in-memory storage, KV v2 at ``secret/``), with the TLS
  listener added by a config file (the dev mode's own plain-HTTP listener stays unused);
- ``vault-file``: a one-node server on ``storage "file"``, initialised and unsealed through
  its HTTP API (``sys/init``, ``sys/unseal``) and KV v2 mounted at ``secret/``;
- ``vault-raft``: the same on ``storage "raft"`` (integrated storage, what Vault recommends).

kvault runs as ``kvault server --dev`` (SQLite in a data directory, software HSM) with the rate
limits off. One load generator for all of them, in its own process: wrk (C, one thread, 32
keep-alive TLS connections) when installed, else an asyncio one below; the token travels in
``Authorization: Bearer`` (Vault accepts it as well as ``X-Vault-Token``).

- GET: kvault ``GET /secrets/bench?api-version=7.5``; Vault ``GET /v1/secret/data/bench``.
- SET: kvault ``PUT /secrets/set-N?api-version=7.5`` ``{"value": ...}``; Vault
  ``POST /v1/secret/data/set-N`` ``{"data": {"value": ...}}``, N cycling over ``NAMES``
  names (each write makes a new version, on both).

This host's speed varies up to 2x within a minute, so the servers take turns: every round
measures each operation on each server for one window, and the figures are medians over
rounds; a ratio is the median of the per-round ratios. All servers run at once (idle ones
cost nothing), and the generator is the same binary with the same settings for each. Loopback
only; every request loop is bounded in time and count; every process started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import peers_report

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 32
MAX_REQUESTS = 500_000  # per window of the asyncio generator, whatever the duration
NAMES = 1000  # SET cycles over this many secret names
VALUE = "x" * 64
PERCENTILES = (10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9)
STORAGES = ("dev", "file", "raft")
DEFAULT_JSON = ROOT / "bench" / "results" / "peers-store.json"
#: The goal of issue 14: kvault's GET rate at least half the peer's.
GOAL_GET_RATIO = 0.5


@dataclass
class Server:
    """A running server and the two requests the generator sends it."""

    name: str
    proc: subprocess.Popen[bytes]
    base: str
    token: str
    ca_file: str
    get_path: str
    set_path: str  # with %d for the name's number
    set_method: str
    set_body: str
    about: dict[str, Any] = field(default_factory=dict)


# --- load generation --------------------------------------------------------------------------

# Settings travel in the environment (the token is not on wrk's command line, visible in ps).
_WRK_SCRIPT = """
local token = os.getenv("PEERS_TOKEN")
local body = os.getenv("PEERS_BODY")
local template = os.getenv("PEERS_PATH")
local names = tonumber(os.getenv("PEERS_NAMES"))
wrk.method = os.getenv("PEERS_METHOD")
wrk.headers["Authorization"] = "Bearer " .. token
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
if names > 0 then
  local counter = 0
  request = function()
    counter = counter + 1
    return wrk.format(nil, string.format(template, counter % names))
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  local ps = {}
  for _, pc in ipairs({@PERCENTILES@}) do
    table.insert(ps, string.format('"%s": %.3f', pc[1], latency:percentile(pc[2]) / 1000))
  end
  io.write(string.format(
    '{"requests": %d, "errors": %d, "seconds": %.3f, "percentiles_ms": {%s}}\\n',
    summary.requests, e.status + e.connect + e.read + e.write + e.timeout,
    summary.duration / 1e6, table.concat(ps, ", ")))
end
""".replace("@PERCENTILES@", ", ".join(f'{{"{p}", {p}}}' for p in PERCENTILES))


@dataclass(frozen=True)
class Load:
    """One operation against one server: what the generator sends."""

    url: str  # for a SET, the first name's URL (wrk needs one); the path template is below
    method: str
    path: str
    names: int
    body: str
    token: str
    ca_file: str

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PEERS_TOKEN": self.token,
            "PEERS_METHOD": self.method,
            "PEERS_PATH": self.path,
            "PEERS_NAMES": str(self.names),
            "PEERS_BODY": self.body,
            "PEERS_CA_FILE": self.ca_file,
        }


def generator() -> str:
    """``wrk`` when installed (bench/api.py's choice too), else ``python``."""
    return "wrk" if shutil.which("wrk") else "python"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: wrk busy-loops (writable events on a connection whose TLS handshake waits for the server)
#: when a server is slow to finish handshakes; seen against kvault, never against Vault, where
#: wrk needs ~0.15 CPU s per window second. A window in which the generator used more CPU
#: than this share of it is measured again (once), and flagged if it still is.
GENERATOR_CPU_SHARE_MAX = 0.6


def _window(load: Load, seconds: int, server_pid: int) -> dict[str, Any]:
    server_before, gen_before = _process_cpu(server_pid), _children_cpu()
    if generator() == "wrk":
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(_WRK_SCRIPT)
            script.flush()
            argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", script.name, load.url]
            out = subprocess.run(
                argv, env=load.env(), capture_output=True, text=True, timeout=seconds + 60
            )
    else:
        argv = [sys.executable, "-m", "bench.peers_store", "--load", load.url, str(seconds)]
        out = subprocess.run(
            argv, cwd=ROOT, env=load.env(), capture_output=True, text=True, timeout=seconds + 60
        )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed ({out.returncode}): {out.stderr.strip()}")
    gen_cpu = _children_cpu() - gen_before
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    done = result["requests"] or 1
    result["req_per_s"] = round(result["requests"] / result["seconds"], 1)
    result["p50_ms"] = result["percentiles_ms"]["50.0"]
    result["p99_ms"] = result["percentiles_ms"]["99.0"]
    result["server_cpu_us_per_req"] = round((_process_cpu(server_pid) - server_before) / done * 1e6)
    result["generator_cpu_us_per_req"] = round(gen_cpu / done * 1e6, 1)
    result["generator_cpu_share"] = round(gen_cpu / result["seconds"], 3)
    return result


def measure(load: Load, seconds: int, server_pid: int) -> dict[str, Any]:
    """One window: the generator against one server for ``seconds``, plus the CPU time the
    server and the generator spent per request; again once if the generator busy-looped."""
    result = _window(load, seconds, server_pid)
    if generator() == "wrk" and result["generator_cpu_share"] > GENERATOR_CPU_SHARE_MAX:
        first = result["generator_cpu_share"]
        result = _window(load, seconds, server_pid)
        result["retried_generator_cpu_share"] = first
    result["generator_busy"] = (
        generator() == "wrk" and result["generator_cpu_share"] > GENERATOR_CPU_SHARE_MAX
    )
    return result


async def _load(load: Load, url: str, seconds: float) -> dict[str, Any]:
    """The asyncio generator (when wrk is missing): ``CONNECTIONS`` workers on keep-alive
    connections for ``seconds``."""
    import aiohttp

    ctx = ssl.create_default_context(cafile=load.ca_file)
    headers = {"Authorization": f"Bearer {load.token}"}
    if load.body:
        headers["Content-Type"] = "application/json"
    data = load.body.encode() if load.body else None
    latencies: list[float] = []
    errors = 0
    counter = 0
    connector = aiohttp.TCPConnector(limit=CONNECTIONS, ssl=ctx)
    base = url.split("/", 3)
    origin = "/".join(base[:3])

    def next_url() -> str:
        nonlocal counter
        if not load.names:
            return url
        counter += 1
        return origin + load.path % (counter % load.names)

    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            nonlocal errors
            while len(latencies) < MAX_REQUESTS:
                t0 = time.perf_counter()
                if t0 >= deadline:
                    return
                async with session.request(load.method, next_url(), data=data) as response:
                    await response.read()
                    if response.status >= 300:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    n = len(latencies)
    pcts = {
        str(p): round(latencies[min(n - 1, int(n * p / 100))] * 1000, 3) if n else 0.0
        for p in PERCENTILES
    }
    return {"requests": n, "errors": errors, "seconds": elapsed, "percentiles_ms": pcts}


def _load_main(argv: list[str]) -> int:
    env = os.environ
    load = Load(
        argv[0],
        env["PEERS_METHOD"],
        env["PEERS_PATH"],
        int(env["PEERS_NAMES"]),
        env["PEERS_BODY"],
        env["PEERS_TOKEN"],
        env["PEERS_CA_FILE"],
    )
    json.dump(asyncio.run(_load(load, argv[0], float(argv[1]))), sys.stdout)
    return 0


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _request(
    method: str, url: str, ca_file: str, token: str | None = None, body: object = None
) -> tuple[int, Any]:
    """One HTTPS call for setting servers up: (status, JSON body or None)."""
    ctx = ssl.create_default_context(cafile=ca_file)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw) if raw else None
        except ValueError:
            return err.code, raw.decode(errors="replace")


def _wait(check: Any, what: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> Any:
    """Poll ``check()`` until it returns something truthy; fail if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the server exited with {proc.returncode}")
        try:
            result = check()
            if result:
                return result
        except (OSError, ValueError) as err:  # not listening yet
            last = err
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready within {timeout:.0f}s (last: {last})")


def stop_process(proc: subprocess.Popen[bytes], name: str) -> None:
    """SIGTERM, then SIGKILL if ``proc`` (``name`` in the message) lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            print(f"{name} ignored SIGTERM; killing it", file=sys.stderr)
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def kvault_server(tmp: Path) -> Iterator[Server]:
    """``kvault server --dev`` on 127.0.0.1 (SQLite in ``tmp``), rate limits off, seeded."""
    argv = [
        *(sys.executable, "-m", "kvault.cli.main", "server", "--dev"),
        *("--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp / "kvault")),
        *("--vault-rate-limit", "0", "--principal-rate-limit", "0"),
    ]
    log = (tmp / "kvault.log").open("wb")
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=log)
    try:
        assert proc.stdout is not None
        env: dict[str, str] = {}
        for raw in proc.stdout:
            key, sep, value = raw.decode().strip().partition("=")
            if sep and key.startswith("KVAULT_"):
                env[key] = value
            if len(env) == 3:
                break
        else:
            raise RuntimeError(f"kvault exited before printing its endpoint (log: {tmp})")
        base, token, ca = env["KVAULT_ENDPOINT"], env["KVAULT_TOKEN"], env["KVAULT_CA_FILE"]
        seed = f"{base}/secrets/bench?api-version=7.5"
        _wait(lambda: _request("PUT", seed, ca, token, {"value": VALUE})[0] == 200, "kvault", proc)
        from kvault import __version__

        yield Server(
            "kvault",
            proc,
            base,
            token,
            ca,
            "/secrets/bench?api-version=7.5",
            "/secrets/set-%d?api-version=7.5",
            "PUT",
            json.dumps({"value": VALUE}),
            {
                "version": __version__,
                "storage": "sqlite (kvault server --dev)",
                "license": "kvault",
            },
        )
    finally:
        stop_process(proc, "kvault")
        log.close()


def write_tls(tmp: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a P-256 server certificate for 127.0.0.1 (what kvault's dev mode
    serves with too): (ca, cert, key) files."""
    from e2e import pki

    ca, ca_key = pki.make_ca("kvault-bench-peers-ca")
    cert, key = pki.issue(
        pki.Identity("vault", "127.0.0.1", server=True, ips=("127.0.0.1",)), ca, ca_key
    )
    paths = (tmp / "ca.crt", tmp / "vault.crt", tmp / "vault.key")
    pki.write_cert(ca, paths[0])
    pki.write_cert(cert, paths[1])
    pki.write_key(key, paths[2])
    return paths


def vault_config(storage: str, data: Path, port: int, cluster_port: int, tls: Path) -> str:
    """HCL for one storage kind (``dev``: the listener only; dev mode brings inmem)."""
    listener = f"""listener "tcp" {{
  address         = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_cert_file   = "{tls / "vault.crt"}"
  tls_key_file    = "{tls / "vault.key"}"
}}
"""
    if storage == "dev":
        return listener
    stanza = {
        "file": f'storage "file" {{\n  path = "{data}"\n}}\n',
        "raft": f'storage "raft" {{\n  path    = "{data}"\n  node_id = "bench"\n}}\n',
    }[storage]
    return (
        listener
        + stanza
        + f'api_addr      = "https://127.0.0.1:{port}"\n'
        + f'cluster_addr  = "https://127.0.0.1:{cluster_port}"\n'
        + "disable_mlock = true\nui            = false\n"
    )


@contextmanager
def vault_server(
    binary: Path, storage: str, tmp: Path, tls: tuple[Path, Path, Path]
) -> Iterator[Server]:
    """Vault on 127.0.0.1 with TLS: dev mode, or a one-node server on ``storage`` that is
    initialised, unsealed and given KV v2 at ``secret/`` through the HTTP API; seeded."""
    home = tmp / f"vault-{storage}"
    (home / "data").mkdir(parents=True)
    port, cluster_port = free_port(), free_port()
    config = home / "config.hcl"
    config.write_text(vault_config(storage, home / "data", port, cluster_port, tls[0].parent))
    ca = str(tls[0])
    base = f"https://127.0.0.1:{port}"
    argv = [str(binary), "server", f"-config={config}", "-log-level=warn"]
    token = ""
    if storage == "dev":
        token = secrets.token_urlsafe(24)
        argv += [
            "-dev",
            f"-dev-root-token-id={token}",
            f"-dev-listen-address=127.0.0.1:{free_port()}",
        ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(home)  # dev mode writes ~/.vault-token
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(argv, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        health = f"{base}/v1/sys/health?uninitcode=200&sealedcode=200&standbycode=200"
        _wait(lambda: _request("GET", health, ca)[0] == 200, f"vault-{storage} listener", proc)
        if storage != "dev":
            token = _init_unseal(base, ca, proc, storage)
        _, body = _request("GET", f"{base}/v1/sys/health", ca)
        version = body.get("version") if isinstance(body, dict) else None

        def seeded() -> bool:
            put = _request(
                "POST", f"{base}/v1/secret/data/bench", ca, token, {"data": {"value": VALUE}}
            )
            return put[0] == 200  # KV v2 answers 400 while its mount upgrades

        _wait(seeded, f"vault-{storage} KV v2", proc)
        yield Server(
            f"vault-{storage}",
            proc,
            base,
            token,
            ca,
            "/v1/secret/data/bench",
            "/v1/secret/data/set-%d",
            "POST",
            json.dumps({"data": {"value": VALUE}}),
            {
                "version": version,
                "storage": {"dev": "inmem (server -dev)", "file": "file", "raft": "raft"}[storage],
                "license": "BUSL-1.1",
            },
        )
    finally:
        stop_process(proc, f"vault-{storage}")
        log.close()


def _init_unseal(base: str, ca: str, proc: subprocess.Popen[bytes], storage: str) -> str:
    """``sys/init`` (one key share), ``sys/unseal``, wait until active, mount KV v2."""
    status, init = _request(
        "PUT", f"{base}/v1/sys/init", ca, None, {"secret_shares": 1, "secret_threshold": 1}
    )
    if status != 200:
        raise RuntimeError(f"vault-{storage} init: HTTP {status} {init}")
    token = str(init["root_token"])
    status, body = _request(
        "PUT", f"{base}/v1/sys/unseal", ca, None, {"key": init["keys_base64"][0]}
    )
    if status != 200 or body.get("sealed"):
        raise RuntimeError(f"vault-{storage} unseal: HTTP {status} {body}")
    _wait(
        lambda: _request("GET", f"{base}/v1/sys/health", ca)[0] == 200,
        f"vault-{storage} active",
        proc,
    )
    mount = {"type": "kv", "options": {"version": "2"}}
    status, body = _request("POST", f"{base}/v1/sys/mounts/secret", ca, token, mount)
    if status not in (200, 204):
        raise RuntimeError(f"vault-{storage} mount: HTTP {status} {body}")
    return token


# --- the bench --------------------------------------------------------------------------------


def loads(server: Server) -> dict[str, Load]:
    """The two operations against one server."""
    get = Load(
        server.base + server.get_path, "GET", server.get_path, 0, "", server.token, server.ca_file
    )
    first = server.base + server.set_path % 0
    set_ = Load(
        first,
        server.set_method,
        server.set_path,
        NAMES,
        server.set_body,
        server.token,
        server.ca_file,
    )
    return {"get": get, "set": set_}


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def summarize(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds of one operation on one server."""
    pcts = {
        str(p): round(_median([w["percentiles_ms"][str(p)] for w in windows]), 3)
        for p in PERCENTILES
    }
    return {
        "req_per_s": round(_median([w["req_per_s"] for w in windows]), 1),
        "p50_ms": round(_median([w["p50_ms"] for w in windows]), 3),
        "p99_ms": round(_median([w["p99_ms"] for w in windows]), 3),
        "percentiles_ms": pcts,
        "server_cpu_us_per_req": round(_median([w["server_cpu_us_per_req"] for w in windows])),
        "generator_cpu_us_per_req": round(
            _median([w["generator_cpu_us_per_req"] for w in windows]), 1
        ),
        "errors": sum(w["errors"] for w in windows),
        "requests": sum(w["requests"] for w in windows),
        "generator_busy_windows": sum(1 for w in windows if w["generator_busy"]),
        "retried_windows": sum(1 for w in windows if "retried_generator_cpu_share" in w),
        "windows": [
            {k: w[k] for k in ("req_per_s", "p50_ms", "p99_ms", "errors", "generator_cpu_share")}
            for w in windows
        ],
    }


def ratios(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> dict[str, float]:
    """kvault / peer, the median of the per-round ratios (rate: higher is better for
    kvault; latency: lower is)."""
    out = {}
    for key in ("req_per_s", "p50_ms", "p99_ms"):
        each = [a[key] / b[key] for a, b in zip(ours, theirs, strict=True) if b[key]]
        out[key] = round(_median(each), 3)
    return out


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def wrk_version() -> str:
    if generator() != "wrk":
        return f"python asyncio + aiohttp ({sys.executable})"
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return (out.stdout + out.stderr).strip().splitlines()[0]


def run(window: int, rounds: int, storages: list[str], build: bool, command: str) -> dict[str, Any]:
    """Start kvault and the peer's servers, measure in interleaved rounds, stop them all."""
    from e2e import peers

    peer = peers.STORE_PEER
    binary = peers.ensure(peer) if build else peers.PEERS[peer].path
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"{binary} is missing: python -m e2e.tools build {peer}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kvault-peers-") as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        tls = write_tls(tmp)
        servers = [stack.enter_context(kvault_server(tmp))]
        for storage in storages:
            servers.append(stack.enter_context(vault_server(binary, storage, tmp, tls)))
        plan = {s.name: loads(s) for s in servers}
        windows: dict[str, dict[str, list[dict[str, Any]]]] = {
            op: {s.name: [] for s in servers} for op in ("get", "set")
        }
        for rnd in range(rounds):
            for op in ("get", "set"):
                # Alternate the order too, so neither side always follows the other.
                order = servers if rnd % 2 == 0 else servers[::-1]
                for server in order:
                    result = measure(plan[server.name][op], window, server.proc.pid)
                    windows[op][server.name].append(result)
                    print(
                        f"round {rnd + 1}/{rounds} {op:3} {server.name:10} "
                        f"{result['req_per_s']:9.1f} req/s  p50 {result['p50_ms']:7.2f} ms  "
                        f"p99 {result['p99_ms']:7.2f} ms  errors {result['errors']}  "
                        f"wrk cpu {result['generator_cpu_share']:.2f}"
                        + (" (retried)" if "retried_generator_cpu_share" in result else ""),
                        file=sys.stderr,
                        flush=True,
                    )
        about = {s.name: s.about for s in servers}
    results = {op: {name: summarize(ws) for name, ws in per.items()} for op, per in windows.items()}
    peer_names = [n for n in windows["get"] if n != "kvault"]
    ratio = {
        op: {
            f"kvault/{name}": ratios(windows[op]["kvault"], windows[op][name])
            for name in peer_names
        }
        for op in windows
    }
    info = peers.build_info(peer)
    return {
        "benchmark": "peers store",
        "command": command,
        "machine": machine(),
        "peer": {
            "name": peer,
            "module": f"{peers.PEERS[peer].module}@{peers.PEERS[peer].version}",
            "license": peers.PEERS[peer].license,
            "build": info,
            "openbao": f"refused by the Go module proxy: {peers.OPENBAO_REFUSED}",
        },
        "servers": about,
        "generator": {
            "tool": wrk_version(),
            "threads": 1,
            "connections": CONNECTIONS,
            "set_names": NAMES,
            "value_bytes": len(VALUE),
            "busy_loop_cpu_share_max": GENERATOR_CPU_SHARE_MAX,
            "busy_loop_note": (
                "wrk -t1 busy-loops while a connection's TLS handshake waits on the server "
                "(seen against kvault only); such a window is measured again once, and "
                "counted in generator_busy_windows if it still is"
            ),
        },
        "window_s": window,
        "rounds": rounds,
        "elapsed_s": round(time.monotonic() - started, 1),
        "results": results,
        "ratios": ratio,
        "goals": {"get_req_per_s_ratio_min": GOAL_GET_RATIO},
        "goal_met": {
            f"get kvault/{name}": ratio["get"][f"kvault/{name}"]["req_per_s"] >= GOAL_GET_RATIO
            for name in peer_names
        },
    }


def table(report: dict[str, Any]) -> str:
    """A plain-text table of the medians and ratios."""
    lines = [
        f"{'op':4} {'server':11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'srv us/req':>10} {'gen us/req':>10}  kvault/peer (req/s, p50, p99)"
    ]
    for op, per in report["results"].items():
        for name, r in per.items():
            rat = report["ratios"][op].get(f"kvault/{name}")
            rtext = (
                f"{rat['req_per_s']:.2f}x  {rat['p50_ms']:.2f}x  {rat['p99_ms']:.2f}x"
                if rat
                else ""
            )
            lines.append(
                f"{op:4} {name:11} {r['req_per_s']:9.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
                f"{r['server_cpu_us_per_req']:10} {r['generator_cpu_us_per_req']:10}  {rtext}"
            )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench peers store", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--window", type=int, default=3, help="seconds per measurement window")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians over them)")
    ap.add_argument(
        "--storage",
        action="append",
        choices=STORAGES,
        help=f"peer storages to run (repeatable; default: {', '.join(STORAGES)})",
    )
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="write the figures here")
    ap.add_argument("--no-build", action="store_true", help="fail instead of building the peer")
    args = ap.parse_args(argv)
    command = " ".join(["python -m bench peers store", *argv])
    storages = args.storage or list(STORAGES)
    report = run(max(1, args.window), max(1, args.rounds), storages, not args.no_build, command)
    peers_report.save(report, table(report), args.json)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        sys.exit(_load_main(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
