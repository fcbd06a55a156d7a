"""sdk-c against the real binary: an application (sdk-it-driver) configured
only through OTEL_* variables exports a trace over OTLP/HTTP protobuf, then
over OTLP/JSON with gzip and a tenant header; every span, attribute type,
event, link, status and resource attribute is checked through the Jaeger
API; with bearer tokens configured, the token goes in
OTEL_EXPORTER_OTLP_HEADERS (a wrong one is a 401: counted, not retried);
with mutual TLS on ingest, the CA and client certificate settings are used
(without a client certificate every export fails and is counted).
The trace's logs are checked through /api/traces/{id}/logs and /api/logs,
the metrics (counter, histogram, gauge, observable gauge) through the
Prometheus API with the OTel-to-Prometheus names.

usage: test_sdk_traces.py SIGHTLINE_BINARY SDK_IT_DRIVER"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

from harness import Server, check, check_eq, finish, rand_hex

binary, driver = sys.argv[1], sys.argv[2]


def run_driver(srv, extra_env, scheme="http"):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"OTEL_SERVICE_NAME": "sdk-it",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,team=a%20b",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"{scheme}://127.0.0.1:{srv.otlp_port}",
                "OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_METRIC_EXPORT_INTERVAL": "60000"})
    env.update(extra_env)
    p = subprocess.run([driver, "emit"], env=env, capture_output=True, timeout=120)
    check_eq(p.returncode, 0, "driver exit status (stderr: %s)" % p.stderr.decode()[-2000:])
    lines = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
    check_eq([l["phase"] for l in lines], ["flush1", "flush2"], "driver phases")
    return lines


def tags_of(x):
    return {t["key"]: t for t in x.get("tags", [])}


def check_trace(srv, out, headers=None, label=""):
    first = out[0]
    st, doc = srv.get_json(f"/api/traces/{first['trace_id']}", headers=headers)
    check_eq(st, 200, f"{label}: trace found")
    if st != 200:
        return
    t = doc["data"][0]
    spans = {s["spanID"]: s for s in t["spans"]}
    check_eq(sorted(s["operationName"] for s in t["spans"]),
             ["GET /checkout", "POST /charge", "audit"], f"{label}: span names")
    root, child, linked = (spans.get(first["root"], {}), spans.get(first["child"], {}),
                           spans.get(first["linked"], {}))
    check_eq(root.get("references"), [], f"{label}: root has no parent")
    check_eq(child.get("references"), [{"refType": "CHILD_OF", "traceID": first["trace_id"],
                                        "spanID": first["root"]}], f"{label}: child's parent")
    check_eq(linked.get("references"),
             [{"refType": "CHILD_OF", "traceID": first["trace_id"], "spanID": first["root"]},
              {"refType": "FOLLOWS_FROM", "traceID": first["trace_id"],
               "spanID": first["child"]}], f"{label}: link as FOLLOWS_FROM")
    rt = tags_of(root)
    check_eq((rt.get("http.request.method", {}).get("type"),
              rt.get("http.request.method", {}).get("value")), ("string", "GET"),
             f"{label}: string attribute")
    check_eq((rt.get("http.response.status_code", {}).get("type"),
              rt.get("http.response.status_code", {}).get("value")), ("int64", 200),
             f"{label}: int attribute")
    check_eq(rt.get("ratio", {}).get("value"), 0.25, f"{label}: double attribute")
    check_eq(rt.get("retry", {}).get("value"), True, f"{label}: bool attribute")
    check_eq(rt.get("blob", {}).get("value"), "AAEC", f"{label}: bytes attribute")
    check_eq(rt.get("list", {}).get("value"), '["a",2]', f"{label}: array attribute")
    check_eq(rt.get("span.kind", {}).get("value"), "server", f"{label}: server kind")
    check_eq(rt.get("otel.scope.name", {}).get("value"), "sdk-it", f"{label}: scope")
    check_eq(rt.get("otel.scope.version", {}).get("value"), "1.0.0", f"{label}: scope version")
    ev = root.get("logs", [{}])[0].get("fields", [])
    check_eq([(f["key"], f["value"]) for f in ev], [("event", "cache miss"), ("cache.key", "u:1")],
             f"{label}: span event")
    ct = tags_of(child)
    check_eq(ct.get("span.kind", {}).get("value"), "client", f"{label}: client kind")
    check_eq(ct.get("error", {}).get("value"), True, f"{label}: error status")
    check_eq(ct.get("otel.status_description", {}).get("value"), "card declined",
             f"{label}: status message")
    exc = {f["key"]: f["value"] for f in child.get("logs", [{}])[0].get("fields", [])}
    check_eq(exc.get("exception.type"), "CardDeclined", f"{label}: exception event")
    check(child.get("startTime", 0) >= root.get("startTime", 1), f"{label}: child starts later")
    proc = t["processes"][root.get("processID", "p1")]
    check_eq(proc["serviceName"], "sdk-it", f"{label}: service.name from OTEL_SERVICE_NAME")
    pt = tags_of(proc)
    check_eq(pt.get("deployment.environment", {}).get("value"), "test",
             f"{label}: OTEL_RESOURCE_ATTRIBUTES")
    check_eq(pt.get("team", {}).get("value"), "a b", f"{label}: percent-decoded resource value")
    for k in ("service.instance.id", "host.name", "process.pid", "telemetry.sdk.name",
              "telemetry.sdk.language", "telemetry.sdk.version"):
        check(k in pt, f"{label}: resource attribute {k} detected")
    st, doc = srv.get_json(f"/api/traces/{out[1]['trace_id']}", headers=headers)
    check_eq(st, 200, f"{label}: second trace (second request) found")


def check_logs(srv, out, headers, label):
    """The trace's two log records through /api/traces/{id}/logs and /api/logs."""
    first = out[0]
    st, doc = srv.get_json(f"/api/traces/{first['trace_id']}/logs", headers=headers)
    check_eq(st, 200, f"{label}: the trace's logs")
    recs = (doc.get("data") or []) if st == 200 else []
    check_eq([(r["severity_number"], r["severity_text"], r["body"]) for r in recs],
             [(9, "INFO", "checkout started"), (17, "ERROR", "charge failed")],
             f"{label}: log severities and bodies")
    if len(recs) == 2:
        check_eq([r["span_id"] for r in recs], [first["root"], first["child"]],
                 f"{label}: each log carries its active span")
        check_eq(recs[0]["attributes"], {"user.id": "u-7"}, f"{label}: log attributes")
        check_eq(recs[0]["service"], "sdk-it", f"{label}: log service")
        check_eq(recs[0]["scope"], {"name": "sdk-it", "version": "1.0.0"}, f"{label}: log scope")
        check_eq(recs[0]["resource"].get("team"), "a b", f"{label}: log resource")
        check_eq(recs[0]["flags"], 1, f"{label}: sampled flag")
    st, doc = srv.get_json(f"/api/logs?service=sdk-it&trace_id={first['trace_id']}"
                           "&severity=ERROR", headers=headers)
    check_eq([r.get("body") for r in (doc.get("data") or [])], ["charge failed"],
             f"{label}: /api/logs by service, trace and minimum severity")


