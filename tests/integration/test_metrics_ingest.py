"""Integration test of metrics ingest: every OTLP metric type over /v1/metrics
as protobuf (encoded here by hand) and OTLP/JSON (the specification's example),
partial success for invalid points, stale markers, delta accumulation (also
across a restart), tenants, span-derived RED metrics; results are read back
through the Prometheus API (/api/v1/query, /series, /labels, /metadata) and
the storage dump (`sightline debug series`).

usage: test_metrics_ingest.py SIGHTLINE_BINARY OTLP_DATA_DIR
"""

import gzip
import json
import os
import struct
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, check_eq, finish, rand_hex, request, span  # noqa: E402

# --- a minimal protobuf writer (field numbers from the OTLP metrics proto) ----


def varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(n, v):
    return varint(n << 3) + varint(v)


def f_sint(n, v):
    return f_varint(n, (v << 1) ^ (v >> 63))


def f_fixed64(n, v):
    return varint(n << 3 | 1) + struct.pack("<Q", v)


def f_sfixed64(n, v):
    return varint(n << 3 | 1) + struct.pack("<q", v)


def f_double(n, v):
    return varint(n << 3 | 1) + struct.pack("<d", v)


def f_bytes(n, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(n << 3 | 2) + varint(len(b)) + b


def packed_fixed64(n, vals):
    return f_bytes(n, b"".join(struct.pack("<Q", v) for v in vals))


def packed_double(n, vals):
    return f_bytes(n, b"".join(struct.pack("<d", v) for v in vals))


def packed_varint(n, vals):
    return f_bytes(n, b"".join(varint(v) for v in vals))


def kv(k, v):
    return f_bytes(1, k) + f_bytes(2, f_bytes(1, v))  # KeyValue{key, AnyValue{string_value}}


def num_point(t_ns, value=None, attrs=(), flags=0, as_int=None, exemplar=None):
    b = b"".join(f_bytes(7, kv(k, v)) for k, v in attrs) + f_fixed64(3, t_ns)
    if value is not None:
        b += f_double(4, value)
    if as_int is not None:
        b += f_sfixed64(6, as_int)
    if flags:
        b += f_varint(8, flags)
    if exemplar:
        b += f_bytes(5, exemplar)
    return b


def metric(name, unit="", desc="", gauge=None, sum_=None, hist=None, ehist=None, summary=None):
    b = f_bytes(1, name) + f_bytes(2, desc) + f_bytes(3, unit)
    if gauge is not None:
        b += f_bytes(5, b"".join(f_bytes(1, p) for p in gauge))
    if sum_ is not None:
        pts, temporality, mono = sum_
        s = b"".join(f_bytes(1, p) for p in pts)
        if temporality:
            s += f_varint(2, temporality)
        s += f_varint(3, 1 if mono else 0)
        b += f_bytes(7, s)
    if hist is not None:
        pts, temporality = hist
        b += f_bytes(9, b"".join(f_bytes(1, p) for p in pts) + f_varint(2, temporality))
    if ehist is not None:
        pts, temporality = ehist
        b += f_bytes(10, b"".join(f_bytes(1, p) for p in pts) + f_varint(2, temporality))
    if summary is not None:
        b += f_bytes(11, b"".join(f_bytes(1, p) for p in summary))
    return b


def hist_point(t_ns, count, total, bounds, counts, attrs=()):
    return (b"".join(f_bytes(9, kv(k, v)) for k, v in attrs) + f_fixed64(3, t_ns) +
            f_fixed64(4, count) + f_double(5, total) + packed_fixed64(6, counts) +
            packed_double(7, bounds))


def ehist_point(t_ns, count, total, scale, zero, pos_off, pos):
    buckets = f_sint(1, pos_off) + packed_varint(2, pos)
    return (f_fixed64(3, t_ns) + f_fixed64(4, count) + f_double(5, total) + f_sint(6, scale) +
            f_fixed64(7, zero) + f_bytes(8, buckets))


def summary_point(t_ns, count, total, quantiles):
    q = b"".join(f_bytes(6, f_double(1, a) + f_double(2, v)) for a, v in quantiles)
    return f_fixed64(3, t_ns) + f_fixed64(4, count) + f_double(5, total) + q


def export(metrics, service="shop", instance="i-1", extra=(), scope=("lib", "1.2")):
    res = f_bytes(1, kv("service.name", service)) + f_bytes(1, kv("service.instance.id", instance))
    res += b"".join(f_bytes(1, kv(k, v)) for k, v in extra)
    sm = f_bytes(1, f_bytes(1, scope[0]) + f_bytes(2, scope[1])) if scope else b""
    sm += b"".join(f_bytes(2, m) for m in metrics)
    rm = f_bytes(1, res) + f_bytes(2, sm)
    return f_bytes(1, rm)


# --- helpers -------------------------------------------------------------------------


def post_pb(srv, body, tenant=None, gz=False):
    headers = {"X-Scope-OrgID": tenant} if tenant else {}
    if gz:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return srv.post("/v1/metrics", body, "application/x-protobuf", headers=headers)


def query(srv, q, t, tenant=None):
    path = "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": t})
    st, body = srv.get_json(path, headers={"X-Scope-OrgID": tenant} if tenant else None)
    check_eq(st, 200, f"query {q}")
    return body.get("data", {}).get("result", []) if isinstance(body, dict) else []


