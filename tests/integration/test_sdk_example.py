"""The sdk-c examples end to end: sl-example-server (libmicrohttpd) and
sl-example-client (libcurl), both exporting to the real binary. The client's
requests carry traceparent; the server continues the trace, so one trace
holds both services with the server spans as children of the client spans,
visible through the Jaeger API (services, operations, the trace itself), and
the server's log lines are attached to that trace (/api/traces/{id}/logs).

usage: test_sdk_example.py SIGHTLINE_BINARY EXAMPLE_SERVER EXAMPLE_CLIENT"""

import json
import os
import signal
import subprocess
import sys

from harness import Server, check, check_eq, finish

binary, ex_server, ex_client = sys.argv[1], sys.argv[2], sys.argv[3]

srv = Server(binary).start()
env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{srv.otlp_port}",
            "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "60000"})
server = subprocess.Popen([ex_server, "0"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
try:
    line = server.stdout.readline().decode()
    check(line.startswith("listening on "), "example server started: %r" % line)
    port = int(line.split()[-1])
    out = subprocess.run([ex_client, f"http://127.0.0.1:{port}/hello", "2"], env=env,
                         capture_output=True, timeout=60)
    check_eq(out.returncode, 0, "client exit status: " + out.stderr.decode()[-1000:])
    lines = out.stdout.decode().splitlines()
    trace_id = json.loads(lines[0])["trace_id"]
    check_eq(lines[1:], [f"hello from trace {trace_id}"] * 2,
             "the server saw the client's trace id (traceparent extracted)")
    server.send_signal(signal.SIGTERM)
    check_eq(server.wait(timeout=30), 0, "server exit status: " + server.stderr.read().decode())

    st, doc = srv.get_json(f"/api/traces/{trace_id}")
    check_eq(st, 200, "the shared trace is stored")
    spans = []
    if st == 200:
        t = doc["data"][0]
        svc = {pid: p["serviceName"] for pid, p in t["processes"].items()}
        check_eq(sorted(set(svc.values())), ["example-client", "example-server"],
                 "both services in one trace")
        spans = t["spans"]
        by_id = {s["spanID"]: s for s in spans}
        names = sorted((svc[s["processID"]], s["operationName"]) for s in spans)
        check_eq(names, [("example-client", "GET"), ("example-client", "GET"),
                         ("example-client", "checkout"),
                         ("example-server", "GET /hello"), ("example-server", "GET /hello"),
                         ("example-server", "render greeting"),
                         ("example-server", "render greeting")], "span names per service")
        for s in spans:
            refs = s["references"]
            parent = by_id.get(refs[0]["spanID"]) if refs else None
            if s["operationName"] == "GET /hello":
                check(parent is not None and parent["operationName"] == "GET"
                      and svc[parent["processID"]] == "example-client",
                      "server span is a child of the client span")
                tags = {x["key"]: x["value"] for x in s["tags"]}
                check_eq(tags.get("http.response.status_code"), 200, "server status code tag")
                check_eq(tags.get("span.kind"), "server", "server kind")
            elif s["operationName"] == "GET":
                check(parent is not None and parent["operationName"] == "checkout",
                      "client span under the client's root")
            elif s["operationName"] == "render greeting":
                check(parent is not None and parent["operationName"] == "GET /hello",
                      "internal span under the server span")
    st, doc = srv.get_json("/api/services")
    check("example-server" in (doc.get("data") or []), "service listed")
    st, doc = srv.get_json(f"/api/traces/{trace_id}/logs")
    recs = doc.get("data") or []
    check_eq([(r["service"], r["body"], r["severity_text"]) for r in recs],
             [("example-server", "request handled", "INFO")] * 2,
             "the server's log lines, correlated with the trace")
    if st == 200 and recs:
        server_spans = {s["spanID"] for s in spans if s["operationName"] == "GET /hello"}
        check({r["span_id"] for r in recs} == server_spans, "each log line on its server span")
finally:
    if server.poll() is None:
        server.kill()
        server.wait()
    srv.cleanup()
finish()
