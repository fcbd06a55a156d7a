"""Integration test of the Prometheus HTTP API on the real binary: envelope,
result types, string-encoded values and float-second timestamps, GET and
POST-form queries, parameter errors (400 bad_data with the error position),
execution errors (422), timeouts (503), series/labels/label values/metadata
shapes and their errors, tenancy header validation.

Usage: test_prom_api.py SIGHTLINE_BINARY
"""

import http.client
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, check_eq, finish  # noqa: E402


def get(srv, path, params=None, headers=None):
    q = "?" + urllib.parse.urlencode(params, doseq=True) if params else ""
    status, body = srv.get_json(path + q, headers)
    return status, body


def post_form(srv, path, params, content_type="application/x-www-form-urlencoded"):
    c = http.client.HTTPConnection("127.0.0.1", srv.query_port, timeout=60)
    body = urllib.parse.urlencode(params, doseq=True)
    c.request("POST", path, body=body, headers={"Content-Type": content_type})
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, {"_raw": data.decode(errors="replace")}


def raw_request(srv, method, path, body, headers=None):
    """Sends one request and returns its status, body discarded."""
    c = http.client.HTTPConnection("127.0.0.1", srv.query_port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def expect_error(status, body, code, etype, msg):
    check_eq(status, code, f"{msg}: status")
    check_eq(body.get("status"), "error", f"{msg}: status field")
    check_eq(body.get("errorType"), etype, f"{msg}: errorType")
    check(isinstance(body.get("error"), str) and body["error"], f"{msg}: error message")


def wait_wal_empty(srv, timeout=20):
    """Waits for the cutter to have taken every WAL record."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, _, raw = srv.get("/metrics")
        for line in raw.decode().splitlines():
            if line.startswith("sightline_storage_wal_records ") and float(line.split()[1]) == 0:
                return
        time.sleep(0.2)
    check(False, "the WAL was cut")


def main():
    srv = Server(sys.argv[1]).start()
    try:
        # Scalars, vectors and strings without any stored series.
        st, b = get(srv, "/api/v1/query", {"query": "1 + 2 * 3", "time": "1700000000.5"})
        check_eq(st, 200, "scalar status")
        check_eq(b, {"status": "success",
                     "data": {"resultType": "scalar", "result": [1700000000.5, "7"]}}, "scalar")
        st, b = get(srv, "/api/v1/query", {"query": "vector(0.1)", "time": "1700000000"})
        check_eq(b.get("data"), {"resultType": "vector",
                                 "result": [{"metric": {}, "value": [1700000000, "0.1"]}]},
                 "vector")
        st, b = get(srv, "/api/v1/query", {"query": '"hi"', "time": "2023-11-14T22:13:20Z"})
        check_eq(b.get("data"), {"resultType": "string", "result": [1700000000, "hi"]},
                 "string with an RFC 3339 time")
        st, b = get(srv, "/api/v1/query", {"query": "1/0", "time": "10"})
        check_eq(b["data"]["result"], [10, "+Inf"], "Inf is string-encoded")
        st, b = get(srv, "/api/v1/query", {"query": "time()"})
        check_eq(st, 200, "time defaults to now")

        # Range queries: GET and POST form.
        params = {"query": "time() * 2", "start": "100", "end": "160", "step": "30"}
        st, b = get(srv, "/api/v1/query_range", params)
        want = {"resultType": "matrix",
                "result": [{"metric": {}, "values": [[100, "200"], [130, "260"], [160, "320"]]}]}
        check_eq(b.get("data"), want, "range query")
        st, b = post_form(srv, "/api/v1/query_range", params)
        check_eq((st, b.get("data")), (200, want), "range query as a POST form")
        st, b = post_form(srv, "/api/v1/query", {"query": "vector(2)", "time": "5"})
        check_eq(b.get("data", {}).get("result"), [{"metric": {}, "value": [5, "2"]}],
                 "instant query as a POST form")
        st, b = get(srv, "/api/v1/query_range",
                    {"query": "vector(1)", "start": "0", "end": "1.5", "step": "0.5"})
        check_eq([p[0] for p in b["data"]["result"][0]["values"]], [0, 0.5, 1, 1.5],
                 "fractional steps")
        st, b = get(srv, "/api/v1/query_range",
                    {"query": "vector(1)", "start": "0", "end": "120", "step": "1m"})
        check_eq(len(b["data"]["result"][0]["values"]), 3, "duration step")

        # Errors.
        st, b = get(srv, "/api/v1/query", {"query": "sum(rate(x[5m])"})
        expect_error(st, b, 400, "bad_data", "unclosed paren")
        check(b.get("error", "").startswith("1:16: parse error"), f"error position: {b}")
        st, b = get(srv, "/api/v1/query", {"query": "rate(x)"})
        expect_error(st, b, 400, "bad_data", "type error")
        st, b = get(srv, "/api/v1/query", {})
        expect_error(st, b, 400, "bad_data", "missing query")
        st, b = get(srv, "/api/v1/query", {"query": "1", "time": "yesterday"})
        expect_error(st, b, 400, "bad_data", "bad time")
        st, b = get(srv, "/api/v1/query_range", {"query": "1", "start": "0", "end": "10"})
        expect_error(st, b, 400, "bad_data", "missing step")
        st, b = get(srv, "/api/v1/query_range",
                    {"query": "1", "start": "10", "end": "0", "step": "1"})
        expect_error(st, b, 400, "bad_data", "end before start")
        st, b = get(srv, "/api/v1/query_range",
                    {"query": "1", "start": "0", "end": "10", "step": "0"})
        expect_error(st, b, 400, "bad_data", "zero step")
        st, b = get(srv, "/api/v1/query_range",
                    {"query": "1", "start": "0", "end": "100000", "step": "1"})
        expect_error(st, b, 400, "bad_data", "too many points")
        st, b = get(srv, "/api/v1/query_range",
                    {"query": "x[5m]", "start": "0", "end": "10", "step": "1"})
        expect_error(st, b, 400, "bad_data", "range vector in a range query")
        st, b = get(srv, "/api/v1/query",
                    {"query": 'label_replace(vector(1), "1x", "a", "b", "(.*)")'})
        expect_error(st, b, 422, "execution", "invalid label name")
        st, b = get(srv, "/api/v1/query",
                    {"query": "count_over_time(vector(1)[30d:1ms])", "timeout": "50ms"})
        expect_error(st, b, 503, "timeout", "timeout")
        st, b = get(srv, "/api/v1/query", {"query": "count_over_time(vector(1)[3000d:1ms])"})
        expect_error(st, b, 422, "execution", "too many samples")
        st, b = post_form(srv, "/api/v1/query", {"query": "1"}, "text/plain")
        expect_error(st, b, 400, "bad_data", "POST without a form body")
        status = raw_request(srv, "POST", "/api/v1/query", b"query=" + b"1" * (2 << 20),
                             {"Content-Type": "application/x-www-form-urlencoded"})
        check_eq(status, 413, "oversized form body")
        check_eq(raw_request(srv, "PUT", "/api/v1/query", b"query=1"), 405, "PUT")

        # Series, labels, label values, metadata (no metric stored yet).
        st, b = get(srv, "/api/v1/series", {"match[]": ['up{job="x"}', "other"]})
        check_eq((st, b), (200, {"status": "success", "data": []}), "series")
        st, b = get(srv, "/api/v1/series", {})
        expect_error(st, b, 400, "bad_data", "series without match[]")
        st, b = get(srv, "/api/v1/series", {"match[]": "rate(up[5m])"})
        expect_error(st, b, 400, "bad_data", "series with an expression")
        st, b = get(srv, "/api/v1/series", {"match[]": 'up{a=~"("}'})
        expect_error(st, b, 400, "bad_data", "series with a bad regex")
        st, b = post_form(srv, "/api/v1/series", {"match[]": "up", "start": "0", "end": "100"})
        check_eq((st, b.get("data")), (200, []), "series as a POST form")
        st, b = get(srv, "/api/v1/labels")
        check_eq((st, b), (200, {"status": "success", "data": []}), "labels")
        st, b = get(srv, "/api/v1/labels", {"match[]": "up", "start": "x"})
        expect_error(st, b, 400, "bad_data", "labels with a bad start")
        st, b = get(srv, "/api/v1/label/job/values")
        check_eq((st, b), (200, {"status": "success", "data": []}), "label values")
        st, b = get(srv, "/api/v1/label/__name__/values", {"match[]": "up"})
        check_eq(st, 200, "metric names")
        st, b = get(srv, "/api/v1/label/bad-name/values")
        expect_error(st, b, 400, "bad_data", "invalid label name")
        st, b = get(srv, "/api/v1/metadata", {"limit": "5"})
        check_eq((st, b), (200, {"status": "success", "data": {}}), "metadata")
        st, b = get(srv, "/api/v1/query", {"query": "1"}, {"X-Scope-OrgID": "bad tenant!"})
        check_eq(st, 400, "invalid tenant")
        st, b = get(srv, "/api/v1/query", {"query": "up"}, {"X-Scope-OrgID": "team-a"})
        check_eq(b.get("data"), {"resultType": "vector", "result": []}, "tenant query")
        # Tenancy on stored metrics: a series sent as team-a is seen by team-a only.
        now_ns = time.time_ns()
        gauge = {"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
            "scopeMetrics": [{"metrics": [{"name": "tenant_probe", "gauge": {"dataPoints": [
                {"timeUnixNano": str(now_ns - 10_000_000_000), "asDouble": 42}]}}]}]}]}
        status, _, _ = srv.post("/v1/metrics", json.dumps(gauge).encode(), "application/json",
                                headers={"X-Scope-OrgID": "team-a"})
        check_eq(status, 200, "metrics ingest for team-a")
        t = f"{now_ns / 1e9:.3f}"
        st, b = get(srv, "/api/v1/query", {"query": "tenant_probe", "time": t},
                    {"X-Scope-OrgID": "team-a"})
        check_eq([(s["metric"].get("job"), s["value"][1]) for s in b["data"]["result"]],
                 [("svc", "42")], "team-a sees its series")
        st, b = get(srv, "/api/v1/query", {"query": "tenant_probe", "time": t})
        check_eq(b["data"]["result"], [], "the default tenant does not")
        st, b = get(srv, "/api/v1/series", {"match[]": "tenant_probe"}, {"X-Scope-OrgID": "team-b"})
        check_eq(b.get("data"), [], "nor does team-b's series API")
        st, b = get(srv, "/api/v1/label/job/values", {}, {"X-Scope-OrgID": "team-a"})
        check_eq(b.get("data"), ["svc"], "team-a's label values")
        # Label names and values come from the label index (postings), restricted
        # to the time range by window and WAL record as Prometheus does by block:
        # two series sent in one request at t and t + 60 s are both listed for a
        # range around t, a range without data lists nothing, and a value past
        # the index's key limit (480 bytes) comes back whole, before and after
        # the cut.
        long_value = "v" * 600
        t0 = now_ns - 120_000_000_000
        two = {"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "ix"}}]},
            "scopeMetrics": [{"metrics": [
                {"name": "first_probe", "gauge": {"dataPoints": [
                    {"timeUnixNano": str(t0), "asDouble": 1,
                     "attributes": [{"key": "long", "value": {"stringValue": long_value}}]}]}},
                {"name": "second_probe", "gauge": {"dataPoints": [
                    {"timeUnixNano": str(t0 + 60_000_000_000), "asDouble": 2,
                     "attributes": [{"key": "zone", "value": {"stringValue": "z1"}}]}]}}]}]}]}
        idx = {"X-Scope-OrgID": "idx"}
        status, _, _ = srv.post("/v1/metrics", json.dumps(two).encode(), "application/json",
                                headers=idx)
        check_eq(status, 200, "metrics ingest for the label index")
        around = {"start": f"{t0 / 1e9 - 1:.3f}", "end": f"{t0 / 1e9 + 1:.3f}"}
        for phase in ("wal", "cut"):
            if phase == "cut":
                wait_wal_empty(srv)
            st, b = get(srv, "/api/v1/labels", around, idx)
            check_eq(b.get("data"), ["__name__", "job", "long", "service_name", "zone"],
                     f"{phase}: label names around the first sample")
            st, b = get(srv, "/api/v1/label/__name__/values", around, idx)
            check_eq(b.get("data"), ["first_probe", "second_probe"], f"{phase}: metric names")
            st, b = get(srv, "/api/v1/labels", {"start": "1000", "end": "2000"}, idx)
            check_eq(b.get("data"), [], f"{phase}: no label names outside the data")
            st, b = get(srv, "/api/v1/label/long/values", {}, idx)
            check_eq(b.get("data"), [long_value], f"{phase}: a long value is whole")
            st, b = get(srv, "/api/v1/label/long/values", {"match[]": "{zone='z1'}"}, idx)
            check_eq(b.get("data"), [], f"{phase}: values of matching series only")
            st, b = get(srv, "/api/v1/labels", {"match[]": "second_probe"}, idx)
            check_eq(b.get("data"), ["__name__", "job", "service_name", "zone"],
                     f"{phase}: names of matching series only")
            st, b = get(srv, "/api/v1/label/zone/values", {"match[]": "{long=~'v+'}"}, idx)
            check_eq(b.get("data"), [], f"{phase}: a regex over the long value")
        st, body = srv.get_json("/metrics")
        status, _, raw = srv.get("/metrics")
        check(b'handler="prom_query"' in raw, "query requests are counted in /metrics")
    finally:
        srv.cleanup()
    finish()


if __name__ == "__main__":
    main()
