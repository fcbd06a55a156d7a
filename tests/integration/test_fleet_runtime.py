"""The fleet runtime's HTTP server end to end, on fleet-echo exporting to the
real Sightline binary:
- a request carrying traceparent produces a SERVER span, child of the
  caller's span, with the HTTP semantic-convention attributes, visible in
  Sightline's Jaeger API; the handler's log is attached to that span;
- service tokens: missing/bad/expired/wrong-audience tokens are 401, a
  caller or scope the route does not admit is 403, a right one passes;
- request validation: 400 with the reason, 415, 413 before the upload;
- /health, /ready, /metrics (RED counters and the duration histogram);
- fault injection: /admin/faults needs scope admin, then answers 500 for the
  set ratio, never on /health; DELETE heals;
- SIGTERM: a request in flight finishes, then the process exits 0.

usage: test_fleet_runtime.py SIGHTLINE_BINARY FLEET_ECHO_BINARY"""

import os
import socket
import subprocess
import sys
import threading
import time

from fleet_harness import (Fleet, Server, check, check_eq, finish, get_trace, http, json_of,
                           otel_env, parent_of, service_token, tags_of, write_key)

sightline_bin, echo_bin = sys.argv[1], sys.argv[2]

# --- start-up failures: a clear message and exit status 2, never a crash ----
# (they leave the app half made: the destroy path must cope with what is not)
for args, want in [(["--no-such-flag"], "unknown flag --no-such-flag"),
                   (["--no-such-flag", "1"], "unknown flag --no-such-flag"),
                   (["--listen"], "--listen needs a value"),
                   (["--service-key-file", "/nonexistent/key"], "service key")]:
    p = subprocess.run([echo_bin] + args, capture_output=True, text=True, timeout=20)
    check_eq(p.returncode, 2, f"exit status for {args} (stderr: {p.stderr[-300:]!r})")
    check(want in p.stderr, f"{args}: the message names the problem: {p.stderr[-300:]!r}")
taken = socket.socket()
taken.bind(("127.0.0.1", 0))
taken.listen(1)
p = subprocess.run([echo_bin, "--listen", "127.0.0.1:%d" % taken.getsockname()[1]],
                   capture_output=True, text=True, timeout=20)
taken.close()
check_eq(p.returncode, 1, f"exit status on a port in use (stderr: {p.stderr[-300:]!r})")
check("cannot listen" in p.stderr, f"a port in use is named: {p.stderr[-300:]!r}")

