"""``python -m bench peers operator``: kvault's operator beside External Secrets Operator on the
local cluster, the same workload for both, in one run (issue 14).

Workload at each N (``--sizes``, default 1,000 and 10,000; ``--quick``: 100): N objects spread
over 10 fresh ``bp-`` namespaces, each projecting one key into its own Secret.

- **kvault**: one Vault ``main`` (in the first namespace) holding N items, written through the
  data plane; N VaultSecrets (``refreshInterval: 1h``, kvault's default) reading it as
  ServiceAccount ``app`` of their own namespace (role assignments name all 10). The operator
  runs as a host process (e2e/operator_harness.py, ``--workers 64`` as bench/operator.py).
- **ESO** v0.16.2 (bench/peers_eso.py): one ClusterSecretStore whose ``fake`` provider holds
  the N keys; N ExternalSecrets (``refreshInterval: 1h``, ESO's default). Run at its default
  settings and at its best (``--concurrent 32 --client-qps 1000 --client-burst 2000`` with
  ``GOMAXPROCS=1``; why in bench/peers_eso.py).

Figures:

- **cold reconcile**: the objects exist and no target Secret does; time from the operator's
  exec until a watch on the Secrets has seen all N (objects/s), then RSS (VmRSS) and CPU
  seconds (utime + stime) of the operator process. ESO runs twice on the same
  ExternalSecrets (default, then best), their Secrets deleted in between.
- **apiserver requests**: each operator runs as its own ServiceAccount (cluster-admin) with a
  FlowSchema of its own (bench/peers_apiserver.py), so the apiserver's
  ``apiserver_flowcontrol_dispatched_requests_total`` counts exactly its requests on this
  shared cluster; ``apiserver_request_total`` of the resources it uses (everyone's) gives the
  breakdown by verb and resource. Per object for the cold reconcile (until 5 s after the last
  Secret), and per object and minute over a quiet window (``--quiet`` s, nothing changes at
  the source) at steady state.
- **steady state** (at the smallest N): the quiet window, then update latency: ``--rounds``
  times change one value at the source (kvault: a write through the data plane; ESO: a JSON
  patch of the store's fake data) and time until the watch sees the Secret's new value, one
  round at a time. ESO polls: it is measured with every ExternalSecret at ``--eso-refresh``
  (default 1s, the shortest practical interval: each refresh costs ESO a GET and a LIST of
  Secrets and a status write, so at N=1,000 it already cannot keep up), and its requests are
  counted at 1h (its default) and at that interval. At 1h its latency is bounded by the hour
  (uniform over 0-1h: p50 ~30 min), so it is not measured.

Needs the local cluster (``python -m e2e.cluster up``) or ``KUBECONFIG`` with
``KVAULT_E2E_EXISTING=1``. Every namespace, the store, the FlowSchemas and ClusterRoleBindings,
the ESO CRDs this run applied, and every process it started are removed at the end.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import peers_eso, peers_report
from bench.operator import _cluster
from bench.peers_apiserver import (
    Identity,
    RequestKey,
    drop_identity,
    make_identity,
    quiet_window,
    scrape,
)
from bench.peers_cluster import (
    SecretFollower,
    cold_figures,
    create_many,
    custom_api,
    delete_namespaces,
    delete_secrets,
    latency_rounds,
    make_namespaces,
    proc_stats,
)
from bench.peers_store import machine
from e2e.fixtures import Cluster
from e2e.operator_harness import (
    ADMIN,
    GROUP,
    SU,
    VERSION,
    Operator,
    admin_token,
    create,
    data_plane,
    install_crds,
    release,
    sa_role,
    set_secret,
    start_operator,
    vault_spec,
    wait_condition,
)
from e2e.wait import Abort
from kvault.cli.errors import CliError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "bench" / "results" / "peers-operator.json"
NAMESPACES = 10
KVAULT_EXTRA = ("--workers", "64")  # as bench/operator.py
KVAULT_LABEL = "app.kubernetes.io/managed-by=kvault"
WRITERS = 8  # data-plane connections writing the N items
SETTLE_S = 5.0  # after a cold reconcile or a change of settings, before a quiet window
#: Goals of issue 14.
GOAL_COLD_RATIO = 1.0  # kvault objects/s >= 1x ESO at its best, at the largest N
GOAL_P99_MS = 1000.0  # kvault update latency p99
GOAL_REQUESTS_RATIO = 1.0  # kvault requests/object/min <= ESO's at the same freshness
GOAL_RSS_RATIO = 1.5  # kvault RSS <= 1.5x ESO's at the largest N


def kvault_touches(key: RequestKey) -> bool:
    verb, group, resource, _sub = key
    if verb == "WATCH":
        return False
    return group == GROUP or resource in ("secrets", "events", "leases")


def _timeout(n: int) -> float:
    return max(600.0, n * 0.5)


@dataclass
class Run:
    """What every part of one run shares."""

    cluster: Cluster  # the admin: creates, watches and changes objects, reads /metrics
    kvault: Identity  # the kvault operator's identity
    eso: Identity  # ESO's
    exe: Path  # the ESO binary
    opts: argparse.Namespace
    logs: Path  # ESO's logs


# --- kvault ---------------------------------------------------------------------------------------


def _write_items(op: Operator, token: str, ns: str, n: int) -> float:
    """``item-0 .. item-(n-1)`` through the data plane, one connection per thread, at the rate
    the data plane allows one principal (it answers Throttled beyond 2,000 per 10 s)."""
    local = threading.local()
    planes = []
    lock = threading.Lock()

    def one(i: int) -> None:
        plane = getattr(local, "plane", None)
        if plane is None:
            plane = local.plane = data_plane(op, token, "main", ns)
            with lock:
                planes.append(plane)
        for _attempt in range(100):
            try:
                set_secret(plane, f"item-{i}", f"v0-{i}")
                return
            except CliError as exc:  # the data plane's per-principal limit: wait as it says
                if not exc.message.startswith("(Throttled)"):
                    raise
                wait = re.search(r"retry after (\d+(?:\.\d+)?) s", exc.message)
                time.sleep(float(wait.group(1)) if wait else 1.0)
        raise RuntimeError(f"item-{i}: still throttled after 100 attempts")

    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(one, range(n)))
    finally:
        for plane in planes:
            plane.close()
    return time.perf_counter() - t0


def _vaultsecret(cluster: Cluster, nss: list[str], i: int) -> None:
    spec = {
        "vaultRef": {"name": "main", "namespace": nss[0]},
        "serviceAccountName": "app",
        "refreshInterval": "1h",
        "data": [{"secretKey": "value", "remoteRef": {"name": f"item-{i}"}}],
    }
    create(cluster, nss[i % len(nss)], "vaultsecrets", "VaultSecret", f"vs-{i}", spec)


def _kvault_cleanup(cluster: Cluster, nss: list[str], op: Operator | None) -> None:
    """Delete the namespaces while the operator still runs (it removes its finalizers; the
    VaultSecrets go first in one call per namespace), then stop it."""
    api = custom_api(cluster)
    if op is None or not op.alive():
        release(cluster, nss)

    def first(ns: str) -> None:
        api.delete_collection_namespaced_custom_object(GROUP, VERSION, ns, "vaultsecrets")

    try:
        delete_namespaces(cluster, nss, before=first)
    finally:
        if op is not None:
            op.stop()


def kvault_size(run: Run, n: int, steady: bool) -> dict[str, Any]:
    """Cold reconcile of N VaultSecrets (and, if ``steady``, the steady-state figures)."""
    cluster, opts, who = run.cluster, run.opts, run.kvault
    out: dict[str, Any] = {}
    nss = make_namespaces(cluster, "bp-kv-", NAMESPACES)
    op: Operator | None = None
    with tempfile.TemporaryDirectory(prefix="bp-kvault-") as tmp:
        data = Path(tmp) / "data"
        try:
            for ns in nss:
                cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": "app"}})
            op = start_operator(who.cluster, data, nss, extra=KVAULT_EXTRA)
            roles = [sa_role("app", SU, namespace=ns) for ns in nss]
            create(
                cluster,
                nss[0],
                "vaults",
                "Vault",
                "main",
                vault_spec([*roles, sa_role("admin", ADMIN)]),
            )
            wait_condition(cluster, nss[0], "vaults", "main", "True", "Provisioned", timeout=60)
            token = admin_token(cluster, nss[0])
            written = _write_items(op, token, nss[0], n)
            op.stop()  # the VaultSecrets are created while no operator runs
            op = None
            created = create_many(lambda i: _vaultsecret(cluster, nss, i), range(n))
            keys = {(nss[i % NAMESPACES], f"vs-{i}") for i in range(n)}
            with SecretFollower(cluster, nss, KVAULT_LABEL) as follower:
                before = scrape(cluster)
                t0 = time.perf_counter()
                op = start_operator(who.cluster, data, nss, extra=KVAULT_EXTRA)
                running = op

                def check() -> None:
                    if not running.alive():
                        raise Abort(f"kvault operator exited: {running.text()[-2000:]}")

                last = follower.wait_all(keys, _timeout(n), check)
                stats = proc_stats(op.process.pid)
                elapsed = last - t0
                time.sleep(SETTLE_S)  # the tail of the reconcile (status writes) counts too
                requests = scrape(cluster).by_flow[who.name] - before.by_flow[who.name]
                out["cold"] = {
                    "setting": "kvault operator " + " ".join(KVAULT_EXTRA),
                    "write_items_s": round(written, 1),
                    "create_objects_s": round(created, 1),
                    **cold_figures(n, elapsed, stats, requests),
                }
                _log(f"kvault N={n}: cold {out['cold']}")
                if steady:
                    quiet = quiet_window(cluster, opts.quiet, who, kvault_touches, n)
                    plane = data_plane(op, token, "main", nss[0])
                    try:
                        latency = latency_rounds(
                            follower,
                            n,
                            opts.rounds,
                            lambda i: (nss[i % NAMESPACES], f"vs-{i}"),
                            lambda i, v: set_secret(plane, f"item-{i}", v),
                            timeout=60,
                        )
                    finally:
                        plane.close()
                    out["steady"] = {
                        "refresh": "change feed (refreshInterval 1h)",
                        **latency,
                        "requests": quiet,
                    }
                    _log(f"kvault N={n}: steady {out['steady']}")
        finally:
            _kvault_cleanup(cluster, nss, op)
    return out


# --- ESO ----------------------------------------------------------------------------------------


def eso_size(run: Run, n: int, steady: bool) -> dict[str, Any]:
    """Cold reconcile of N ExternalSecrets at ESO's default and best settings (and, if
    ``steady``, the steady-state figures at the best setting)."""
    cluster = run.cluster
    out: dict[str, Any] = {}
    nss = make_namespaces(cluster, "bp-eso-", NAMESPACES)
    store = f"bp-fake-{uuid.uuid4().hex[:8]}"
    sup: peers_eso.Supervisor | None = None
    try:
        peers_eso.create_store(cluster, store, n)
        created = create_many(
            lambda i: peers_eso.create_external_secret(
                cluster, nss[i % NAMESPACES], i, store, "1h"
            ),
            range(n),
        )
        keys = {(nss[i % NAMESPACES], f"es-{i}") for i in range(n)}
        for setting in (peers_eso.DEFAULT, peers_eso.BEST):
            if setting is peers_eso.BEST:
                delete_secrets(cluster, nss, peers_eso.LABEL)
            with SecretFollower(cluster, nss, peers_eso.LABEL) as follower:
                sup = peers_eso.Supervisor(run.eso, run.exe, setting, run.logs)
                cold = peers_eso.cold(cluster, sup, follower, keys, _timeout(n), SETTLE_S)
                out[setting.name] = {"create_objects_s": round(created, 1), **cold}
                _log(f"ESO {setting.name} N={n}: cold {out[setting.name]}")
                if steady and setting is peers_eso.BEST:
                    crashes = len(sup.crashes)
                    out["steady"] = _eso_steady(run, sup, follower, nss, store, n)
                    out["steady"]["crashes"] = len(sup.crashes) - crashes
                    out["steady"]["crash_reasons"] = sorted(set(sup.crashes[crashes:]))
                    _log(f"ESO best N={n}: steady {out['steady']}")
                sup.stop()
                sup = None
    finally:
        if sup is not None:
            sup.stop()
        delete_namespaces(cluster, nss)
        peers_eso.delete_store(cluster, store)
    return out


def _eso_steady(
    run: Run,
    sup: peers_eso.Supervisor,
    follower: SecretFollower,
    nss: list[str],
    store: str,
    n: int,
) -> dict[str, Any]:
    cluster, opts = run.cluster, run.opts
    at_default = _eso_quiet(run, sup, n)
    create_many(
        lambda i: peers_eso.set_refresh(cluster, nss[i % NAMESPACES], i, opts.eso_refresh),
        range(n),
    )
    time.sleep(SETTLE_S)  # every ExternalSecret refreshes once for its new spec

    def recover() -> bool:
        if not sup.recover():
            return False
        time.sleep(2 * SETTLE_S)  # the new ESO refreshes everything once
        return True

    latency = latency_rounds(
        follower,
        n,
        opts.rounds,
        lambda i: (nss[i % NAMESPACES], f"es-{i}"),
        lambda i, v: peers_eso.set_value(cluster, store, i, v),
        timeout=max(120.0, n * 0.1),
        check=sup.check,
        recover=recover,
    )
    at_fast = _eso_quiet(run, sup, n)
    return {
        "refresh": opts.eso_refresh,
        **latency,
        "requests": at_fast,
        "requests_at_1h": at_default,
    }


def _eso_quiet(run: Run, sup: peers_eso.Supervisor, n: int) -> dict[str, Any]:
    """A quiet window, with ESO's own client-side count beside the apiserver's, and how often
    each ExternalSecret was actually refreshed (its status rewritten). Done again (up to 3
    times) when ESO crashed during it."""
    for _attempt in range(3):
        before = sup.eso.client_requests()
        quiet = quiet_window(run.cluster, run.opts.quiet, run.eso, peers_eso.touches, n)
        after = sup.eso.client_requests()
        if not sup.recover():
            break
        time.sleep(2 * SETTLE_S)  # the new ESO refreshes everything once
    else:
        raise RuntimeError("ESO kept crashing during the quiet windows")
    minutes = quiet["window_s"] / 60
    quiet["eso_client_requests_per_object_per_min"] = round((after - before) / n / minutes, 4)
    status = quiet["cluster_by_request"].get("PUT external-secrets.io/externalsecrets/status", 0)
    per_min = status / n / minutes
    quiet["refreshes_per_object_per_min"] = round(per_min, 3)
    quiet["effective_refresh_s"] = round(60 / per_min, 1) if per_min else None
    return quiet


# --- the report -----------------------------------------------------------------------------------


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The goals of issue 14 that this bench measures, met or not, with their ratios."""
    out: list[dict[str, Any]] = []
    big = max(report["cold"], key=lambda c: c["n"])
    n = big["n"]
    kv, best = big["kvault"], big["eso_best"]
    ratio = kv["per_s"] / best["per_s"]
    crashes = best.get("crashes", 0)
    out.append(
        {
            "goal": f"cold reconcile at N={n}: kvault >= {GOAL_COLD_RATIO:g}x ESO at its best",
            "ratio": round(ratio, 3),
            "met": ratio >= GOAL_COLD_RATIO,
            "detail": f"{kv['per_s']} vs {best['per_s']} objects/s"
            + (f"; ESO crashed and was restarted {crashes} times meanwhile" if crashes else ""),
        }
    )
    clean = [c for c in report["cold"] if not c["eso_best"].get("crashes")]
    if crashes and clean:  # the same comparison where ESO's best setting did not crash
        c = max(clean, key=lambda c: c["n"])
        ratio = c["kvault"]["per_s"] / c["eso_best"]["per_s"]
        out.append(
            {
                "goal": f"cold reconcile at N={c['n']} (the largest N where ESO at its best "
                "ran without crashing): kvault >= 1x ESO",
                "ratio": round(ratio, 3),
                "met": ratio >= GOAL_COLD_RATIO,
                "detail": f"{c['kvault']['per_s']} vs {c['eso_best']['per_s']} objects/s",
            }
        )
    steady = report.get("steady") or {}
    if steady:
        p99 = steady["kvault"]["p99_ms"]
        eso = steady["eso_best"]
        out.append(
            {
                "goal": f"update latency p99: kvault <= {GOAL_P99_MS:g} ms",
                "ratio": round(p99 / GOAL_P99_MS, 3),
                "met": p99 <= GOAL_P99_MS,
                "detail": (
                    f"kvault {p99} ms; ESO {eso['p99_ms']} ms at refreshInterval "
                    f"{eso['refresh']} (bounded below by it; ~1h at its default)"
                ),
            }
        )
        ours = steady["kvault"]["requests"]["per_object_per_min"]
        theirs = eso["requests"]["per_object_per_min"]
        ratio = ours / theirs if theirs else float("inf") if ours else 1.0
        out.append(
            {
                "goal": (
                    "steady-state apiserver requests/object/min: kvault <= ESO at the same "
                    f"freshness (ESO refreshInterval {eso['refresh']})"
                ),
                "ratio": round(ratio, 4),
                "met": ours <= theirs,
                "detail": f"{ours} vs {theirs}",
            }
        )
    ratio = kv["operator_rss_mb"] / best["operator_rss_mb"]
    out.append(
        {
            "goal": f"operator RSS at N={n}: kvault <= {GOAL_RSS_RATIO:g}x ESO",
            "ratio": round(ratio, 3),
            "met": ratio <= GOAL_RSS_RATIO,
            "detail": f"{kv['operator_rss_mb']} vs {best['operator_rss_mb']} MiB (ESO best)",
        }
    )
    return out


