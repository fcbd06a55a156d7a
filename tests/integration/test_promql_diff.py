"""Differential test of the PromQL engine against a real Prometheus 2.42.

One data set (gauges, counters with resets, classic histograms, series with
gaps longer than the 5-minute lookback, 15 s and 30 s intervals, a few hundred
series over two hours) is written as OpenMetrics text. Prometheus gets it
through `promtool tsdb create-blocks-from openmetrics` and serves it on a
loopback port; Sightline's engine evaluates the same samples through the
promql_eval_tool driver (the engine over an in-memory querier loaded from the
same file). A few hundred instant and range queries covering every function
and operator are run against both, and the results must agree: the same
result type, the same set of series (by labels), the same timestamps, and
values within a relative tolerance of 1e-9. Errors must agree in type.

With a sightline binary as second argument the same samples are also sent
to a real `sightline serve` over OTLP/HTTP (/v1/metrics, OTLP/JSON: gauges as
Gauge, counters as monotonic cumulative Sum, histograms as Histogram;
service.name -> job and service_name, service.instance.id -> instance, the
other labels as point attributes, so the translated series carry exactly the
labels of the OpenMetrics file) and every query is also asked of its /api/v1/query and
/api/v1/query_range, compared with Prometheus the same way. While the
collector has no /v1/metrics route (404) that part is reported as not run.

Usage: test_promql_diff.py PROMQL_EVAL_TOOL [SIGHTLINE_BINARY]
Exits 77 (skipped) when prometheus or promtool is not installed.
"""

import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import free_port  # noqa: E402

STEP_S = 15
HOURS = 2
REL_TOL = 1e-9


def build_data(base, scale=1):
    """Returns {family: (type, [(labels dict, [(t_ms, value)])])}. scale
    multiplies the number of instances (the benchmark uses a larger set)."""
    rnd = random.Random(42)
    n = HOURS * 3600 // STEP_S
    fams = {}

    def times(interval, phase_ms, gap=None):
        out = []
        t = base * 1000 + phase_ms
        end = (base + HOURS * 3600) * 1000
        while t <= end:
            if gap is None or not (gap[0] <= t < gap[1]):
                out.append(t)
            t += interval * 1000
        return out

    gap = ((base + 3000) * 1000, (base + 3000 + 660) * 1000)  # 11 minutes
    jobs = ["api", "db", "web"]

    # Gauges: random walks; some with gaps, some at 30 s, some off-phase.
    series = []
    for j in jobs:
        for i in range(12 * scale):
            labels = {"job": j, "instance": f"{j}-{i}", "region": ["eu", "us"][i % 2]}
            interval = 30 if i % 3 == 0 else 15
            phase = (i * 1373) % 7000
            ts = times(interval, phase, gap if i % 4 == 1 else None)
            v = rnd.uniform(10, 100)
            pts = []
            for t in ts:
                v = max(-5.0, v + rnd.gauss(0, 3))
                pts.append((t, round(v, 3)))
            series.append((labels, pts))
    fams["sl_temperature_celsius"] = ("gauge", series)

    series = []
    for j in jobs:
        for i in range(6 * scale):
            labels = {"job": j, "instance": f"{j}-{i}"}
            ts = times(15, 0)
            series.append((labels, [(t, float((k * 7 + i) % 23)) for k, t in enumerate(ts)]))
    fams["sl_queue_depth"] = ("gauge", series)

    # Counters with resets.
    series = []
    for j in jobs:
        for i in range(5 * scale):
            for method in ["GET", "POST"]:
                for code in ["200", "500"]:
                    labels = {"job": j, "instance": f"{j}-{i}", "method": method, "code": code}
                    interval = 30 if i % 5 == 4 else 15
                    ts = times(interval, (i * 911) % 5000, gap if i % 5 == 3 and code == "500" else None)
                    v = rnd.randint(0, 1000)
                    pts = []
                    for k, t in enumerate(ts):
                        if rnd.random() < 0.01:
                            v = rnd.randint(0, 5)  # reset
                        else:
                            v += rnd.randint(0, 40 if code == "200" else 3)
                        pts.append((t, float(v)))
                    series.append((labels, pts))
    fams["sl_http_requests"] = ("counter", series)

    # Special values: NaN and infinities among ordinary ones (sorting, topk,
    # min/max, comparisons, count_values and aggregation must treat them as
    # Prometheus does).
    series = []
    specials = [float("nan"), float("inf"), float("-inf")]
    for i in range(4):
        labels = {"job": "special", "instance": f"special-{i}"}
        pts = []
        for k, t in enumerate(times(30, 0)):
            v = specials[(k + i) % 3] if (k + i) % 5 == 0 else float((k * (i + 3)) % 17)
            pts.append((t, v))
        series.append((labels, pts))
    fams["sl_odd_values"] = ("gauge", series)

    # Info-style series for group_left joins.
    series = []
    for j in jobs:
        for i in range(5 * scale):
            labels = {"job": j, "instance": f"{j}-{i}", "team": ["red", "blue"][i % 2],
                      "version": f"1.{i}"}
            series.append((labels, [(t, 1.0) for t in times(30, 0)]))
    fams["sl_build_info"] = ("gauge", series)

    # Classic histograms: buckets, _sum, _count per series.
    bounds = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
    hist = []
    for j in jobs:
        for i in range(4 * scale):
            labels = {"job": j, "instance": f"{j}-{i}"}
            ts = times(15, (i * 577) % 4000)
            counts = [0] * len(bounds)
            total = 0.0
            pts = []
            for t in ts:
                if rnd.random() < 0.005:
                    counts = [0] * len(bounds)
                    total = 0.0
                for _ in range(rnd.randint(0, 30)):
                    x = rnd.expovariate(3.0 if j != "db" else 1.0)
                    total += x
                    for b, le in enumerate(bounds):
                        if le == "+Inf" or x <= float(le):
                            counts[b] += 1
                pts.append((t, list(counts), round(total, 6)))
            hist.append((labels, pts))
    fams["sl_request_duration_seconds"] = ("histogram", (bounds, hist))
    # Sightline's OTLP translation adds service_name (= service.name) to
    # every series of a resource beside job; the file carries it too.
    for typ, data in fams.values():
        for labels, _ in (data[1] if typ == "histogram" else data):
            labels["service_name"] = labels["job"]
    return fams