def prom(srv, query, headers):
    st, doc = srv.get_json("/api/v1/query?" + urllib.parse.urlencode({"query": query}),
                           headers=headers)
    check_eq(st, 200, f"PromQL {query}")
    return {tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")): r["value"][1]
            for r in (doc.get("data") or {}).get("result", [])}


def check_metrics(srv, headers, label):
    """The driver's instruments through the Prometheus API (OTel -> Prometheus names)."""
    scope = (("job", "sdk-it"), ("service_name", "sdk-it"))

    def only(res, what):
        vals = list(res.values())
        check_eq(len(vals), 1, f"{label}: one series for {what}")
        return (list(res.keys())[0], vals[0]) if vals else ((), None)

    labels, v = only(prom(srv, 'it_requests_total{job="sdk-it"}', headers), "the counter")
    check_eq(v, "5", f"{label}: counter value (monotonic sum -> _total)")
    check(set(scope) | {("route", "/checkout")} <= set(labels), f"{label}: counter labels {labels}")
    _, v = only(prom(srv, 'it_temperature{job="sdk-it"}', headers), "the gauge")
    check_eq(v, "21.5", f"{label}: gauge")
    labels, v = only(prom(srv, 'it_queue_depth{job="sdk-it"}', headers), "the observable gauge")
    check_eq((v, dict(labels).get("queue")), ("42", "jobs"), f"{label}: observable gauge")
    _, v = only(prom(srv, 'it_latency_milliseconds_count{job="sdk-it"}', headers), "count")
    check_eq(v, "3", f"{label}: histogram count")
    _, v = only(prom(srv, 'it_latency_milliseconds_sum{job="sdk-it"}', headers), "sum")
    check_eq(v, "333", f"{label}: histogram sum")
    _, v = only(prom(srv, 'it_latency_milliseconds_bucket{job="sdk-it",le="+Inf"}', headers),
                "+Inf bucket")
    check_eq(v, "3", f"{label}: histogram +Inf bucket")
    _, v = only(prom(srv, 'it_latency_milliseconds_bucket{job="sdk-it",le="5"}', headers),
                "le=5 bucket")
    check_eq(v, "1", f"{label}: histogram bucket le=5 (the value 3)")