def values(result):
    """{sorted label items (without __name__): value float}"""
    out = {}
    for r in result:
        labels = tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__"))
        out[labels] = float(r["value"][1])
    return out


def dump(binary, srv, *matchers, tenant="default"):
    out = subprocess.run([binary, "debug", "series", "--data-dir",
                          os.path.join(srv.data_dir, "data"), "--tenant", tenant, *matchers],
                         capture_output=True, text=True, timeout=60)
    check_eq(out.returncode, 0, "debug series exit code: " + out.stderr)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def main():
    binary, otlp_dir = sys.argv[1], sys.argv[2]
    srv = Server(binary, ["--cut-interval", "200ms"]).start()
    try:
        run(binary, otlp_dir, srv)
        # Delta accumulation continues after a restart (the running totals are
        # on disk); so does everything else stored.
        srv.stop()
        srv.start()
        base = T0 + 120
        st, _, _ = post_pb(srv, export([metric("jobs.done", sum_=([num_point(base * 10**9, 4.0)],
                                                                 1, True))]))
        check_eq(st, 200, "delta after restart")
        r = values(query(srv, "jobs_done_total", base))
        check_eq(list(r.values()), [14.0], "delta total continues after a restart")
    finally:
        srv.cleanup()
    finish()


T0 = int(time.time()) - 600  # seconds; samples ten minutes ago


