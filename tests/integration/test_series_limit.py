"""The per-tenant active series limit (max_active_series in --limits FILE):
new series past the limit are refused point by point with a partial success
that says why, series already active keep flowing, span-derived series count
too (the spans themselves are stored), refusals and active series are in
/metrics per tenant, a SIGHUP reload changes the limit, series idle for
--active-series-window stop counting, and the count survives a restart (also
after kill -9, with series still in the WAL): read back from storage, so a
new series is refused and a known one accepted.

usage: test_series_limit.py SIGHTLINE_BINARY"""

import json
import os
import signal
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, check_eq, finish, rand_hex, request, span  # noqa: E402

LIMITS = """
tenants:
  capped:
    max_active_series: {limit}
"""


def gauge_request(rooms):
    now = str(time.time_ns())
    points = [{"timeUnixNano": now, "asDouble": 20.5,
               "attributes": [{"key": "room", "value": {"stringValue": r}}]} for r in rooms]
    return {"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "sensors"}}]},
        "scopeMetrics": [{"metrics": [{"name": "temp", "gauge": {"dataPoints": points}}]}]}]}


def main():
    binary = sys.argv[1]
    work = tempfile.mkdtemp(prefix="sightline-series-")
    path = os.path.join(work, "limits.yaml")
    with open(path, "w") as f:
        f.write(LIMITS.format(limit=30))
    srv = Server(binary, ["--limits", path, "--active-series-window", "3s",
                          "--cut-interval", "200ms"])
    srv.start()

    def send(tenant, rooms):
        st, _, body = srv.post("/v1/metrics", json.dumps(gauge_request(rooms)).encode(),
                               "application/json", headers={"X-Scope-OrgID": tenant})
        return st, json.loads(body) if body else {}

    def count(tenant, expr):
        q = urllib.parse.urlencode({"query": expr})
        st, doc = srv.get_json(f"/api/v1/query?{q}", headers={"X-Scope-OrgID": tenant})
        res = doc.get("data", {}).get("result", []) if st == 200 else []
        return int(float(res[0]["value"][1])) if res else 0

    def metric(line_start):
        _, _, body = srv.get("/metrics")
        for line in body.decode().splitlines():
            if line.startswith(line_start + " "):
                return float(line.split()[-1])
        return None

    # 40 new series against a limit of 30: the last 10 points are refused.
    st, doc = send("capped", [f"r{i}" for i in range(40)])
    check_eq(st, 200, "a request partly over the series limit is accepted")
    ps = doc.get("partialSuccess", {})
    check_eq(ps.get("rejectedDataPoints"), "10", "points of series past the limit are rejected")
    msg = ps.get("errorMessage", "")
    check("max_active_series 30" in msg and "temp" in msg,
          f"the partial success says which limit and metric: {msg!r}")
    check_eq(count("capped", "count(temp)"), 30, "30 series stored")
    check_eq(metric('sightline_active_series{tenant="capped"}'), 30, "active series in /metrics")
    discarded = 'sightline_discarded_samples_total{tenant="capped",reason="per_tenant_series_limit"}'
    check_eq(metric(discarded), 10, "refused samples counted per tenant")

    # Active series keep flowing; another tenant has no limit.
    st, doc = send("capped", [f"r{i}" for i in range(30)])
    check_eq((st, doc.get("partialSuccess")), (200, None), "known series are always accepted")
    st, doc = send("free", [f"r{i}" for i in range(40)])
    check_eq((st, doc.get("partialSuccess")), (200, None), "a tenant without a limit")
    check_eq(count("free", "count(temp)"), 40, "... stores every series")

    # Spans: stored; their RED series are refused (20 per group) and counted.
    tid = rand_hex(16)
    body = json.dumps(request("shop", [span(tid, rand_hex(8), "GET /")])).encode()
    st, _, data = srv.post("/v1/traces", body, "application/json",
                           headers={"X-Scope-OrgID": "capped"})
    check_eq((st, json.loads(data).get("partialSuccess")), (200, None),
             "spans are accepted at the series limit")
    st, _ = srv.get_json(f"/api/traces/{tid}", headers={"X-Scope-OrgID": "capped"})
    check_eq(st, 200, "... and stored")
    check_eq(count("capped", "count(traces_span_metrics_calls_total)"), 0,
             "span-derived series over the limit are not stored")
    check_eq(metric(discarded), 30, "... and counted")

    # SIGHUP raises the limit: the refused series fit now.
    with open(path, "w") as f:
        f.write(LIMITS.format(limit=100))
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and "tenant limits loaded" not in srv.read_log():
        time.sleep(0.1)
    time.sleep(0.2)
    st, doc = send("capped", [f"r{i}" for i in range(40)])
    check_eq((st, doc.get("partialSuccess")), (200, None), "a reloaded limit admits more series")
    check_eq(count("capped", "count(temp)"), 40, "40 series stored after the reload")

    # Back to 30 with 40 active: new series wait until idle ones expire (3 s).
    with open(path, "w") as f:
        f.write(LIMITS.format(limit=30))
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    st, doc = send("capped", ["new0"])
    check_eq(doc.get("partialSuccess", {}).get("rejectedDataPoints"), "1",
             "a lowered limit refuses new series")
    time.sleep(3.5)
    st, doc = send("capped", [f"n{i}" for i in range(30)])
    check_eq((st, doc.get("partialSuccess")), (200, None),
             "series idle for the window stop counting")
    check_eq(metric('sightline_active_series{tenant="capped"}'), 30, "30 active again")
    check_eq(srv.stop(), 0, "clean stop")
    srv.cleanup()
    restart(binary, work)
    finish()