def check_stats(out, label):
    s = out[1]["stats"]
    check_eq(s["spans_exported"], 4, f"{label}: spans acknowledged")
    check_eq(s["spans_dropped"] + s["spans_export_failed"], 0, f"{label}: no span lost")
    check_eq((s["logs_exported"], s["logs_export_failed"]), (2, 0), f"{label}: logs accepted")
    check_eq(s["metric_exports_failed"], 0, f"{label}: metrics accepted")
    check(s["metric_points_exported"] >= 4, f"{label}: metric points accepted")
    check_eq(s["export_retries"], 0, f"{label}: nothing retried")


srv = Server(binary).start()
try:
    out = run_driver(srv, {})
    check_eq(out[0]["rc"], 0, "flush: every signal acknowledged")
    check_trace(srv, out, label="protobuf")
    check_stats(out, "protobuf")
    check_logs(srv, out, None, "protobuf")
    check_metrics(srv, None, "protobuf")

    out = run_driver(srv, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                           "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
                           "OTEL_EXPORTER_OTLP_HEADERS": "X-Scope-OrgID=tenant-b"})
    check_trace(srv, out, headers={"X-Scope-OrgID": "tenant-b"}, label="json+gzip")
    check_stats(out, "json+gzip")
    check_logs(srv, out, {"X-Scope-OrgID": "tenant-b"}, "json+gzip")
    check_metrics(srv, {"X-Scope-OrgID": "tenant-b"}, "json+gzip")
    st, _ = srv.get_json(f"/api/traces/{out[0]['trace_id']}")
    check_eq(st, 404, "the tenant header from OTEL_EXPORTER_OTLP_HEADERS was sent")
finally:
    rc = srv.stop()
    check_eq(rc, 0, "server exit status")
    srv.cleanup()

# --- bearer tokens ------------------------------------------------------------
token = "sdk-" + rand_hex(16)
work = tempfile.mkdtemp(prefix="sightline-sdk-auth-")
tokens = os.path.join(work, "tokens")
with open(tokens, "w") as f:
    f.write(f"{hashlib.sha256(token.encode()).hexdigest()} acme ingest,query\n")
srv = Server(binary, ["--auth-tokens", tokens]).start()
try:
    auth = {"Authorization": "Bearer " + token}
    out = run_driver(srv, {"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20" + token})
    check_trace(srv, out, headers=auth, label="bearer token")
    check_logs(srv, out, auth, "bearer token")
    check_eq(out[1]["stats"]["spans_exported"], 4, "bearer token: spans accepted")
    out = run_driver(srv, {"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20wrong"})
    s = out[1]["stats"]
    check_eq((s["spans_exported"], s["spans_export_failed"], s["logs_export_failed"]), (0, 4, 2),
             "wrong token: refused, counted")
    check_eq(s["export_retries"], 0, "a 401 is not retried")
    st, _ = srv.get_json(f"/api/traces/{out[0]['trace_id']}", headers=auth)
    check_eq(st, 404, "nothing stored with a wrong token")
finally:
    check_eq(srv.stop(), 0, "server exit status (auth)")
    srv.cleanup()
    os.unlink(tokens)

# --- mutual TLS on ingest: the SDK's CA and client certificate settings ------------
cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
gen = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                      "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
                      "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True)
check_eq(gen.returncode, 0, "test certificate generated")
srv = Server(binary, ["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", cert]).start()
try:
    out = run_driver(srv, {"OTEL_EXPORTER_OTLP_CERTIFICATE": cert,
                           "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": cert,
                           "OTEL_EXPORTER_OTLP_CLIENT_KEY": key}, scheme="https")
    s = out[1]["stats"]
    check_eq((s["spans_exported"], s["logs_exported"], s["metric_exports_failed"]), (4, 2, 0),
             "mutual TLS: every signal acknowledged")
    # A refused handshake looks like a transport failure: retried until the
    # export deadline (2 s here), then counted.
    out = run_driver(srv, {"OTEL_EXPORTER_OTLP_CERTIFICATE": cert,
                           "OTEL_BSP_EXPORT_TIMEOUT": "2000", "OTEL_BLRP_EXPORT_TIMEOUT": "2000",
                           "OTEL_METRIC_EXPORT_TIMEOUT": "2000"}, scheme="https")
    s = out[1]["stats"]
    check_eq((s["spans_exported"], s["spans_export_failed"], s["logs_exported"]), (0, 4, 0),
             "mutual TLS without a client certificate: refused, counted")
finally:
    check_eq(srv.stop(), 0, "server exit status (TLS)")
    srv.cleanup()
    for f in (cert, key):
        os.unlink(f)
    os.rmdir(work)
finish()
