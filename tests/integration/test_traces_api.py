"""End to end over the wire: OTLP/HTTP traces in (JSON, protobuf, gzip,
partial success, traces split across requests), every status code the
collector promises, keep-alive and pipelining, then every Jaeger API endpoint
and the server's own /metrics, /healthz and /readyz.

usage: test_traces_api.py SIGHTLINE_BINARY OTLP_GEN_BINARY EXAMPLES_DIR"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zlib

from harness import (Server, check, check_eq, finish, gzip_bytes, rand_hex, request, span)

binary, otlp_gen, examples = sys.argv[1], sys.argv[2], sys.argv[3]
srv = Server(binary).start()
try:
    # --- the spec's example payload -------------------------------------------
    with open(os.path.join(examples, "trace.json"), "rb") as f:
        example = f.read()
    st, hdrs, body = srv.post("/v1/traces", example, "application/json")
    check_eq(st, 200, "example trace.json accepted")
    check_eq(hdrs.get("content-type"), "application/json", "JSON reply to a JSON request")
    check_eq(json.loads(body), {}, "no partial success for a valid request")
    st, doc = srv.get_json("/api/traces/5b8efff798038103d269b633813fc60c")
    check_eq(st, 200, "example trace found by id")
    if st == 200:
        t = doc["data"][0]
        check_eq(t["traceID"], "5b8efff798038103d269b633813fc60c", "traceID lowercase hex")
        sp = t["spans"][0]
        check_eq(sp["operationName"], "I'm a server span", "operation name")
        check_eq(sp["spanID"], "eee19b7ec3c1b174", "span id")
        check_eq(sp["startTime"], 1544712660000000, "startTime in us")
        check_eq(sp["duration"], 1000000, "duration in us")
        check_eq(sp["references"], [{"refType": "CHILD_OF", "traceID": t["traceID"],
                                     "spanID": "eee19b7ec3c1b173"}], "parent reference")
        tags = {x["key"]: x for x in sp["tags"]}
        check_eq(tags.get("my.span.attr", {}).get("value"), "some value", "span attribute tag")
        check_eq(tags.get("span.kind", {}).get("value"), "server", "span.kind tag")
        check_eq(t["processes"][sp["processID"]]["serviceName"], "my.service", "process service")

    # --- a hand-built multi-service trace in two requests ---------------------
    tid = rand_hex(16)
    root, child, grandchild = rand_hex(8), rand_hex(8), rand_hex(8)
    now = time.time_ns() - 2_000_000_000
    st, _, body = srv.post_json(request("frontend", [
        span(tid, root, "GET /checkout", kind=2, start_ns=now, dur_ns=50_000_000,
             attrs=[{"key": "http.request.method", "value": {"stringValue": "GET"}},
                    {"key": "http.response.status_code", "value": {"intValue": "200"}},
                    {"key": "retry", "value": {"boolValue": True}},
                    {"key": "ratio", "value": {"doubleValue": 0.25}},
                    {"key": "blob", "value": {"bytesValue": "AAEC"}},
                    {"key": "list", "value": {"arrayValue": {"values": [
                        {"stringValue": "a"}, {"intValue": 1}]}}}],
             events=[{"timeUnixNano": str(now + 1000), "name": "cache miss",
                      "attributes": [{"key": "cache.key", "value": {"stringValue": "u:1"}}]}]),
        span(tid, child, "call payments", parent=root, kind=3, start_ns=now + 1_000_000,
             dur_ns=30_000_000)]))
    check_eq(st, 200, "first half of a trace accepted")
    st, _, _ = srv.post_json(request("payments", [
        span(tid, grandchild, "POST /charge", parent=child, kind=2, start_ns=now + 2_000_000,
             dur_ns=20_000_000, status={"code": 2, "message": "card declined"})],
        resource_attrs=[{"key": "host.name", "value": {"stringValue": "pay-1"}}]),
        headers={"Content-Encoding": "gzip"} if False else None)
    check_eq(st, 200, "second half of the trace accepted (another service)")
    st, doc = srv.get_json(f"/api/traces/{tid}")
    check_eq(st, 200, "split trace found")
    if st == 200:
        t = doc["data"][0]
        check_eq(len(t["spans"]), 3, "all spans of a trace sent in two requests")
        services = sorted(p["serviceName"] for p in t["processes"].values())
        check_eq(services, ["frontend", "payments"], "one process per service")
        by_name = {s["operationName"]: s for s in t["spans"]}
        charge = by_name.get("POST /charge", {})
        ctags = {x["key"]: x for x in charge.get("tags", [])}
        check_eq(ctags.get("error", {}).get("value"), True, "error=true on an ERROR span")
        check_eq(ctags.get("otel.status_code", {}).get("value"), "ERROR", "otel.status_code")
        check_eq(ctags.get("otel.status_description", {}).get("value"), "card declined",
                 "status description")
        rtags = {x["key"]: x for x in by_name.get("GET /checkout", {}).get("tags", [])}
        check_eq(rtags.get("http.response.status_code", {}).get("type"), "int64", "int64 tag")
        check_eq(rtags.get("http.response.status_code", {}).get("value"), 200, "int64 value")
        check_eq(rtags.get("retry", {}).get("type"), "bool", "bool tag")
        check_eq(rtags.get("ratio", {}).get("type"), "float64", "float64 tag")
        check_eq(rtags.get("blob", {}).get("type"), "binary", "binary tag")
        logs = by_name.get("GET /checkout", {}).get("logs", [])
        check_eq(len(logs), 1, "span event becomes a log")
        if logs:
            fields = {x["key"]: x["value"] for x in logs[0]["fields"]}
            check_eq(fields.get("event"), "cache miss", "event name field")
            check_eq(fields.get("cache.key"), "u:1", "event attribute field")
        proc = t["processes"][charge.get("processID", "")] if charge else {}
        ptags = {x["key"]: x["value"] for x in proc.get("tags", [])}
        check_eq(ptags.get("host.name"), "pay-1", "resource attributes as process tags")

    # --- protobuf from the project's own encoder, gzip-compressed ------------
    with tempfile.TemporaryDirectory() as d:
        pb = os.path.join(d, "req.pb")
        subprocess.run([otlp_gen, "--spans", "300", "--seed", "7", "--out", pb], check=True)
        with open(pb, "rb") as f:
            payload = f.read()
    st, hdrs, body = srv.post("/v1/traces", payload)
    check_eq(st, 200, "protobuf request accepted")
    check_eq(hdrs.get("content-type"), "application/x-protobuf", "protobuf reply")
    check_eq(body, b"", "empty ExportTraceServiceResponse (no partial success)")
    st, _, _ = srv.post("/v1/traces", gzip_bytes(payload), headers={"Content-Encoding": "gzip"})
    check_eq(st, 200, "gzip protobuf request accepted")
    st, _, _ = srv.post("/v1/traces", zlib.compress(payload), headers={"Content-Encoding": "deflate"})
    check_eq(st, 200, "deflate (zlib) protobuf request accepted")
    zst = subprocess.run(["zstd", "-q", "-c"], input=payload, capture_output=True, check=True).stdout
    st, _, _ = srv.post("/v1/traces", zst, headers={"Content-Encoding": "zstd"})
    check_eq(st, 200, "zstd protobuf request accepted")
    st, _, _ = srv.post("/v1/traces", zst[: len(zst) // 2], headers={"Content-Encoding": "zstd"})
    check_eq(st, 400, "a truncated zstd body is 400")
    zbomb = subprocess.run(["zstd", "-q", "-c", "-19"], input=b"\0" * (40 << 20),
                           capture_output=True, check=True).stdout
    st, _, _ = srv.post("/v1/traces", zbomb, headers={"Content-Encoding": "zstd"})
    check_eq(st, 413, "a zstd bomb is cut off at the limit (413)")

    # --- partial success: one span with a bad trace id -----------------------
    good = rand_hex(16)
    st, _, body = srv.post_json(request("frontend", [
        span(good, rand_hex(8), "ok span"),
        span("00000000000000000000000000000000", rand_hex(8), "zero trace id"),
        span(rand_hex(16), "", "missing span id")]))
    check_eq(st, 200, "partially valid request accepted")
    ps = json.loads(body).get("partialSuccess", {})
    check_eq(ps.get("rejectedSpans"), "2", "two spans rejected")
    check(bool(ps.get("errorMessage")), "partial success carries an error message")
    st, _ = srv.get_json(f"/api/traces/{good}")
    check_eq(st, 200, "the valid span of a partial request is stored")

    # --- status codes ---------------------------------------------------------
    st, _, body = srv.post("/v1/traces", b"\xff\xff\xff garbage")
    check_eq(st, 400, "undecodable protobuf is 400")
    st, _, body = srv.post("/v1/traces", b"{not json", "application/json")
    check_eq(st, 400, "malformed JSON is 400")
    check("message" in json.loads(body), "400 carries a Status message")
    st, _, _ = srv.post("/v1/traces", b"x", "application/x-protobuf",
                        headers={"Content-Encoding": "gzip"})
    check_eq(st, 400, "corrupt gzip is 400")
    st, _, _ = srv.post("/v1/nope", b"{}", "application/json")
    check_eq(st, 404, "unknown path is 404")
    st, hdrs, _ = srv.post("/v1/traces", None, None, method="GET")
    check_eq(st, 405, "GET /v1/traces is 405")
    check_eq(hdrs.get("allow"), "POST", "405 names the allowed method")
    st, _, _ = srv.post("/v1/traces", b"hello", "text/plain")
    check_eq(st, 415, "wrong content type is 415")
    st, _, _ = srv.post("/v1/traces", b"{}", "application/json", headers={"Content-Encoding": "br"})
    check_eq(st, 415, "unsupported content encoding is 415")
    st, _, _ = srv.post("/v1/traces", b"\0" * (17 << 20))
    check_eq(st, 413, "a body over 16 MiB is 413")
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb_body = bomb.compress(b"\0" * (64 << 20)) + bomb.flush()
    check(len(bomb_body) < 200_000, "gzip bomb is small on the wire")
    st, _, _ = srv.post("/v1/traces", bomb_body, headers={"Content-Encoding": "gzip"})
    check_eq(st, 413, "a gzip bomb is cut off at the limit (413)")
    st, _, _ = srv.post_json(request("x", []), headers={"X-Scope-OrgID": "../etc"})
    check_eq(st, 400, "an invalid tenant id is 400")

    # --- chunked body, keep-alive and pipelining over one socket -------------
    small = json.dumps(request("pipeline", [span(rand_hex(16), rand_hex(8), "p")])).encode()
    s = socket.create_connection(("127.0.0.1", srv.otlp_port), timeout=10)
    reqs = b""
    for _ in range(3):
        reqs += (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(small)) + small
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small)
    reqs += (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n") + chunked
    s.sendall(reqs)
    got = b""
    deadline = time.time() + 10
    while got.count(b"HTTP/1.1 200") < 4 and time.time() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    check_eq(got.count(b"HTTP/1.1 200 OK"), 4, "four pipelined requests (one chunked) answered")

    # --- Jaeger API -----------------------------------------------------------
    st, doc = srv.get_json("/api/services")
    check_eq(st, 200, "/api/services")
    for svc in ("my.service", "frontend", "payments"):
        check(svc in (doc.get("data") or []), f"service {svc} listed")
    check("total" in doc and "errors" in doc, "Jaeger envelope")
    st, doc = srv.get_json("/api/services/frontend/operations")
    check_eq(st, 200, "/api/services/{service}/operations")
    check("GET /checkout" in (doc.get("data") or []), "operation listed")
    st, doc = srv.get_json("/api/operations?service=frontend&spanKind=client")
    check_eq(st, 200, "/api/operations")
    check_eq(doc.get("data"), [{"name": "call payments", "spanKind": "client"}],
             "operations filtered by span kind")
    st, doc = srv.get_json("/api/operations")
    check_eq(st, 400, "/api/operations without service is 400")

    start_us = (now - 60_000_000_000) // 1000
    end_us = (now + 60_000_000_000) // 1000
    st, doc = srv.get_json(f"/api/traces?service=payments&start={start_us}&end={end_us}")
    check_eq(st, 200, "search by service")
    check(any(t["traceID"] == tid for t in doc.get("data") or []), "search finds the trace")
    st, doc = srv.get_json(f"/api/traces?service=frontend&operation=GET%20%2Fcheckout"
                           f"&start={start_us}&end={end_us}&minDuration=40ms")
    check_eq([t["traceID"] for t in doc.get("data") or []], [tid], "operation + minDuration")
    st, doc = srv.get_json(f"/api/traces?service=frontend&start={start_us}&end={end_us}"
                           f"&minDuration=1s")
    check(all(t["traceID"] != tid for t in doc.get("data") or []), "minDuration excludes")
    tags = urllib.parse.quote(json.dumps({"http.request.method": "GET"}))
    st, doc = srv.get_json(f"/api/traces?service=frontend&start={start_us}&end={end_us}"
                           f"&tags={tags}")
    check(any(t["traceID"] == tid for t in doc.get("data") or []), "tags={json} search")
    st, doc = srv.get_json(f"/api/traces?service=payments&start={start_us}&end={end_us}"
                           f"&tag=error:true")
    check(any(t["traceID"] == tid for t in doc.get("data") or []), "tag=error:true search")
    st, doc = srv.get_json(f"/api/traces?service=payments&start={start_us}&end={end_us}"
                           f"&tag=host.name:nope")
    check_eq(doc.get("data"), [], "non-matching tag finds nothing")
    st, doc = srv.get_json(f"/api/traces?service=payments&lookback=1h&limit=1")
    check_eq(st, 200, "lookback search")
    check(len(doc.get("data") or []) <= 1, "limit respected")

    st, doc = srv.get_json("/api/traces/" + "ab" * 16)
    check_eq(st, 404, "unknown trace is 404")
    check(doc.get("errors") and doc["errors"][0]["code"] == 404, "Jaeger-style 404 error")
    for bad in ("/api/traces/xyz", "/api/traces?service=a&start=abc",
                "/api/traces?service=a&minDuration=fast", "/api/traces?service=a&limit=-1",
                "/api/traces?service=a&tags=notjson", "/api/dependencies?endTs=soon"):
        st, doc = srv.get_json(bad)
        check_eq(st, 400, f"bad parameters are 400: {bad}")
        check(bool(doc.get("errors")), f"400 has a Jaeger-style error: {bad}")

    # The live graph counts spans as they are cut from the WAL (--cut-interval).
    deadline = time.time() + 15
    while True:
        end_ms = time.time_ns() // 1_000_000
        st, doc = srv.get_json(f"/api/dependencies?endTs={end_ms}&lookback=3600000")
        deps = {(d["parent"], d["child"]): d["callCount"] for d in doc.get("data") or []}
        if deps.get(("frontend", "payments"), 0) >= 1 or time.time() > deadline:
            break
        time.sleep(0.2)
    check_eq(st, 200, "/api/dependencies")
    check(deps.get(("frontend", "payments"), 0) >= 1, "frontend -> payments dependency")

    # --- the server's own endpoints -------------------------------------------
    st, _, body = srv.get("/healthz")
    check_eq(st, 200, "/healthz")
    st, _, body = srv.get("/readyz")
    check_eq(st, 200, "/readyz")
    st, hdrs, body = srv.get("/metrics")
    check_eq(st, 200, "/metrics")
    text = body.decode()
    for name in ("sightline_otlp_requests_total", "sightline_spans_accepted_total",
                 "sightline_spans_rejected_total", "sightline_otlp_request_duration_seconds_bucket",
                 "sightline_storage_commit_duration_seconds_bucket", "sightline_ingest_queue_depth",
                 "sightline_storage_bytes_on_disk", "sightline_storage_partitions"):
        check(name in text, f"/metrics exposes {name}")
    check('code="413"' in text, "requests counted by status code")
finally:
    rc = srv.stop()
    check_eq(rc, 0, "clean shutdown on SIGTERM")
    if os.environ.get("KEEP") is None:
        srv.cleanup()
finish()