def restart(binary, work):
    path = os.path.join(work, "limits-restart.yaml")
    with open(path, "w") as f:
        f.write(LIMITS.format(limit=20))
    srv = Server(binary, ["--limits", path, "--cut-interval", "200ms"])
    srv.start()

    def send(rooms):
        st, _, body = srv.post("/v1/metrics", json.dumps(gauge_request(rooms)).encode(),
                               "application/json", headers={"X-Scope-OrgID": "capped"})
        return st, json.loads(body) if body else {}

    def gauge(name):
        _, _, body = srv.get("/metrics")
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None

    def active():
        return gauge('sightline_active_series{tenant="capped"}')

    # Half the series are cut into the window, the other half stay in the WAL
    # when the process is killed.
    st, doc = send([f"r{i}" for i in range(10)])
    check_eq((st, doc.get("partialSuccess")), (200, None), "10 series before the restart")
    deadline = time.time() + 10
    while time.time() < deadline and gauge("sightline_storage_wal_records") != 0:
        time.sleep(0.1)
    check_eq(gauge("sightline_storage_wal_records"), 0, "the first 10 were cut into a window")
    st, doc = send([f"r{i}" for i in range(10, 20)])
    check_eq((st, doc.get("partialSuccess")), (200, None), "... and 10 more: at the limit")
    srv.stop(signal.SIGKILL)
    srv.start()
    deadline = time.time() + 10
    while time.time() < deadline and active() != 20:
        time.sleep(0.1)
    check_eq(active(), 20, "active series read back at start, before any request")
    st, doc = send(["new"])
    check_eq(doc.get("partialSuccess", {}).get("rejectedDataPoints"), "1",
             "after a restart a new series past the limit is refused")
    st, doc = send([f"r{i}" for i in range(20)])
    check_eq((st, doc.get("partialSuccess")), (200, None),
             "after a restart the known series are accepted")
    check_eq(srv.stop(), 0, "clean stop")
    # A clean stop, then a start: the same again.
    srv.start()
    st, doc = send(["new"])
    check_eq(doc.get("partialSuccess", {}).get("rejectedDataPoints"), "1",
             "after a clean restart a new series is refused")
    check_eq(active(), 20, "20 active")
    check_eq(srv.stop(), 0, "clean stop")
    srv.cleanup()


if __name__ == "__main__":
    main()
