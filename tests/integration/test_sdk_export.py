"""sdk-c's OTLP/HTTP exporter on the wire, against a scripted receiver (the
answers a real collector gives only under load or misconfiguration: 503
with Retry-After, 429, 400, partial success):

- retries on 503 (honouring Retry-After) and 429 (backoff), the same body
  resent; no retry on 400; partial success counted;
- OTLP/JSON with gzip: headers from OTEL_EXPORTER_OTLP_HEADERS
  (percent-decoded), content type and encoding, keep-alive (one connection),
  and the logs and metrics payloads checked field by field (severity, body,
  correlation with the active span, attributes; sums, histogram buckets,
  gauges, observable callbacks);
- the endpoint rules: the generic endpoint gets /v1/<signal> appended, a
  per-signal endpoint is used as is;
- TLS: an https receiver that requires a client certificate, trusted through
  OTEL_EXPORTER_OTLP_CERTIFICATE with OTEL_EXPORTER_OTLP_CLIENT_{CERTIFICATE,KEY};
  without the CA the export fails at once (a configuration error: no retry).

usage: test_sdk_export.py SDK_IT_DRIVER"""

import gzip
import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading

from harness import check, check_eq, finish

driver = sys.argv[1]


class Receiver:
    def __init__(self, tls=None):
        self.requests = []
        self.script = {}  # path -> list of (status, headers, body) answered in order
        self.lock = threading.Lock()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                raw = body
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                peer = None
                if hasattr(self.connection, "getpeercert"):
                    peer = self.connection.getpeercert()
                with rec.lock:
                    rec.requests.append({"path": self.path, "headers": dict(self.headers),
                                         "body": body, "raw": raw, "peer": peer,
                                         "port": self.client_address[1]})
                    answers = rec.script.get(self.path, [])
                    status, hdrs, out = answers.pop(0) if answers else (200, {}, None)
                ctype = self.headers.get("Content-Type", "application/x-protobuf")
                if out is None:
                    out = b"{}" if ctype == "application/json" else b""
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(out)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def on(self, path):
        return [r for r in self.requests if r["path"] == path]


def run_driver(env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"OTEL_SERVICE_NAME": "wire-test", "OTEL_BSP_SCHEDULE_DELAY": "60000",
                "OTEL_BLRP_SCHEDULE_DELAY": "60000", "OTEL_METRIC_EXPORT_INTERVAL": "60000"})
    env.update(env_extra)
    p = subprocess.run([driver, "emit"], env=env, capture_output=True, timeout=120)
    check_eq(p.returncode, 0, "driver exit status (stderr: %s)" % p.stderr.decode()[-2000:])
    return [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]


def attrs(lst):
    out = {}
    for kv in lst or []:
        v = kv["value"]
        out[kv["key"]] = next(iter(v.values())) if v else None
    return out


# --- OTLP/JSON, gzip, retries, partial success, logs and metrics payloads ------
rx = Receiver()
rx.script["/v1/traces"] = [(503, {"Retry-After": "1"}, None),
                           (200, {}, b'{"partialSuccess":{"rejectedSpans":"1"}}')]
rx.script["/v1/logs"] = [(429, {}, None)]
out = run_driver({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{rx.port}",
                  "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                  "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
                  "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc%20d, x-other = 1"})
check_eq(len(out), 2, "two flushes reported")
first, stats = out[0], out[-1]["stats"]
check_eq(first["rc"], 0, "first flush succeeded after retries")
traces = rx.on("/v1/traces")
check_eq([r["path"] for r in traces], ["/v1/traces"] * 3, "503, its retry, then the second flush")
if len(traces) == 3:
    check_eq(traces[0]["body"], traces[1]["body"], "the retry resends the same batch")
    check_eq(traces[1]["port"], traces[2]["port"], "keep-alive: one connection reused")
    h = traces[0]["headers"]
    check_eq(h.get("Content-Type"), "application/json", "JSON content type")
    check_eq(h.get("Content-Encoding"), "gzip", "gzip content encoding")
    check(traces[0]["raw"][:2] == b"\x1f\x8b", "body is gzip")
    check_eq(h.get("x-api-key"), "abc d", "header from OTEL_EXPORTER_OTLP_HEADERS, decoded")
    check_eq(h.get("x-other"), "1", "header list trimmed")
    check(h.get("User-Agent", "").startswith("sightline-otel/"), "user agent")
    doc = json.loads(traces[0]["body"])
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    check_eq(len(spans), 3, "three spans in the first batch")
    check_eq({s["traceId"] for s in spans}, {first["trace_id"]}, "one trace id, hex")
check_eq(len(rx.on("/v1/logs")), 2, "logs: 429 then retried")
check_eq(stats["export_retries"], 2, "two retries (503 and 429)")
check_eq(stats["partial_success_rejected"], 1, "partial success counted")
check_eq(stats["spans_exported"], 4 - 1, "rejected span not counted as exported")
check_eq(stats["logs_exported"], 2, "logs exported")

