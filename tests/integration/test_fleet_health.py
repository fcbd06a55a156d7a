"""The live service graph and fleet health on the real binary:

- spans of frontend (server) -> cart (server, child of frontend's client
  span, sent first, before its parent) make the edge frontend -> cart on
  /api/dependencies (Jaeger's shape) and /api/service-map (calls, errors,
  latency), and both services healthy on /api/fleet/health with their
  request rate, error ratio, latency quantiles and instance count;
- cart's error ratio crossing --health-max-error-ratio turns it degraded,
  with the reason;
- a restart keeps the graph (rebuilt from the stored spans), and a range
  before the last 24 hours is answered from the stored spans;
- a firing alert labelled service_name=cart is listed and degrades it;
- a failing active check (a /health endpoint served by this test answering
  503) makes its service down, with the reason;
- when telemetry stops, both turn down after --health-down-after.

usage: test_fleet_health.py SIGHTLINE_BINARY"""

import http.server
import os
import shutil
import threading
import sys
import tempfile
import time

from harness import Server, check, check_eq, finish, rand_hex, request, span

binary = sys.argv[1]

work = tempfile.mkdtemp(prefix="sightline-fleet-")
rules = os.path.join(work, "rules")
os.makedirs(rules)
with open(os.path.join(rules, "cart.yml"), "w") as f:
    f.write("""groups:
  - name: cart
    interval: 1s
    rules:
      - alert: CartCheck
        expr: label_replace(vector(1), "service_name", "cart", "", "")
        labels: {severity: ticket}
""")


class Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        self.send_response(Health.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


health_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
threading.Thread(target=health_srv.serve_forever, daemon=True).start()
check_url = f"http://127.0.0.1:{health_srv.server_address[1]}/health"


def inst(name):
    return [{"key": "service.instance.id", "value": {"stringValue": name}}]


def send_calls(srv, n, cart_errors=0, ago_ns=0):
    for i in range(n):
        tid = rand_hex(16)
        root, client, server = rand_hex(8), rand_hex(8), rand_hex(8)
        now = time.time_ns() - ago_ns
        err = {"code": 2} if i < cart_errors else None
        # the child first: its parent is stored in a later request
        st, _, _ = srv.post_json(request("cart", [
            span(tid, server, "POST /cart", parent=client, kind=2, start_ns=now - 8_000_000,
                 dur_ns=5_000_000, status=err)], inst(f"cart-{i % 2}")))
        check_eq(st, 200, "cart spans accepted")
        st, _, _ = srv.post_json(request("frontend", [
            span(tid, root, "GET /", kind=2, start_ns=now - 10_000_000, dur_ns=9_000_000),
            span(tid, client, "POST cart", parent=root, kind=3, start_ns=now - 9_000_000,
                 dur_ns=7_000_000)], inst("fe-0")))
        check_eq(st, 200, "frontend spans accepted")


def health(srv):
    st, doc = srv.get_json("/api/fleet/health?window=5m")
    check_eq(st, 200, "/api/fleet/health")
    return {s["service"]: s for s in doc.get("data", {}).get("services", [])}


def wait(pred, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    return None


srv = Server(binary, ["--cut-interval", "200ms", "--health-max-error-ratio", "0.2",
                      "--health-down-after", "4s", "--health-max-p95", "1s"]).start()
try:
    send_calls(srv, 10)
    end_ms = lambda: time.time_ns() // 1_000_000

    def deps():
        st, doc = srv.get_json(f"/api/dependencies?endTs={end_ms()}&lookback=600000")
        return {(d["parent"], d["child"]): d["callCount"] for d in doc.get("data") or []}
    got = wait(lambda: deps().get(("frontend", "cart")) == 10 and deps())
    check_eq(got, {("frontend", "cart"): 10}, "live dependency frontend -> cart (Jaeger shape)")

    # Spans of three days ago: outside the live graph's 24 hours, a range
    # there is answered from the stored spans.
    day_ms = 86_400_000
    send_calls(srv, 4, cart_errors=1, ago_ns=3 * day_ms * 1_000_000)

    def old_deps():
        st, doc = srv.get_json(f"/api/dependencies?endTs={end_ms() - 2 * day_ms}"
                               f"&lookback={2 * day_ms}")
        return {(d["parent"], d["child"]): d["callCount"] for d in doc.get("data") or []}
    got = wait(lambda: old_deps().get(("frontend", "cart")) == 4 and old_deps())
    check_eq(got, {("frontend", "cart"): 4}, "dependencies of a range before the last 24 h")
    st, doc = srv.get_json(f"/api/service-map?endTs={end_ms() - 2 * day_ms}"
                           f"&lookback={2 * day_ms}")
    old_edges = doc.get("data", {}).get("edges", []) if st == 200 else []
    check_eq([(e["callCount"], e["errors"]) for e in old_edges], [(4, 1)],
             "old range: calls and errors of the edge")
    check_eq(deps(), {("frontend", "cart"): 10}, "old spans stay out of the live range")

    st, doc = srv.get_json(f"/api/service-map?endTs={end_ms()}&lookback=600000")
    check_eq(st, 200, "/api/service-map")
    edges = doc.get("data", {}).get("edges", [])
    check_eq(len(edges), 1, "one edge")
    if edges:
        e = edges[0]
        check_eq((e["parent"], e["child"], e["callCount"], e["errors"]),
                 ("frontend", "cart", 10, 0), "edge counts")
        check(e["p50"] is not None and 0.004 <= e["p50"] <= 0.008, f"edge p50 ~5ms: {e['p50']}")
    nodes = {n["service"]: n for n in doc.get("data", {}).get("nodes", [])}
    check_eq(sorted(nodes), ["cart", "frontend"], "service-map nodes")

    h = health(srv)
    check_eq({k: v["status"] for k, v in h.items()}, {"cart": "healthy", "frontend": "healthy"},
             "both healthy")
    if "cart" in h:
        check_eq(h["cart"]["calls"], 10, "cart requests")
        check_eq(h["cart"]["instances"], 2, "cart instances")
        check_eq(h["cart"]["errorRatio"], 0, "cart error ratio")
        check(h["cart"]["requestRate"] > 0, "request rate")
        check(all(h["cart"][q] is not None for q in ("p50", "p95", "p99")), "latency quantiles")
        check(h["cart"]["lastSeen"].endswith("Z"), "lastSeen")

    # --- errors above the threshold: degraded ---
    send_calls(srv, 10, cart_errors=8)  # 8 errors of 20 calls: 40% > 20%
    h = wait(lambda: (lambda h: h if h.get("cart", {}).get("status") == "degraded" else None)(
        health(srv)))
    check(h is not None, "cart degraded when its error ratio crosses the threshold")
    if h:
        check(any(r.startswith("error ratio 0.") and r.endswith(" above 0.2")
                  for r in h["cart"]["reasons"]),
              f"reason given: {h['cart']['reasons']}")
        check_eq(h["frontend"]["status"], "healthy", "frontend still healthy")
    srv.stop()

    # --- a firing alert degrades its service ---
    srv = Server(binary, ["--cut-interval", "200ms", "--rules-dir", rules,
                          "--health-down-after", "4s", "--health-checks", f"cart={check_url}",
                          "--health-check-interval", "200ms"], data_dir=srv.data_dir).start()
    # The graph is rebuilt from the stored spans: a restart loses none of it.
    got = wait(lambda: deps().get(("frontend", "cart")) == 20 and deps())
    check_eq(got, {("frontend", "cart"): 20}, "dependencies survive a restart")
    st, doc = srv.get_json(f"/api/service-map?endTs={end_ms()}&lookback=600000")
    edges = doc.get("data", {}).get("edges", []) if st == 200 else []
    check_eq([(e["parent"], e["child"], e["callCount"], e["errors"]) for e in edges],
             [("frontend", "cart", 20, 8)], "service-map edge counts after the restart")
    send_calls(srv, 3)
    h = wait(lambda: (lambda h: h if h.get("cart", {}).get("firingAlerts") else None)(
        health(srv)))
    check(h is not None, "firing alert listed on the health page")
    if h:
        check_eq(h["cart"]["status"], "degraded", "a firing alert degrades the service")
        check_eq(h["cart"]["firingAlerts"][0]["labels"]["alertname"], "CartCheck", "alert named")
        check_eq(h["frontend"]["firingAlerts"], [], "no alert on frontend")

    # --- a failing active check: down ---
    Health.status = 503
    h = wait(lambda: (lambda h: h if h.get("cart", {}).get("status") == "down" else None)(
        health(srv)))
    check(h is not None, "a failing active check makes its service down")
    if h:
        check(any(r.startswith(f"active check {check_url} failed: HTTP 503")
                  for r in h["cart"]["reasons"]), f"check reason: {h['cart']['reasons']}")
    Health.status = 200

    # --- telemetry stops: down ---
    h = wait(lambda: (lambda h: h if all(s["status"] == "down" for s in h.values()) and h
                      else None)(health(srv)), timeout=30)
    check(h is not None, "both down once their telemetry stops")
    if h:
        check(any("no telemetry for" in r for r in h["cart"]["reasons"]),
              f"down reason: {h['cart']['reasons']}")
finally:
    srv.cleanup()
    shutil.rmtree(work, ignore_errors=True)

finish()