def table(report: dict[str, Any]) -> str:
    lines = [
        f"peers operator: kvault vs ESO {report['eso']['module'].rsplit('@', 1)[1]} (fake "
        f"provider), {NAMESPACES} namespaces, {report['machine']['cores']} cores",
        "",
        "cold reconcile (operator exec -> every target Secret exists)",
        f"{'N':>6}  {'system':12} {'seconds':>8} {'obj/s':>7} {'RSS MiB':>8} {'CPU s':>7} "
        f"{'req/obj':>7} {'crash':>5}  setting",
    ]
    for c in report["cold"]:
        for name, key in (
            ("kvault", "kvault"),
            ("ESO default", "eso_default"),
            ("ESO best", "eso_best"),
        ):
            r = c[key]
            lines.append(
                f"{c['n']:>6}  {name:12} {r['reconcile_s']:>8.1f} {r['per_s']:>7.1f} "
                f"{r['operator_rss_mb']:>8.1f} {r['operator_cpu_s']:>7.1f} "
                f"{r['requests_per_object']:>7.2f} {r.get('crashes', 0):>5}  {r['setting']}"
            )
    steady = report.get("steady")
    if steady:
        kv, eso = steady["kvault"], steady["eso_best"]
        lines += [
            "",
            f"steady state at N={steady['n']} ({kv['writes']} updates each; requests over a "
            f"{kv['requests']['window_s']:.0f} s quiet window)",
            f"{'system':12} {'refresh':34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
            f"{'req/obj/min':>12}",
        ]
        for name, r, refresh in (
            ("kvault", kv, kv["refresh"]),
            ("ESO best", eso, f"refreshInterval {eso['refresh']}"),
        ):
            lines.append(
                f"{name:12} {refresh:34} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                f"{r['max_ms']:>8.1f} {r['requests']['per_object_per_min']:>12.4f}"
            )
        slow = eso["requests_at_1h"]
        lines.append(
            f"{'ESO best':12} {'refreshInterval 1h (default)':34} "
            f"{'(bounded by 1 h; not measured)':>26} {slow['per_object_per_min']:>12.4f}"
        )
        eff = eso["requests"].get("effective_refresh_s")
        lines.append(
            f"  ESO at {eso['refresh']}: each ExternalSecret refreshed every "
            f"{eff if eff is not None else '-'} s on average during the window; ESO crashed "
            f"{eso.get('crashes', 0)} times in this phase (restarted; "
            f"{eso.get('rounds_redone', 0)} rounds done again)"
        )
    lines += ["", "goals (issue 14)"]
    for g in report["goal_details"]:
        mark = "met    " if g["met"] else "NOT met"
        lines.append(f"  [{mark}] {g['goal']}: ratio {g['ratio']} ({g['detail']})")
    return "\n".join(lines)


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(opts: argparse.Namespace, command: str) -> dict[str, Any]:
    sizes = [100] if opts.quick else sorted({int(s) for s in opts.sizes.split(",") if s.strip()})
    started = time.monotonic()
    cluster = _cluster()
    install_crds(cluster)
    exe = peers_eso.binary(not opts.no_build)
    applied = peers_eso.apply(cluster)
    report: dict[str, Any] = {
        "benchmark": "peers operator",
        "command": command,
        "machine": machine(),
        "eso": peers_eso.describe(),
        "kvault": {"operator": "kvault operator " + " ".join(KVAULT_EXTRA)},
        "namespaces": NAMESPACES,
        "sizes": sizes,
        "rounds": opts.rounds,
        "eso_refresh": opts.eso_refresh,
        "cold": [],
    }
    tag = uuid.uuid4().hex[:6]
    identities: list[Identity] = []
    id_ns: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bp-peers-") as tmp:
            id_ns = make_namespaces(cluster, "bp-id-", 1)
            for name in ("kvault", "eso"):
                identities.append(make_identity(cluster, id_ns[0], f"bp-{tag}-{name}", Path(tmp)))
            run = Run(cluster, identities[0], identities[1], exe, opts, Path(tmp))
            for n in sizes:
                steady = n == sizes[0]
                kv = kvault_size(run, n, steady)
                es = eso_size(run, n, steady)
                report["cold"].append(
                    {
                        "n": n,
                        "kvault": kv["cold"],
                        "eso_default": es["default"],
                        "eso_best": es["best"],
                    }
                )
                if steady:
                    report["steady"] = {"n": n, "kvault": kv["steady"], "eso_best": es["steady"]}
    finally:
        for who in identities:
            drop_identity(cluster, who)
        delete_namespaces(cluster, id_ns)
        peers_eso.remove(cluster, applied)
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    report["goal_details"] = goals(report)
    # What bench/peers_report.py renders into docs/performance.md.
    report["goals"] = {
        g["goal"]: f"{'met' if g['met'] else 'NOT met'} (ratio {g['ratio']}; {g['detail']})"
        for g in report["goal_details"]
    }
    report["table"] = doc_table(report)
    report["summary"] = (
        f"`{command}` on {report['machine']['cores']} cores: N objects over {NAMESPACES} "
        f"namespaces, each projecting one key into its own Secret. ESO "
        f"{report['eso']['module'].rsplit('@', 1)[1]} with its fake provider; default = "
        f"`{peers_eso.DEFAULT.describe()}`, best = `{peers_eso.BEST.describe()}`. Latency and "
        "requests: ESO's best flags, its 'default' column at refreshInterval 1h."
    )
    return report