def run(binary, otlp_dir, srv):
    t0 = T0 * 10**9
    ex = f_fixed64(2, t0) + f_double(3, 0.3) + f_bytes(5, bytes.fromhex(rand_hex(16))) + \
        f_bytes(4, bytes.fromhex(rand_hex(8)))
    metrics = [
        metric("process.memory.usage", "By", "resident memory",
               gauge=[num_point(t0, as_int=1024, attrs=[("state", "used")])]),
        metric("http.server.requests", "{request}", "requests served",
               sum_=([num_point(t0, 7.0, attrs=[("http.method", "GET")], exemplar=ex)], 2, True)),
        metric("queue.depth", "1", sum_=([num_point(t0, 3.0)], 2, False)),
        metric("jobs.done", "", sum_=([num_point(t0, 5.0)], 1, True)),
        metric("http.server.duration", "s", "latency",
               hist=([hist_point(t0, 6, 2.5, [0.1, 1.0], [1, 2, 3], attrs=[("route", "/a")])], 2)),
        metric("payload.size", "By", ehist=([ehist_point(t0, 4, 20.0, 0, 1, 1, [1, 2])], 2)),
        metric("rpc.latency", "ms", summary=[summary_point(t0, 10, 55.0, [(0.5, 4.0),
                                                                            (0.99, 9.5)])]),
        # invalid: a sum without temporality; a histogram whose counts do not
        # match its bounds
        metric("bad.sum", sum_=([num_point(t0, 1.0)], 0, True)),
        metric("bad.hist", "s", hist=([hist_point(t0, 3, 1.0, [1.0, 2.0], [1, 2])], 2)),
    ]
    st, hdrs, body = post_pb(srv, export(metrics, extra=[("host.name", "node-7")]))
    check_eq(st, 200, "protobuf export accepted")
    # ExportMetricsServiceResponse{partial_success{rejected_data_points=2, error_message}}
    check(body.startswith(b"\x0a") and b"\x08\x02" in body, f"partial success in {body!r}")

    # Partial success is reported in JSON too.
    bad = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "x", "sum": {"dataPoints": [{"timeUnixNano": str(t0), "asDouble": 1}]}}]}]}]}
    st, _, body = srv.post("/v1/metrics", json.dumps(bad).encode(), "application/json")
    check_eq(st, 200, "JSON export with an invalid point")
    resp = json.loads(body)
    check_eq(str(resp.get("partialSuccess", {}).get("rejectedDataPoints")), "1",
             "rejectedDataPoints")
    check("temporality" in resp.get("partialSuccess", {}).get("errorMessage", ""),
          f"error message names the problem: {resp}")

    # A second delta and a gzip body.
    st, _, _ = post_pb(srv, export([metric("jobs.done", sum_=([num_point(t0 + 60 * 10**9, 5.0)],
                                                              1, True))]), gz=True)
    check_eq(st, 200, "gzip export")

    # Everything is visible at once (from the WAL) and after cuts.
    for phase in ("wal", "cut"):
        if phase == "cut":
            time.sleep(1.5)
        # Prometheus's OTLP receiver: job and instance from the resource, no
        # scope labels; ours: service_name beside job.
        inst = (("instance", "i-1"), ("job", "shop"), ("service_name", "shop"))
        r = values(query(srv, "process_memory_usage_bytes", T0))
        check_eq(r, {inst + (("state", "used"),): 1024.0}, f"{phase}: gauge")
        r = values(query(srv, "http_server_requests_total", T0))
        check_eq(r, {tuple(sorted(inst + (("http_method", "GET"),))): 7.0}, f"{phase}: counter")
        r = values(query(srv, "queue_depth", T0))
        check_eq(list(r.values()), [3.0],
                 f"{phase}: non-monotonic sum is a gauge (no _ratio: not a Gauge)")
        r = values(query(srv, "jobs_done_total", T0 + 60))
        check_eq(list(r.values()), [10.0], f"{phase}: delta sums accumulate")
        r = values(query(srv, "http_server_duration_seconds_bucket", T0))
        got = {dict(k)["le"]: v for k, v in r.items()}
        check_eq(got, {"0.1": 1.0, "1": 3.0, "+Inf": 6.0}, f"{phase}: histogram buckets")
        r = values(query(srv, "http_server_duration_seconds_count", T0))
        check_eq(list(r.values()), [6.0], f"{phase}: histogram count")
        r = values(query(srv, "http_server_duration_seconds_sum", T0))
        check_eq(list(r.values()), [2.5], f"{phase}: histogram sum")
        r = values(query(srv, "histogram_quantile(0.5, http_server_duration_seconds_bucket)", T0))
        check(len(r) == 1, f"{phase}: histogram_quantile over the buckets")
        r = values(query(srv, "payload_size_bytes_bucket", T0))
        got = {dict(k)["le"]: v for k, v in r.items()}
        check_eq(got, {"0": 1.0, "4": 2.0, "8": 4.0, "+Inf": 4.0},
                 f"{phase}: exponential histogram as classic buckets")
        r = values(query(srv, "rpc_latency_milliseconds", T0))
        got = {dict(k)["quantile"]: v for k, v in r.items()}
        check_eq(got, {"0.5": 4.0, "0.99": 9.5}, f"{phase}: summary quantiles")
        r = values(query(srv, "rpc_latency_milliseconds_count", T0))
        check_eq(list(r.values()), [10.0], f"{phase}: summary count")
        r = values(query(srv, "target_info", T0))
        check_eq(r, {(("host_name", "node-7"), ("instance", "i-1"), ("job", "shop"),
                      ("service_name", "shop")): 1.0},
                 f"{phase}: target_info")
        r = values(query(srv, "bad_sum_total", T0))
        check_eq(r, {}, f"{phase}: rejected points are not stored")

    st, body = srv.get_json("/api/v1/metadata")
    meta = body.get("data", {}) if isinstance(body, dict) else {}
    check_eq(meta.get("http_server_duration_seconds", [{}])[0].get("type"), "histogram",
             "metadata: histogram type")
    check_eq(meta.get("http_server_requests_total", [{}])[0].get("help"), "requests served",
             "metadata: help from the description")
    check_eq(meta.get("rpc_latency_milliseconds", [{}])[0].get("type"), "summary",
             "metadata: summary")
    st, body = srv.get_json("/api/v1/label/job/values")
    check("shop" in (body.get("data") or []), f"label values: {body}")

    # Stale marker: NO_RECORDED_VALUE ends the series for PromQL.
    st, _, _ = post_pb(srv, export([metric("process.memory.usage", "By", gauge=[
        num_point(t0 + 30 * 10**9, attrs=[("state", "used")], flags=1)])]))
    check_eq(st, 200, "stale export")
    r = values(query(srv, "process_memory_usage_bytes", T0 + 40))
    check_eq(r, {}, "a stale marker hides the series")
    series = dump(binary, srv, "__name__=process_memory_usage_bytes")
    check_eq(len(series), 1, "dump: one gauge series")
    check(series and series[0]["samples"][-1][1] == "stale", f"dump shows the marker: {series}")

    # Out of order: an older sample than the head is dropped, a duplicate too.
    st, _, _ = post_pb(srv, export([metric("process.memory.usage", "By", gauge=[
        num_point(t0 - 30 * 10**9, 5.0, attrs=[("state", "used")]),
        num_point(t0, as_int=1024, attrs=[("state", "used")])])]))
    check_eq(st, 200, "out-of-order export is accepted")
    time.sleep(1.0)
    series = dump(binary, srv, "__name__=process_memory_usage_bytes")
    check_eq(len(series[0]["samples"]) if series else 0, 2, "out-of-order samples are dropped")

    # Tenants.
    st, _, _ = post_pb(srv, export([metric("tenant.only", gauge=[num_point(t0, 1.0)])]),
                       tenant="acme")
    check_eq(st, 200, "tenant export")
    check_eq(len(query(srv, "tenant_only", T0, tenant="acme")), 1, "tenant sees its data")
    check_eq(len(query(srv, "tenant_only", T0)), 0, "other tenants do not")

    # The specification's example payload over OTLP/JSON.
    with open(os.path.join(otlp_dir, "metrics.json"), "rb") as f:
        st, _, body = srv.post("/v1/metrics", f.read(), "application/json",
                               headers={"X-Scope-OrgID": "spec"})
    check_eq(st, 200, "spec example accepted")
    check_eq(json.loads(body), {}, "no partial success for the spec example")
    st, body = srv.get_json("/api/v1/series?" + urllib.parse.urlencode(
        {"match[]": '{job="my.service"}', "start": "1544712600", "end": "1544712700"}),
        headers={"X-Scope-OrgID": "spec"})
    names = sorted({s["__name__"] for s in body.get("data", [])}) if isinstance(body, dict) else []
    check_eq(names, ["my_counter_total", "my_exponential_histogram_bucket",
                     "my_exponential_histogram_count", "my_exponential_histogram_sum",
                     "my_gauge_ratio", "my_histogram_bucket", "my_histogram_count",
                     "my_histogram_sum"], "spec example series")

    # Span-derived RED metrics.
    tid = rand_hex(16)
    now = time.time_ns()
    spans = [span(tid, rand_hex(8), "GET /cart", start_ns=now - 10**9, dur_ns=3_000_000),
             span(tid, rand_hex(8), "GET /cart", start_ns=now - 10**9, dur_ns=300_000_000,
                  status={"code": 2})]
    st, _, _ = srv.post_json(request("cart", spans))
    check_eq(st, 200, "trace export")
    t_now = time.time() + 1
    r = values(query(srv, 'traces_span_metrics_calls_total{service_name="cart"}', t_now))
    got = {dict(k)["status_code"]: v for k, v in r.items()}
    check_eq(got, {"STATUS_CODE_UNSET": 1.0, "STATUS_CODE_ERROR": 1.0}, "span calls by status")
    check(all(dict(k)["span_kind"] == "SPAN_KIND_SERVER" and dict(k)["job"] == "cart"
              for k in r), f"span metric labels: {r}")
    r = values(query(srv, 'sum by (le) (traces_span_metrics_duration_seconds_bucket'
                          '{job="cart"})', t_now))
    got = {dict(k)["le"]: v for k, v in r.items()}
    check(got.get("0.004") == 1.0 and got.get("0.4") == 2.0 and got.get("+Inf") == 2.0,
          f"span duration buckets: {got}")
    st, _, _ = srv.post_json(request("cart", spans[:1]))
    time.sleep(1.0)
    r = values(query(srv, 'sum(traces_span_metrics_calls_total{job="cart"})', time.time() + 1))
    check_eq(list(r.values()), [3.0], "span calls accumulate across requests and cuts")

    # OTLP series join the span-derived ones on service_name (health views
    # and RED dashboards): an OTLP gauge of service cart, per call.
    st, _, _ = post_pb(srv, export([metric("cart.items", gauge=[num_point(now, 6.0)])],
                                   service="cart", instance="cart-1"))
    check_eq(st, 200, "cart gauge export")
    r = values(query(srv, 'sum by (service_name) (traces_span_metrics_calls_total) * '
                          'on (service_name) group_left sum by (service_name) (cart_items)',
                     time.time() + 1))
    check_eq(r, {(("service_name", "cart"),): 18.0}, "OTLP and span metrics join on service_name")

    # Log counts by service and severity.
    logs = {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "cart"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": str(now), "severityNumber": 9, "body": {"stringValue": "a"}},
            {"timeUnixNano": str(now), "severityNumber": 17, "body": {"stringValue": "b"}},
            {"timeUnixNano": str(now), "severityNumber": 18, "body": {"stringValue": "c"}}]}]}]}
    st, _, _ = srv.post("/v1/logs", json.dumps(logs).encode(), "application/json")
    check_eq(st, 200, "logs export")
    r = values(query(srv, 'logs_records_total{service_name="cart"}', time.time() + 1))
    got = {dict(k)["severity"]: v for k, v in r.items()}
    check_eq(got, {"info": 1.0, "error": 2.0}, "log counts by severity")


if __name__ == "__main__":
    main()
