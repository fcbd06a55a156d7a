"""Per-tenant limits from --limits FILE: ingestion rate (429 with
Retry-After over HTTP, UNAVAILABLE with RetryInfo over gRPC, nothing of a
refused request stored), attribute count and value length (dropped and cut,
counted), retention per tenant and signal, SIGHUP reload (a broken file keeps
the limits in force).

usage: test_limits.py SIGHTLINE_BINARY OTLP_GEN CLIENT_DIR"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from harness import Server, check, check_eq, finish, rand_hex, request, span

LIMITS = """
defaults:
  max_attributes_per_item: 3
  max_attribute_value_length: 8
tenants:
  slow:
    ingestion_rate_spans: 10
    ingestion_burst_seconds: 1
  short:
    retention_traces: 2s
    retention_logs: 2s
"""


def attr(k, v):
    return {"key": k, "value": {"stringValue": v}}


def main():
    binary, otlp_gen, client_dir = sys.argv[1:4]
    work = tempfile.mkdtemp(prefix="sightline-limits-")
    path = os.path.join(work, "limits.yaml")
    with open(path, "w") as f:
        f.write(LIMITS)
    srv = Server(binary, ["--limits", path, "--partition", "1s", "--cut-interval", "200ms"])
    srv.start()

    def post(tenant, spans, kind="application/json"):
        body = json.dumps(request("svc", spans)).encode()
        return srv.post("/v1/traces", body, kind, headers={"X-Scope-OrgID": tenant})

    def trace(tenant, tid):
        return srv.get_json(f"/api/traces/{tid}", headers={"X-Scope-OrgID": tenant})

    # Attributes: the first three kept, string values cut on a UTF-8 boundary.
    tid = rand_hex(16)
    attrs = [attr("a1", "abcdefghijklmnop"), attr("a2", "\u00e9" * 5), attr("a3", "ok"),
             attr("a4", "x"), attr("a5", "y")]
    st, _, _ = post("default", [span(tid, rand_hex(8), "op", attrs=attrs)])
    check_eq(st, 200, "a span over the attribute limits is accepted")
    st, doc = trace("default", tid)
    check_eq(st, 200, "... and stored")
    tags = {t["key"]: t["value"] for t in doc["data"][0]["spans"][0]["tags"]}
    check("a4" not in tags and "a5" not in tags, f"attributes over the limit dropped: {tags}")
    check_eq(tags.get("a1"), "abcdefgh", "a long value is cut to 8 bytes")
    check_eq(tags.get("a2"), "\u00e9" * 4, "a cut never splits a UTF-8 character")
    check_eq(tags.get("a3"), "ok", "short values are kept")
    st, _, body = srv.get("/metrics")
    check(b"sightline_attributes_limited_total 4" in body, "dropped and cut attributes counted")

    # Logs get the same attribute limits.
    logs = {"resourceLogs": [{"resource": {"attributes": [attr("service.name", "limited")]},
                              "scopeLogs": [{"logRecords": [{
                                  "timeUnixNano": str(time.time_ns()),
                                  "body": {"stringValue": "hello"},
                                  "attributes": attrs}]}]}]}
    st, _, _ = srv.post("/v1/logs", json.dumps(logs).encode(), "application/json")
    check_eq(st, 200, "a log record over the limits is accepted")
    st, doc = srv.get_json("/api/logs?service=limited")
    rec = doc["data"][0] if st == 200 and doc.get("data") else {}
    check_eq(len(rec.get("attributes", {})), 3, "a log record keeps three attributes")
    check_eq(rec.get("dropped_attributes_count"), 2, "... and counts the two dropped")

    # Rate: 10 spans/s with a one-second bucket for tenant "slow".
    statuses = []
    refused = None
    for _ in range(4):
        t = rand_hex(16)
        st, hdrs, data = post("slow", [span(t, rand_hex(8), f"op{i}") for i in range(8)])
        statuses.append(st)
        if st == 429 and refused is None:
            refused = (t, hdrs, data)
    check_eq(statuses[:2], [200, 200], "requests within the bucket pass")
    check(429 in statuses, f"a tenant over its rate gets 429 ({statuses})")
    if refused:
        t, hdrs, data = refused
        check(int(hdrs.get("retry-after", "0")) >= 1, "429 carries Retry-After")
        check(b"rate limit" in data, "the 429 says why")
        st, _ = trace("slow", t)
        check_eq(st, 404, "nothing of a refused request is stored")
        wait = int(hdrs.get("retry-after", "1"))
        time.sleep(wait + 0.2)
        st, _, _ = post("slow", [span(rand_hex(16), rand_hex(8), "later")])
        check_eq(st, 200, "after Retry-After the tenant may send again")
    st, _, _ = post("other", [span(rand_hex(16), rand_hex(8), f"op{i}") for i in range(50)])
    check_eq(st, 200, "another tenant is not limited")

    # gRPC: UNAVAILABLE with RetryInfo.
    payload = os.path.join(work, "req.pb")
    subprocess.run([otlp_gen, "--spans", "100", "--out", payload], check=True)
    codes = []
    for _ in range(3):
        p = subprocess.run(["node", os.path.join(client_dir, "client.mjs"), "raw",
                            str(srv.grpc_port),
                            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                            payload, "x-scope-orgid=slow"],
                           capture_output=True, text=True, timeout=60, cwd=client_dir)
        codes.append(json.loads(p.stdout.strip().splitlines()[-1]))
    check(any(c["code"] == 14 and c.get("retry_info") for c in codes),
          f"gRPC over the rate: UNAVAILABLE with RetryInfo ({codes})")

    # Retention per tenant: "short" keeps 2 s of traces, "keep" the default.
    t_short, t_keep = rand_hex(16), rand_hex(16)
    check_eq(post("short", [span(t_short, rand_hex(8), "old")])[0], 200, "short accepted")
    check_eq(post("keep", [span(t_keep, rand_hex(8), "old")])[0], 200, "keep accepted")
    deadline = time.time() + 15
    while time.time() < deadline and trace("short", t_short)[0] != 404:
        time.sleep(0.3)
    check_eq(trace("short", t_short)[0], 404, "tenant short's old trace is dropped")
    check_eq(trace("keep", t_keep)[0], 200, "tenant keep's trace of the same age stays")

    # SIGHUP: lift the rate; a broken file keeps what is in force.
    with open(path, "w") as f:
        f.write(LIMITS.replace("ingestion_rate_spans: 10", "ingestion_rate_spans: 0"))
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    statuses = [post("slow", [span(rand_hex(16), rand_hex(8), "x") for _ in range(40)])[0]
                for _ in range(4)]
    check_eq(statuses, [200] * 4, "a reloaded file lifts the rate limit")
    with open(path, "w") as f:
        f.write("defaults:\n  max_attributes_per_item: lots\n")
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    check("tenant limits not loaded" in srv.read_log(), "a broken limits file is logged")
    check("limits.yaml:2" in srv.read_log(), "... with its line")
    tid = rand_hex(16)
    post("default", [span(tid, rand_hex(8), "op", attrs=attrs)])
    st, doc = trace("default", tid)
    check_eq(len([t for t in doc["data"][0]["spans"][0]["tags"] if t["key"].startswith("a")]),
             3, "the limits in force stay after a broken reload")
    check_eq(srv.stop(), 0, "clean stop")
    srv.cleanup()

    # A broken file at start-up is refused.
    bad = Server(binary, ["--limits", path])
    try:
        bad.start(timeout=5)
        check(False, "a broken limits file stops start-up")
    except RuntimeError as e:
        check("limits.yaml:2" in str(e), "start-up names the bad line")
    bad.cleanup()
    finish()


if __name__ == "__main__":
    main()
