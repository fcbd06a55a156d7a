#!/usr/bin/env python3
"""PromQL range-query latency: Sightline's engine and VictoriaMetrics 1.79 on the
same samples.

The data set is the differential test's generator (tests/integration/
test_promql_diff.py) scaled up: gauges, counters with resets, classic
histograms, info series, 15 s and 30 s intervals over two hours. The same
samples go to
  - VictoriaMetrics (Debian package victoria-metrics), started on a loopback
    port over a fresh directory and fed through /api/v1/import/prometheus;
    queries over HTTP with nocache=1 (no result cache);
  - Sightline's PromQL engine through tests' promql_eval_tool (the engine over
    an in-memory querier: evaluation only, no HTTP and no storage reads), once
    as it runs (series-major where the query fits it) and once with
    --stepwise (every step evaluated on its own, the reference path);
  - with --sightline BIN, `sightline serve` itself: the samples sent over
    OTLP/HTTP (/v1/metrics), the WAL cut into chunks, then the queries asked of
    its /api/v1/query_range (HTTP, storage reads, evaluation, JSON), like
    VictoriaMetrics;
  - and then, unless --no-compacted, a second `sightline serve` with 1-minute
    windows fed the same samples: once its window has ended and been compacted
    into zstd blocks (the state of all data older than a window), the queries
    again, with the block cache (--metrics-cache, default) and after a restart
    with --metrics-cache 0, VictoriaMetrics timed again beside them.
Each query is a Grafana-like range query (the last hour, 15 s step); the
figure is the median of --runs timed runs after one warm-up.

Usage: bench/promql_bench.py --tool BUILD/tests/promql_eval_tool [--sightline BUILD/sightline]
                              [--scale 10] [--runs 5]
Prints a markdown table for bench/RESULTS.md.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))  # the data set, harness
import test_promql_diff as data  # noqa: E402

QUERIES = [
    "rate(sl_http_requests_total[5m])",
    "sum by (job, code) (rate(sl_http_requests_total[5m]))",
    "histogram_quantile(0.99, sum by (le, job) (rate(sl_request_duration_seconds_bucket[5m])))",
    "avg_over_time(sl_temperature_celsius[10m])",
    "topk(5, sl_temperature_celsius)",
    "sl_temperature_celsius > 50",
    "sum by (team) (rate(sl_http_requests_total[5m]) * on(job, instance) group_left(team) sl_build_info)",
    "max_over_time(sl_queue_depth[30m])",
]


def http(url, body=None, timeout=120):
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def time_http(url, runs):
    """One warm-up, then the median of runs timed GETs, and the series count."""
    http(url)
    times = []
    body = b"{}"
    for _ in range(runs):
        t0 = time.perf_counter()
        body = http(url)
        times.append((time.perf_counter() - t0) * 1000)
    d = json.loads(body)
    n = len(d["data"]["result"]) if d.get("status") == "success" else -1
    return statistics.median(times), n


def sightline_up(binary, fams, extra=()):
    """Starts sightline, sends it the samples over OTLP and waits until the
    WAL is cut into chunks. Returns the harness Server."""
    from harness import Server
    srv = Server(binary, ["--cut-interval", "1s", *extra]).start()
    for req in data.otlp_requests(fams):
        status, _, body = srv.post("/v1/metrics", json.dumps(req).encode(), "application/json")
        if status != 200:
            raise RuntimeError(f"/v1/metrics answered {status}: {body[:200]!r}")
    for _ in range(600):
        _, _, raw = srv.get("/metrics")
        if b"sightline_storage_wal_records 0" in raw:
            break
        time.sleep(0.1)
    return srv


def wait_compacted(srv, timeout=240):
    """Waits until every metrics window of srv's tenant has been compacted
    (one "compacted in" line per window in the whole server log)."""
    wdir = os.path.join(srv.data_dir, "data", "default", "metrics")
    deadline = time.time() + timeout
    while time.time() < deadline:
        wins = [d for d in os.listdir(wdir) if d.isdigit()] if os.path.isdir(wdir) else []
        with open(os.path.join(srv.data_dir, "server.log"), "rb") as f:
            done = f.read().count(b"compacted in")
        if wins and done >= len(wins):
            return len(wins)
        time.sleep(1)
    raise RuntimeError("the metrics windows were not compacted in time")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--sightline")
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-compacted", action="store_true")
    args = ap.parse_args()
    vm = shutil.which("victoria-metrics")
    if vm is None:
        print("victoria-metrics is not installed (apt-get install victoria-metrics)")
        return 1
    tmp = tempfile.mkdtemp(prefix="sightline-promql-bench-")
    proc = None
    srv = None
    try:
        base = (int(time.time()) // 3600 - 3) * 3600
        end = base + data.HOURS * 3600
        fams = data.build_data(base, args.scale)
        om = os.path.join(tmp, "data.om")
        nsamples = data.write_openmetrics(fams, om)
        vmtxt = os.path.join(tmp, "vm.txt")
        # VictoriaMetrics reads Prometheus text with millisecond timestamps.
        data.write_openmetrics(fams, vmtxt, ts=str)

        port = data.free_port()
        log = open(os.path.join(tmp, "vm.log"), "wb")
        proc = subprocess.Popen([vm, f"-storageDataPath={tmp}/vm", f"-httpListenAddr=127.0.0.1:{port}",
                                 "-retentionPeriod=10y", "-search.latencyOffset=0s",
                                 "-loggerLevel=ERROR"], stdout=log, stderr=log)
        vmurl = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                http(vmurl + "/health", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        with open(vmtxt, "rb") as f:
            while True:
                chunk = f.read(8 << 20)
                if not chunk:
                    break
                nl = chunk.rfind(b"\n") + 1
                f.seek(nl - len(chunk), os.SEEK_CUR)
                http(vmurl + "/api/v1/import/prometheus", chunk[:nl])
        http(vmurl + "/internal/force_flush")
        time.sleep(2)

        start_s, end_s, step = end - 3600, end, 15
        rows = []
        lines = [f"range {start_s * 1000} {end_s * 1000} {step * 1000} {q}" for q in QUERIES]
        r = subprocess.run([args.tool, om, "--repeat", str(args.runs)], input="\n".join(lines) + "\n",
                           capture_output=True, text=True, timeout=1800)
        ours = [json.loads(x) for x in r.stdout.splitlines()]
        r = subprocess.run([args.tool, om, "--repeat", str(args.runs), "--stepwise"],
                           input="\n".join(lines) + "\n", capture_output=True, text=True,
                           timeout=1800)
        stepwise = [json.loads(x) for x in r.stdout.splitlines()]
        if args.sightline:
            srv = sightline_up(args.sightline, fams)
        for q, o, sw in zip(QUERIES, ours, stepwise):
            params = urllib.parse.urlencode({"query": q, "start": start_s, "end": end_s,
                                             "step": step, "nocache": 1})
            ms_vm, nseries = time_http(vmurl + "/api/v1/query_range?" + params, args.runs)
            ms_sl, n_sl = float("nan"), -1
            if srv is not None:
                ms_sl, n_sl = time_http(f"http://127.0.0.1:{srv.query_port}/api/v1/query_range?" +
                                        params, args.runs)
            rows.append((q, len(o["data"]["result"]) if o.get("status") == "success" else -1,
                         nseries, o.get("elapsed_ms", float("nan")),
                         sw.get("elapsed_ms", float("nan")), ms_vm, n_sl, ms_sl))
        compacted = []
        if srv is not None and not args.no_compacted:
            srv.cleanup()
            srv = sightline_up(args.sightline, fams, ["--partition", "1m", "--log-level", "info"])
            nwin = wait_compacted(srv)
            for q in QUERIES:
                params = urllib.parse.urlencode({"query": q, "start": start_s, "end": end_s,
                                                 "step": step, "nocache": 1})
                ms_c, _ = time_http(f"http://127.0.0.1:{srv.query_port}/api/v1/query_range?" +
                                    params, args.runs)
                ms_vm2, _ = time_http(vmurl + "/api/v1/query_range?" + params, args.runs)
                compacted.append([ms_c, ms_vm2])
            srv.stop()
            srv.extra_args = list(srv.extra_args) + ["--metrics-cache", "0"]
            srv.start()
            for i, q in enumerate(QUERIES):
                params = urllib.parse.urlencode({"query": q, "start": start_s, "end": end_s,
                                                 "step": step, "nocache": 1})
                ms_u, _ = time_http(f"http://127.0.0.1:{srv.query_port}/api/v1/query_range?" +
                                    params, args.runs)
                compacted[i].append(ms_u)
        nseries_total = sum(len(v[1]) if v[0] != "histogram" else len(v[1][1]) * 9
                            for v in fams.values())
        print(f"### PromQL range queries ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
              f"{platform.machine()})\n")
        print(f"Data: {nseries_total} series, {nsamples} samples over 2 h (scale {args.scale}); "
              f"range queries over the last hour, step {step}s (241 points per series); "
              f"median of {args.runs} runs after a warm-up.\n")
        print("| query | series (engine / sightline / VM) | engine only ms | "
              "engine step-wise ms | sightline serve ms | VictoriaMetrics 1.79 ms |")
        print("|---|---|---|---|---|---|")
        for q, ns, nv, ms_ours, ms_sw, ms_vm, n_sl, ms_sl in rows:
            print(f"| `{q}` | {ns} / {n_sl} / {nv} | {ms_ours:.1f} | {ms_sw:.1f} | {ms_sl:.1f} | "
                  f"{ms_vm:.1f} |")
        if compacted:
            print(f"\nThe same queries over the data once compacted ({nwin} window(s) of 1 minute "
                  "by arrival, zstd blocks), VictoriaMetrics timed again beside them:\n")
            print("| query | sightline serve, compacted, block cache ms | VictoriaMetrics 1.79 ms | "
                  "sightline serve, compacted, --metrics-cache 0 ms |")
            print("|---|---|---|---|")
            for q, (ms_c, ms_vm2, ms_u) in zip(QUERIES, compacted):
                print(f"| `{q}` | {ms_c:.1f} | {ms_vm2:.1f} | {ms_u:.1f} |")
        return 0
    finally:
        if srv is not None:
            srv.cleanup()
        data.stop_process(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