def doc_table(report: dict[str, Any]) -> dict[str, Any]:
    """One table for the doc: figure, N, kvault, ESO default, ESO best, kvault/ESO best."""

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.3g}x" if b else "-"

    rows: list[list[Any]] = []
    for c in report["cold"]:
        kv, d, b = c["kvault"], c["eso_default"], c["eso_best"]
        for label, key in (
            ("cold reconcile, s", "reconcile_s"),
            ("cold reconcile, objects/s", "per_s"),
            ("operator RSS after it, MiB", "operator_rss_mb"),
            ("operator CPU for it, s", "operator_cpu_s"),
            ("apiserver requests/object for it", "requests_per_object"),
        ):
            rows.append([label, c["n"], kv[key], d[key], b[key], ratio(kv[key], b[key])])
        rows.append(
            [
                "operator crashed (restarted at once) during it",
                c["n"],
                kv.get("crashes", 0),
                d.get("crashes", 0),
                b.get("crashes", 0),
                "-",
            ]
        )
    steady = report.get("steady")
    if steady:
        kv, b = steady["kvault"], steady["eso_best"]
        n, slow = steady["n"], "<= 1 h (refreshInterval 1h)"
        for label, key in (
            ("update latency p50, ms", "p50_ms"),
            ("update latency p99, ms", "p99_ms"),
        ):
            rows.append(
                [
                    f"{label} (ESO at {b['refresh']})",
                    n,
                    kv[key],
                    slow,
                    b[key],
                    ratio(kv[key], b[key]),
                ]
            )
        ours, theirs = kv["requests"]["per_object_per_min"], b["requests"]["per_object_per_min"]
        rows.append(
            [
                f"apiserver requests/object/min, steady (ESO at {b['refresh']})",
                n,
                ours,
                b["requests_at_1h"]["per_object_per_min"],
                theirs,
                ratio(ours, theirs),
            ]
        )
    cols = ["figure", "N", "kvault", "ESO default", "ESO best", "kvault / ESO best"]
    return {"columns": cols, "rows": rows}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench peers operator", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--sizes", default="1000,10000", help="N values, comma-separated")
    ap.add_argument("--quick", action="store_true", help="N=100 only (while developing)")
    ap.add_argument("--rounds", type=int, default=40, help="source changes timed per system")
    ap.add_argument("--quiet", type=float, default=60.0, help="seconds of a quiet window")
    ap.add_argument("--eso-refresh", default="1s", help="ESO's refreshInterval for latency")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="write the figures here")
    ap.add_argument("--no-build", action="store_true", help="fail instead of building ESO")
    opts = ap.parse_args(argv)
    command = " ".join(["python -m bench peers operator", *argv])
    report = run(opts, command)
    peers_report.save(report, table(report), opts.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