def fmt_labels(labels):
    return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))


def fmt_value(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def json_double(v):
    """A double in proto3 JSON: NaN and infinities as strings."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def fmt_ts(t_ms):
    return f"{t_ms // 1000}.{t_ms % 1000:03d}"


def write_openmetrics(fams, path, ts=None):
    """Writes the data set as OpenMetrics text; ts formats a millisecond
    timestamp (default: seconds with three decimals, as OpenMetrics wants).
    Returns the number of samples."""
    fmt_t = ts or fmt_ts
    count = 0
    with open(path, "w") as f:
        for name, (typ, data) in fams.items():
            f.write(f"# TYPE {name} {typ}\n")
            if typ == "histogram":
                bounds, hist = data
                for labels, pts in hist:
                    for t, counts, total in pts:
                        for le, c in zip(bounds, counts):
                            lb = dict(labels, le=le)
                            f.write(f"{name}_bucket{{{fmt_labels(lb)}}} {c} {fmt_t(t)}\n")
                        f.write(f"{name}_sum{{{fmt_labels(labels)}}} {total} {fmt_t(t)}\n")
                        f.write(f"{name}_count{{{fmt_labels(labels)}}} {counts[-1]} {fmt_t(t)}\n")
                        count += len(bounds) + 2
                continue
            suffix = "_total" if typ == "counter" else ""
            for labels, pts in data:
                for t, v in pts:
                    f.write(f"{name}{suffix}{{{fmt_labels(labels)}}} {fmt_value(v)} {fmt_t(t)}\n")
                    count += 1
        f.write("# EOF\n")
    return count


def otlp_requests(fams, window_ms=600000):
    """OTLP/JSON ExportMetricsServiceRequests carrying every sample, one per
    window of time (each series' points stay in time order across requests).
    Cumulative sums and histograms restart their start time at a reset."""
    points = []  # (t, resource key, metric name, kind, attrs, payload)
    for name, (typ, d) in fams.items():
        if typ == "histogram":
            bounds, hist = d
            for labels, pts in hist:
                prev = None
                start = pts[0][0]
                for t, counts, total in pts:
                    if prev is not None and counts[-1] < prev:
                        start = t
                    prev = counts[-1]
                    per_bucket = [counts[0]] + [counts[i] - counts[i - 1] for i in range(1, len(counts))]
                    points.append((t, labels, name, "histogram", {
                        "startTimeUnixNano": str(start * 1000000), "timeUnixNano": str(t * 1000000),
                        "count": str(counts[-1]), "sum": total,
                        "bucketCounts": [str(c) for c in per_bucket],
                        "explicitBounds": [float(b) for b in bounds[:-1]]}))
            continue
        for labels, pts in d:
            prev = None
            start = pts[0][0] if pts else 0
            for t, v in pts:
                if typ == "counter" and prev is not None and v < prev:
                    start = t
                prev = v
                points.append((t, labels, name, typ, {
                    "startTimeUnixNano": str(start * 1000000), "timeUnixNano": str(t * 1000000),
                    "asDouble": json_double(v)}))
    points.sort(key=lambda p: p[0])
    i = 0
    while i < len(points):
        w0 = points[i][0] // window_ms
        j = i
        by_res = {}
        while j < len(points) and points[j][0] // window_ms == w0:
            t, labels, name, typ, dp = points[j]
            res = (labels["job"], labels["instance"])
            attrs = [{"key": k, "value": {"stringValue": v}} for k, v in sorted(labels.items())
                     if k not in ("job", "instance", "service_name")]
            dp = dict(dp, attributes=attrs)
            by_res.setdefault(res, {}).setdefault((name, typ), []).append(dp)
            j += 1
        rms = []
        for (job, inst), metrics in by_res.items():
            ms = []
            for (name, typ), dps in metrics.items():
                if typ == "gauge":
                    ms.append({"name": name, "gauge": {"dataPoints": dps}})
                elif typ == "counter":
                    ms.append({"name": name, "sum": {"dataPoints": dps, "isMonotonic": True,
                                                     "aggregationTemporality": 2}})
                else:
                    ms.append({"name": name, "histogram": {"dataPoints": dps,
                                                           "aggregationTemporality": 2}})
            rms.append({"resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": job}},
                {"key": "service.instance.id", "value": {"stringValue": inst}}]},
                "scopeMetrics": [{"metrics": ms}]})
        yield {"resourceMetrics": rms}
        i = j


def sightline_start(binary, fams):
    """Starts sightline and sends it the data set over OTLP. Returns the
    server, or None (with the server stopped) when it has no /v1/metrics."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from harness import Server
    srv = Server(binary).start()
    first = True
    for req in otlp_requests(fams):
        status, _, body = srv.post("/v1/metrics", json.dumps(req).encode(), "application/json")
        if first and status == 404:
            srv.cleanup()
            return None
        first = False
        if status != 200:
            srv.cleanup()
            raise RuntimeError(f"/v1/metrics answered {status}: {body[:300]!r}")
    return srv


def sightline_get(srv, path, params):
    status, body = srv.get_json(path + "?" + urllib.parse.urlencode(params))
    return body


def compare_metadata_apis(port, srv, base, end):
    """Compares /api/v1/series, /api/v1/labels and /api/v1/label/{name}/values
    of Sightline with Prometheus's. Returns the number of differences."""
    cases = [
        ("/api/v1/series", {"match[]": "sl_build_info"}),
        ("/api/v1/series", {"match[]": ["sl_temperature_celsius{region='eu'}",
                                        "sl_queue_depth{instance=~'api-.*'}"]}),
        ("/api/v1/series", {"match[]": "{__name__=~'sl_request.*',instance='db-1'}",
                            "start": base + 600, "end": base + 1200}),
        ("/api/v1/series", {"match[]": "sl_http_requests_total{code='500'}",
                            "start": end + 3600, "end": end + 7200}),
        ("/api/v1/labels", {}),
        ("/api/v1/labels", {"match[]": "sl_build_info"}),
        ("/api/v1/label/job/values", {}),
        ("/api/v1/label/__name__/values", {}),
        ("/api/v1/label/le/values", {"match[]": "sl_request_duration_seconds_bucket"}),
        ("/api/v1/label/instance/values", {"match[]": "sl_queue_depth{job='web'}"}),
        # Answered from the label index, restricted to the time range by window
        # (Prometheus: by block).
        ("/api/v1/labels", {"start": end + 3600, "end": end + 7200}),
        ("/api/v1/labels", {"start": base, "end": end}),
        ("/api/v1/labels", {"match[]": ["sl_build_info", "sl_odd_values"]}),
        ("/api/v1/label/job/values", {"start": end + 3600, "end": end + 7200}),
        ("/api/v1/label/job/values", {"match[]": "sl_odd_values", "start": base, "end": end}),
        ("/api/v1/label/region/values", {"match[]": "{region=~'e.*'}"}),
        ("/api/v1/label/team/values", {"match[]": "{job!='api',team!=''}"}),
        ("/api/v1/label/nonexistent/values", {}),
    ]
    diffs = 0
    for path, params in cases:
        q = urllib.parse.urlencode(params, doseq=True)
        want = prom_get(port, path, params)
        got = srv.get_json(path + "?" + q)[1]
        norm = (lambda d: sorted(json.dumps(x, sort_keys=True) for x in d))
        if want.get("status") != got.get("status") or norm(want.get("data") or []) != norm(got.get("data") or []):
            diffs += 1
            print(f"DIFF [sightline] {path} {params}\n    {str(got)[:300]} != {str(want)[:300]}",
                  file=sys.stderr)
    return diffs


def stop_process(proc):
    """Stops a child started by a test or benchmark (TERM, then KILL)."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()



def prom_get(port, path, params):
    url = f"http://127.0.0.1:{port}{path}?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def queries():
    """(query, kinds) pairs; kinds is a subset of {"instant", "range"}."""
    g = "sl_temperature_celsius"
    c = "sl_http_requests_total"
    h = "sl_request_duration_seconds"
    qd = "sl_queue_depth"
    qs = []
    both = ("instant", "range")
    inst = ("instant",)

    def add(q, kinds=both):
        qs.append((q, kinds))

    # Selectors and matchers.
    for sel in [g, f'{g}{{job="api"}}', f'{g}{{job!="api"}}', f'{g}{{instance=~"db-.*"}}',
                f'{g}{{instance!~"db-.*|web-1"}}', f'{{__name__=~"sl_temp.*",region="eu"}}',
                f'{g}{{job=~"a.i|w.b"}}', f'{c}{{code="500",method="GET"}}',
                f'{g}{{nope=""}}', f'{g}{{region=~"e.|"}}']:
        add(sel)
    add(f"{g}[5m]", inst)
    add(f"{c}{{job='db'}}[2m]", inst)
    add(f"{g} offset 10m")
    add(f"{g} offset -5m")
    add(f"{c}[5m] offset 1h", inst)
    add(f"{g} @ end()")
    add(f"{g} @ start()")
    add(f"rate({c}[5m] @ end())")
    # Range functions.
    for fn in ["rate", "irate", "increase", "delta", "idelta", "resets", "changes",
               "avg_over_time", "sum_over_time", "min_over_time", "max_over_time",
               "count_over_time", "last_over_time", "stddev_over_time", "stdvar_over_time",
               "present_over_time", "deriv"]:
        for rng in ["1m", "5m", "17m"]:
            add(f"{fn}({c if fn in ('rate', 'irate', 'increase', 'resets') else g}[{rng}])")
    add(f"rate({c}[5m] offset 3m)")
    add(f"rate({c}{{instance='api-4'}}[45s])")
    add(f"increase({c}{{instance=~'.*-3'}}[10m])")
    add(f"quantile_over_time(0.9, {g}[10m])")
    add(f"quantile_over_time(0, {g}[10m])")
    add(f"quantile_over_time(1.5, {g}[10m])")
    add(f"predict_linear({g}[10m], 600)")
    add(f"holt_winters({g}[10m], 0.5, 0.5)")
    add(f"absent_over_time({g}[1m])")
    add(f"absent_over_time(nonexistent{{job='x'}}[1m])")
    add(f"delta({qd}[3m])")
    add(f"changes({qd}[10m])")
    # Instant-vector functions.
    for fn in ["abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn", "round",
               "timestamp", "sort", "sort_desc", "sin", "cos", "deg", "rad"]:
        kinds = inst if fn.startswith("sort") else both
        add(f"{fn}({g}{{job='web'}})", kinds)
    add(f"round({g}, 5)")
    add(f"round({g}, 0.1)")
    add(f"clamp({g}, 20, 60)")
    add(f"clamp({g}, 60, 20)")
    add(f"clamp_min({g}, 50)")
    add(f"clamp_max({g}, 50)")
    add(f"timestamp({g} offset 1m)")
    add("time()")
    add("vector(1)")
    add("vector(time())")
    add(f"scalar({g}{{instance='api-1'}})")
    add(f"scalar({g})")
    add(f"{g} * scalar({qd}{{instance='api-2'}})")
    add(f"absent({g})")
    add(f"absent(nonexistent{{job='x',instance=~'y'}})")
    add("absent(nonexistent{job='x',job='y'})")
    add(f"label_replace({g}, 'host', '$1', 'instance', '(.*)-\\\\d+')")
    add(f"label_replace({g}, 'host', 'h-${{1}}-$2', 'instance', '([a-z]+)-(\\\\d)')")
    add(f"label_replace({g}, 'job', '', 'instance', '.*')", inst)
    add(f"label_replace({g}, 'foo', '$1', 'nosuch', '(.*)')")
    add(f"label_join({g}, 'key', '/', 'job', 'instance', 'region')")
    add(f"label_join({c}, 'x', '', 'method')")
    add("day_of_month()")
    add("hour(vector(1700000000))")
    add(f"minute({g}{{instance='api-0'}} * 1000000)")
    add("year()")
    add("days_in_month(vector(1709251200))")
    # Histograms.
    for q in ["0.5", "0.9", "0.99", "0", "1", "-1", "2"]:
        add(f"histogram_quantile({q}, rate({h}_bucket[5m]))")
    add(f"histogram_quantile(0.9, sum by (le, job) (rate({h}_bucket[10m])))")
    add(f"histogram_quantile(0.5, sum by (le) (increase({h}_bucket[15m])))")
    add(f"histogram_quantile(0.75, {h}_bucket)")
    add(f"rate({h}_sum[5m]) / rate({h}_count[5m])")
    # Aggregations.
    for agg in ["sum", "avg", "min", "max", "count", "stddev", "stdvar", "group"]:
        add(f"{agg}({g})")
        add(f"{agg} by (job) ({g})")
        add(f"{agg}({g}) without (instance)")
        add(f"{agg} by (job, code) (rate({c}[5m]))")
    add(f"sum by (__name__) ({{__name__=~'sl_.*',job='api'}})")
    add(f"sum by (nosuch) ({g})")
    add(f"topk(3, {g})", inst)
    add(f"bottomk(2, {g})", inst)
    add(f"topk by (job) (2, {g})")
    add(f"bottomk by (job) (1, rate({c}[5m]))")
    add(f"topk(scalar({qd}{{instance='api-1'}}), {g})")
    add(f"quantile(0.5, {g})")
    add(f"quantile by (job) (0.9, {g})")
    add(f"quantile(-1, {g})")
    add(f"count_values('value', {qd})")
    add(f"count_values by (job) ('v', {qd})")
    add(f"count_values without (instance) ('v', {qd})")
    add(f"sum(rate({c}[5m])) by (method)")
    add(f"avg(avg_over_time({g}[10m])) by (region)")
    # Binary operators, scalars.
    for op in ["+", "-", "*", "/", "%", "^", "atan2"]:
        add(f"{g} {op} 3")
        add(f"3 {op} {g}")
        add(f"2 {op} 3")
    for op in ["==", "!=", ">", "<", ">=", "<="]:
        add(f"{g} {op} 50")
        add(f"50 {op} {g}")
        add(f"{g} {op} bool 50")
        add(f"2 {op} bool 3")
    add("1 + 2 * 3 ^ 2 ^ 0.5 - 4 / 2 % 3")
    add("-2 ^ 2")
    add(f"-{g}")
    add(f"-(-{g})")
    add(f"+{g}")
    add(f"({g} > 50) * 2")
    add(f"{qd} == {qd}")
    add(f"{qd} != bool {qd}")
    # Vector matching.
    add(f"{g} - {g}")
    add(f"{g} / ignoring(region) {g}")
    add(f"{c} / on(job, instance, method, code) {c}")
    add(f"rate({c}[5m]) / on(job, instance) group_left sum by (job, instance) (rate({c}[5m]))")
    add(f"rate({c}[5m]) * on(instance) group_left(team, version) sl_build_info")
    add(f"sl_build_info * on(instance) group_right(team) rate({c}[5m])")
    add(f"{g} + on(instance) group_left {qd}")
    add(f"{qd} > on(job, instance) {g}")
    add(f"{qd} > bool on(job, instance) {g}")
    add(f"sum by (job) ({g}) / on(job) group_right sum by (job, instance) ({g})")
    add(f"{g} + {qd}")  # no common label sets
    add(f"{c} + on(job) {c}")  # many-to-many: error
    add(f"{g} * on(job) group_left {qd}")  # duplicates on the one side: error
    # Set operators.
    add(f"{g} and {g}{{region='eu'}}")
    add(f"{g} and on(job) {qd}{{instance='api-1'}}")
    add(f"{g} or {qd}")
    add(f"{g}{{job='api'}} or on(instance) {g}")
    add(f"{g} unless {g}{{region='us'}}")
    add(f"{g} unless ignoring(region) {qd}")
    add(f"{c} and {c} > 500 or {g} < 20")
    add(f"rate({c}[5m]) > 0.5 unless on(instance) sl_build_info{{team='red'}}")
    # Subqueries.
    add(f"max_over_time(rate({c}[5m])[30m:1m])")
    add(f"avg_over_time({g}[10m:])")
    add(f"sum_over_time(sum({qd})[5m:30s] offset 5m)")
    add(f"rate(sum by (job) ({c})[10m:1m])")
    # Staleness / gaps.
    add(f"{g}{{instance=~'.*-(1|5|9)'}}")
    add(f"count({g})")
    add(f"count_over_time({g}{{instance='api-1'}}[5m])")
    add(f"last_over_time({g}{{instance='api-1'}}[15m])")
    # NaN and infinities.
    o = "sl_odd_values"
    for q in [o, f"sort({o})", f"sort_desc({o})", f"topk(2, {o})", f"bottomk(2, {o})",
              f"max({o})", f"min({o})", f"sum({o})", f"avg({o})", f"count_values('v', {o})",
              f"{o} > 5", f"{o} == bool {o}", f"{o} != {o}", f"quantile(0.5, {o})",
              f"max_over_time({o}[5m])", f"min_over_time({o}[5m])", f"avg_over_time({o}[5m])",
              f"changes({o}[10m])", f"stddev({o})", f"clamp({o}, 1, 5)", f"round({o})",
              f"{o} / 0", f"-{o} % 3", f"sgn({o})", f"histogram_quantile(0.5, {o})"]:
        add(q, inst if q.startswith(("sort", "topk", "bottomk")) else both)
    # Nesting and modifiers together.
    add(f"sum by (job) (rate({c}[5m] @ end() offset 10m))")
    add(f"max_over_time(sum by (job) (rate({c}[2m]))[20m:2m] @ start())")
    add(f"avg_over_time(({g} > 40)[15m:45s] offset 1m)")
    add(f"count(count by (job) ({g}))")
    add(f"sum(sum by (job, instance) ({c}) / on(job, instance) group_left count by (job, instance) ({c}))")
    add(f"(({g}))")
    add(f"{g} offset 1h30m")
    add(f"irate({c}[1m])[5m:]", inst)
    add(f"resets({c}[30m:1m])")
    # Errors.
    add(f"rate({g})")
    add("sum(")
    add(f"{g}{{a=~'('}}")
    add(f"{g}[5m]", ("range",))
    add(f"label_replace({g}, '1bad', '$1', 'instance', '(.*)')")
    add(f"label_replace({g}, 'x', '$1', 'instance', '(')")
    add(f"-{{__name__=~'sl_temperature_celsius|sl_queue_depth'}}")
    add(f"rate({{__name__=~'sl_temperature_celsius|sl_queue_depth'}}[5m])")
    add(f"{g} > on(job) bool {qd}")
    add("'a string'", inst)
    add("1.5e3", both)
    add("Inf", inst)
    return qs


def close(a, b):
    if a == b:
        return True
    fa, fb = float(a), float(b)
    if math.isnan(fa) and math.isnan(fb):
        return True
    if math.isinf(fa) or math.isinf(fb):
        return fa == fb
    return abs(fa - fb) <= REL_TOL * max(1.0, abs(fa), abs(fb))


def key(metric):
    return tuple(sorted(metric.items()))


def compare(query, want, got):
    """Returns None when equal, else a description of the first difference."""
    if want.get("status") != got.get("status"):
        return f"status {got.get('status')} ({got.get('error')}) != prometheus {want.get('status')} ({want.get('error')})"
    if want["status"] != "success":
        if want.get("errorType") != got.get("errorType"):
            return f"errorType {got.get('errorType')} != {want.get('errorType')}"
        return None
    wd, gd = want["data"], got["data"]
    if wd["resultType"] != gd["resultType"]:
        return f"resultType {gd['resultType']} != {wd['resultType']}"
    rt = wd["resultType"]
    if rt in ("scalar", "string"):
        if not close(float(wd["result"][0]), float(gd["result"][0])):
            return f"time {gd['result'][0]} != {wd['result'][0]}"
        if rt == "scalar" and not close(wd["result"][1], gd["result"][1]):
            return f"value {gd['result'][1]} != {wd['result'][1]}"
        if rt == "string" and wd["result"][1] != gd["result"][1]:
            return f"string {gd['result'][1]!r} != {wd['result'][1]!r}"
        return None
    ws = {key(s["metric"]): s for s in wd["result"]}
    gs = {key(s["metric"]): s for s in gd["result"]}
    if len(ws) != len(wd["result"]) or len(gs) != len(gd["result"]):
        return "duplicate series in a result"
    missing = set(ws) - set(gs)
    extra = set(gs) - set(ws)
    if missing or extra:
        return (f"series differ: missing {sorted(missing)[:3]} ({len(missing)}), "
                f"extra {sorted(extra)[:3]} ({len(extra)})")
    for k, w in ws.items():
        g = gs[k]
        wp = [w["value"]] if rt == "vector" else w["values"]
        gp = [g["value"]] if rt == "vector" else g["values"]
        if len(wp) != len(gp):
            wt = [p[0] for p in wp]
            gt = [p[0] for p in gp]
            return f"{dict(k)}: {len(gp)} points != {len(wp)}; only prometheus: {sorted(set(wt) - set(gt))[:5]}, only ours: {sorted(set(gt) - set(wt))[:5]}"
        for (wt, wv), (gt, gv) in zip(wp, gp):
            if not close(wt, gt) or not close(wv, gv):
                return f"{dict(k)} at {wt}: ({gt}, {gv}) != ({wt}, {wv})"
    if rt == "vector" and (query.startswith("sort") or query.startswith("topk(") or
                           query.startswith("bottomk(")):
        wo = [float(s["value"][1]) for s in wd["result"]]
        go = [float(s["value"][1]) for s in gd["result"]]
        if len(wo) != len(go) or not all(close(a, b) for a, b in zip(wo, go)):
            return f"order {go[:5]} != {wo[:5]}"
    return None


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    tool = sys.argv[1]
    sightline_bin = sys.argv[2] if len(sys.argv) > 2 else None
    prom, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prom or not promtool:
        print("SKIP: prometheus and promtool are not installed (scripts/setup.sh installs them)")
        return 77
    tmp = tempfile.mkdtemp(prefix="sightline-promql-diff-")
    proc = None
    srv = None
    try:
        # Recent data: Prometheus would drop blocks older than its retention.
        base = (int(time.time()) // 3600 - 3) * 3600
        end = base + HOURS * 3600
        fams = build_data(base)
        om = os.path.join(tmp, "data.om")
        nsamples = write_openmetrics(fams, om)
        tsdb = os.path.join(tmp, "tsdb")
        r = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", om, tsdb],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            print("promtool failed:", r.stdout[-2000:], r.stderr[-2000:], file=sys.stderr)
            return 1
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  evaluation_interval: 1m\nscrape_configs: []\n")
        port = free_port()
        log = open(os.path.join(tmp, "prometheus.log"), "wb")
        proc = subprocess.Popen([prom, f"--config.file={cfg}", f"--storage.tsdb.path={tsdb}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=log)
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as rr:
                    if rr.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                print("prometheus did not become ready", file=sys.stderr)
                return 1
            time.sleep(0.2)

        # Evaluation times: inside the data, around the gap, after the end
        # (inside and beyond the lookback), with and without millisecond parts.
        times = [base + 1800, base + 3000 + 400.5, end - 7.25, end + 240, end + 400]
        ranges = [(base + 600, base + 4200, 60), (base + 2700, base + 4000, 37.5),
                  (end - 900, end + 420, 15)]
        cases = []
        for q, kinds in queries():
            if "instant" in kinds:
                for t in times:
                    cases.append((q, "instant", (t,)))
            if "range" in kinds:
                for rg in ranges:
                    cases.append((q, "range", rg))

        lines = []
        for q, kind, args in cases:
            if kind == "instant":
                lines.append(f"instant {round(args[0] * 1000)} {q}")
            else:
                s, e, st = args
                lines.append(f"range {round(s * 1000)} {round(e * 1000)} {round(st * 1000)} {q}")
        r = subprocess.run([tool, om], input="\n".join(lines) + "\n", capture_output=True,
                           text=True, timeout=600)
        if r.returncode != 0:
            print("driver failed:", r.stderr[-2000:], file=sys.stderr)
            return 1
        ours = [json.loads(x) for x in r.stdout.splitlines()]
        if len(ours) != len(cases):
            print(f"driver answered {len(ours)} of {len(cases)} queries", file=sys.stderr)
            return 1

        if sightline_bin:
            srv = sightline_start(sightline_bin, fams)
            if srv is None:
                print("NOT RUN: the Sightline-over-OTLP comparison (this build's collector has "
                      "no /v1/metrics route yet); the engine comparison runs")

        failures = 0
        nonempty = 0
        for (q, kind, args), got in zip(cases, ours):
            if kind == "instant":
                params = {"query": q, "time": f"{args[0]:.3f}"}
                path = "/api/v1/query"
            else:
                s, e, st = args
                params = {"query": q, "start": f"{s:.3f}", "end": f"{e:.3f}", "step": st}
                path = "/api/v1/query_range"
            want = prom_get(port, path, params)
            if want.get("status") == "success" and want["data"]["result"]:
                nonempty += 1
            answers = [("engine", got)]
            if srv is not None:
                answers.append(("sightline", sightline_get(srv, path, params)))
            for who, ans in answers:
                diff = compare(q, want, ans)
                if diff is not None:
                    failures += 1
                    if failures <= 40:
                        print(f"DIFF [{who}] {kind} {args} {q}\n    {diff}", file=sys.stderr)
        if srv is not None:
            failures += compare_metadata_apis(port, srv, base, end)
        who = "the engine (in memory)" + (" and sightline (OTLP in, HTTP API out)" if srv else "")
        print(f"compared with Prometheus: {who}")
        print(f"{len(cases)} evaluations of {len(queries())} queries over {nsamples} samples "
              f"in {sum(len(v[1]) if v[0] != 'histogram' else len(v[1][1]) * 9 for v in fams.values())} series: "
              f"{failures} differ from Prometheus; {nonempty} had data")
        if nonempty < len(cases) // 2:
            # A test that compares empty answers proves nothing.
            print("FAIL: Prometheus returned data for too few queries", file=sys.stderr)
            return 1
        return 1 if failures else 0
    finally:
        if srv is not None:
            srv.cleanup()
        stop_process(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