logs = rx.on("/v1/logs")
if logs:
    doc = json.loads(logs[-1]["body"])
    rl = doc["resourceLogs"][0]
    check_eq(attrs(rl["resource"]["attributes"]).get("service.name"), "wire-test",
             "logs resource")
    sl = rl["scopeLogs"][0]
    check_eq((sl["scope"]["name"], sl["scope"]["version"]), ("sdk-it", "1.0.0"), "logs scope")
    recs = sorted(sl["logRecords"], key=lambda r: r["severityNumber"])
    check_eq([(r["severityNumber"], r["severityText"], r["body"]["stringValue"]) for r in recs],
             [(9, "INFO", "checkout started"), (17, "ERROR", "charge failed")],
             "severities and bodies")
    check_eq([r.get("traceId") for r in recs], [first["trace_id"]] * 2, "logs carry the trace id")
    check_eq([r.get("spanId") for r in recs], [first["root"], first["child"]],
             "logs carry the active span")
    check_eq(recs[0].get("flags"), 1, "sampled flag")
    check_eq(attrs(recs[0].get("attributes")), {"user.id": "u-7"}, "log attributes")
    check("observedTimeUnixNano" in recs[0], "observed time set")

metrics = rx.on("/v1/metrics")
check(len(metrics) >= 1, "metrics exported on flush")
if metrics:
    doc = json.loads(metrics[0]["body"])
    ms = {m["name"]: m for m in doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]}
    c = ms.get("it.requests", {})
    check_eq((c.get("unit"), c.get("description")), ("{request}", "Requests served"),
             "counter unit and description")
    s = c.get("sum", {})
    check_eq((s.get("aggregationTemporality"), s.get("isMonotonic")), (2, True),
             "cumulative monotonic sum")
    dp = s.get("dataPoints", [{}])[0]
    check_eq((dp.get("asInt"), attrs(dp.get("attributes"))), ("5", {"route": "/checkout"}),
             "counter point")
    check(int(dp.get("timeUnixNano", "0")) >= int(dp.get("startTimeUnixNano", "1")),
          "point times ordered")
    hp = ms.get("it.latency", {}).get("histogram", {}).get("dataPoints", [{}])[0]
    check_eq((hp.get("count"), hp.get("sum"), hp.get("min"), hp.get("max")),
             ("3", 333, 3, 300), "histogram count, sum, min, max")
    check_eq(len(hp.get("explicitBounds", [])), 15, "default histogram bounds")
    check_eq(sum(int(x) for x in hp.get("bucketCounts", [])), 3, "bucket counts add up")
    g = ms.get("it.temperature", {}).get("gauge", {}).get("dataPoints", [{}])[0]
    check_eq(g.get("asDouble"), 21.5, "gauge")
    q = ms.get("it.queue.depth", {}).get("gauge", {}).get("dataPoints", [{}])[0]
    check_eq((q.get("asInt"), attrs(q.get("attributes"))), ("42", {"queue": "jobs"}),
             "observable gauge from its callback")
rx.httpd.shutdown()

# --- protobuf, endpoint rules, no retry on 400 ------------------------------------
rx = Receiver()
rx.script["/custom/traces"] = [(400, {}, b"bad"), (400, {}, b"bad")]
out = run_driver({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{rx.port}/base/",
                  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":
                      f"http://127.0.0.1:{rx.port}/custom/traces"})
stats = out[-1]["stats"] if out else {}
check_eq(len(rx.on("/custom/traces")), 2, "per-signal endpoint used as is; 400 not retried")
check_eq(len(rx.on("/base/v1/logs")), 1, "generic endpoint: /v1/logs appended")
check(len(rx.on("/base/v1/metrics")) >= 1, "generic endpoint: /v1/metrics appended")
check_eq(stats.get("spans_export_failed"), 4, "refused spans counted")
check_eq(stats.get("export_retries"), 0, "no retry on 400")
check_eq(out[0]["rc"] if out else None, -20006, "flush reports the failed export")
t = rx.on("/custom/traces")
if t:
    check_eq(t[0]["headers"].get("Content-Type"), "application/x-protobuf", "protobuf")
    check_eq(t[0]["headers"].get("Content-Encoding"), None, "no compression by default")
    check(t[0]["body"][:1] == b"\x0a", "an ExportTraceServiceRequest (field 1) on the wire")
rx.httpd.shutdown()

# --- TLS with a client certificate ------------------------------------------------
work = tempfile.mkdtemp(prefix="sdk-tls-")
cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
gen = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                      "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
                      "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True)
check_eq(gen.returncode, 0, "test certificate generated: " + gen.stderr.decode()[-500:])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: the client must present a certificate
ctx.load_verify_locations(cert)
rx = Receiver(tls=ctx)
out = run_driver({"OTEL_EXPORTER_OTLP_ENDPOINT": f"https://127.0.0.1:{rx.port}",
                  "OTEL_EXPORTER_OTLP_CERTIFICATE": cert,
                  "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": cert,
                  "OTEL_EXPORTER_OTLP_CLIENT_KEY": key})
check_eq([o["rc"] for o in out], [0, 0], "https with a trusted CA and a client certificate")
t = rx.on("/v1/traces")
check_eq(len(t), 2, "both trace exports over TLS")
check(bool(t and t[0]["peer"]), "the client presented its certificate")
check_eq(out[-1]["stats"]["spans_exported"] if out else None, 4, "spans exported over TLS")
out = run_driver({"OTEL_EXPORTER_OTLP_ENDPOINT": f"https://127.0.0.1:{rx.port}"})
s = out[-1]["stats"] if out else {}
check_eq((s.get("spans_export_failed"), s.get("export_retries")), (4, 0),
         "untrusted server certificate: failed, not retried")
check_eq(len(rx.on("/v1/traces")), 2, "nothing more reached the receiver")
rx.httpd.shutdown()
shutil.rmtree(work)
finish()