srv = Server(sightline_bin).start()
echo = None
try:
    key_path, key = write_key(srv.data_dir)
    echo = Fleet(echo_bin, ["--service-key-file", key_path, "--enable-faults",
                            "--max-body-size", "4096", "--version", "1.2.3"],
                 env=otel_env(srv)).start()

    # --- tracing: the caller's traceparent is continued ---------------------
    trace_id = os.urandom(16).hex()
    parent_span = os.urandom(8).hex()
    st, hdrs, body = echo.request("GET", "/v1/echo/hello", headers={
        "traceparent": f"00-{trace_id}-{parent_span}-01", "User-Agent": "fleet-test/1"})
    check_eq(st, 200, "hello answered")
    check_eq(json_of(body).get("trace_id"), trace_id, "the handler sees the caller's trace")
    check(hdrs.get("traceresponse", "").startswith(f"00-{trace_id}-"),
          "traceresponse names the trace: %r" % hdrs.get("traceresponse"))
    server_span_id = hdrs.get("traceresponse", "---").split("-")[2]

    spans, services = get_trace(srv, trace_id)
    check_eq(len(spans), 1, "one span stored for the request")
    if spans:
        s = spans[0]
        check_eq(services.get(s["processID"]), "echo", "service.name defaults to the service")
        check_eq(s["operationName"], "GET /v1/echo/hello", "span name is method + route")
        check_eq(s["spanID"], server_span_id, "the span is the one traceresponse named")
        check_eq(parent_of(s), parent_span, "SERVER span is a child of the caller's span")
        t = tags_of(s)
        check_eq(t.get("span.kind"), "server", "kind server")
        check_eq(t.get("http.request.method"), "GET", "http.request.method")
        check_eq(t.get("http.route"), "/v1/echo/hello", "http.route")
        check_eq(t.get("url.path"), "/v1/echo/hello", "url.path")
        check_eq(t.get("http.response.status_code"), 200, "http.response.status_code")
        check_eq(t.get("user_agent.original"), "fleet-test/1", "user_agent.original")
        check_eq(t.get("client.address"), "127.0.0.1", "client.address")
        check_eq(t.get("server.port"), echo.port, "server.port")
        st, doc = srv.get_json("/api/services")
        check("echo" in (doc.get("data") or []), "echo listed as a service")

    def logs_of(tid):
        st, doc = srv.get_json(f"/api/traces/{tid}/logs")
        recs = doc.get("data") or []
        return recs if len(recs) >= 2 else None

    from fleet_harness import wait_for
    recs = wait_for(lambda: logs_of(trace_id)) or []
    bodies = sorted(r["body"] for r in recs)
    check_eq(bodies, ["GET /v1/echo/hello -> 200", "saying hello"],
             "the handler's log and the request log, correlated with the trace")
    check(all(r.get("span_id") == server_span_id for r in recs), "logs carry the SERVER span id")

    # A request without traceparent starts a trace of its own.
    st, hdrs, body = echo.request("GET", "/v1/echo/hello")
    check(json_of(body).get("trace_id") not in (None, trace_id), "a fresh trace without parent")

    # --- service tokens ------------------------------------------------------
    msg = {"message": "hi"}
    good = service_token(key, "gateway", "echo", "echo.write")
    st, hdrs, body = echo.request("POST", "/v1/echo/messages", msg)
    check_eq(st, 401, "no token: 401")
    check("www-authenticate" in hdrs, "401 names the scheme")
    st, _, body = echo.request("POST", "/v1/echo/messages", msg,
                               {"Authorization": "Bearer " + good})
    check_eq((st, json_of(body)), (201, {"message": "hi", "caller": "gateway"}),
             "right caller and scope: 201")
    cases = [
        ("garbage", "not.a.token", 401),
        ("wrong key", service_token(b"x" * 32, "gateway", "echo", "echo.write"), 401),
        ("expired", service_token(key, "gateway", "echo", "echo.write", ttl=-120), 401),
        ("wrong audience", service_token(key, "gateway", "users", "echo.write"), 401),
        ("caller not admitted", service_token(key, "analytics", "echo", "echo.write"), 403),
        ("scope missing", service_token(key, "gateway", "echo", "echo.read"), 403),
    ]
    for name, tok, want in cases:
        st, _, body = echo.request("POST", "/v1/echo/messages", msg,
                                   {"Authorization": "Bearer " + tok})
        check_eq(st, want, f"{name}: {json_of(body)}")
    tok = service_token(key, "anyone", "echo")
    st, _, body = echo.request("GET", "/v1/echo/items/42", headers={"Authorization": "Bearer " + tok})
    check_eq((st, json_of(body)), (200, {"id": "42"}), "path parameter, any authenticated caller")

    # --- validation and limits -----------------------------------------------
    auth = {"Authorization": "Bearer " + good}
    st, _, body = echo.request("POST", "/v1/echo/messages", {"message": ""}, auth)
    check_eq(st, 400, "empty message: 400")
    check("length must be between 1 and 256" in json_of(body).get("error", ""),
          "400 says why: %r" % body)
    st, _, body = echo.request("POST", "/v1/echo/messages", b"{\"message\":", 
                               dict(auth, **{"Content-Type": "application/json"}))
    check_eq(st, 400, "truncated JSON: 400")
    st, _, body = echo.request("POST", "/v1/echo/messages", {"message": "x", "other": 1}, auth)
    check_eq(st, 400, "unknown field: 400")
    st, _, _ = echo.request("POST", "/v1/echo/messages", b"message=hi",
                            dict(auth, **{"Content-Type": "application/x-www-form-urlencoded"}))
    check_eq(st, 415, "form body: 415")
    st, _, body = echo.request("POST", "/v1/echo/messages", b"{\"message\":\"" + b"x" * 8000 + b"\"}",
                               dict(auth, **{"Content-Type": "application/json"}))
    check_eq(st, 413, "body over --max-body-size: 413")
    st, _, _ = echo.request("DELETE", "/v1/echo/hello")
    check_eq(st, 405, "wrong method: 405")
    st, _, _ = echo.request("GET", "/v1/nothing")
    check_eq(st, 404, "unknown path: 404")

    # --- probes and metrics ----------------------------------------------------
    st, _, body = echo.request("GET", "/health")
    check_eq((st, json_of(body)), (200, {"status": "ok"}), "/health")
    st, _, body = echo.request("GET", "/ready")
    check_eq(st, 200, "/ready without dependencies")
    st, hdrs, body = echo.request("GET", "/metrics")
    text = body.decode()
    check_eq(st, 200, "/metrics")
    check(hdrs.get("content-type", "").startswith("text/plain"), "Prometheus text format")
    check('http_server_requests_total{method="GET",route="/v1/echo/hello",status="200"} 2'
          in text, "RED counter per route and status")
    check('http_server_requests_total{method="POST",route="/v1/echo/messages",status="401"} 5'
          in text, "401s counted")
    check('http_server_request_duration_seconds_count{method="GET",route="/v1/echo/hello"} 2'
          in text, "duration histogram per route")

    # --- fault injection ---------------------------------------------------------
    admin = {"Authorization": "Bearer " + service_token(key, "loadgen", "echo", "admin")}
    st, _, _ = echo.request("POST", "/admin/faults", {"error_ratio": 1.0}, auth)
    check_eq(st, 403, "faults need scope admin")
    st, _, body = echo.request("POST", "/admin/faults", {"error_ratio": 2}, admin)
    check_eq(st, 400, "error_ratio above 1: 400")
    st, _, body = echo.request("POST", "/admin/faults", {"error_ratio": 1.0, "latency_ms": 50},
                               admin)
    check_eq((st, json_of(body)), (200, {"latency_ms": 50, "error_ratio": 1.0}), "faults set")
    t0 = time.time()
    st, _, body = echo.request("GET", "/v1/echo/hello")
    check_eq((st, json_of(body)), (500, {"error": "injected fault"}), "injected 500")
    check(time.time() - t0 >= 0.05, "injected latency")
    st, _, _ = echo.request("GET", "/health")
    check_eq(st, 200, "probes are never faulted")
    st, _, _ = echo.request("DELETE", "/admin/faults", headers=admin)
    check_eq(st, 200, "faults cleared")
    st, _, _ = echo.request("GET", "/v1/echo/hello")
    check_eq(st, 200, "healthy again")

    # --- SIGTERM drains the request in flight ----------------------------------
    result = {}

    def slow():
        result["r"] = echo.request("GET", "/v1/echo/slow?ms=1500")

    th = threading.Thread(target=slow)
    th.start()
    time.sleep(0.5)
    proc = echo.proc
    proc.send_signal(15)
    time.sleep(0.2)
    try:
        http("GET", echo.url + "/health", timeout=2)
        check(False, "new connections are refused while draining")
    except OSError:
        pass
    th.join(10)
    check_eq(result.get("r", (None,))[0], 200, "the request in flight finished")
    check_eq(proc.wait(timeout=20), 0, "exit status 0 after SIGTERM")
    log = echo.read_log()
    check("draining 1 in-flight" in log, "drain logged: " + log[-500:])
finally:
    if echo is not None:
        echo.cleanup()
    srv.cleanup()
finish()
