"""End to end over the wire: OTLP/HTTP logs in (protobuf, JSON, gzip), out
through GET /api/logs and /api/traces/{id}/logs. Checks every field, every
query parameter, status codes, partial success, and that a selective word
search skips blocks once the write-ahead log has been cut.

Usage: test_logs_api.py <sightline binary> <dir with the OTLP example JSON>
"""

import json
import os
import struct
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, check_eq, finish, gzip_bytes  # noqa: E402

binary, examples = sys.argv[1], sys.argv[2]

# --- a small OTLP protobuf encoder (just what ExportLogsServiceRequest needs) ---


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    return varint(num << 3 | wire) + payload


def f_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return field(num, 2, varint(len(b)) + b)


def f_varint(num, v):
    return field(num, 0, varint(v))


def f_fixed64(num, v):
    return field(num, 1, struct.pack("<Q", v))


def f_fixed32(num, v):
    return field(num, 5, struct.pack("<I", v))


def any_value(v):
    if isinstance(v, bool):
        return f_varint(2, 1 if v else 0)
    if isinstance(v, int):
        return f_varint(3, v & (2**64 - 1))
    if isinstance(v, float):
        return field(4, 1, struct.pack("<d", v))
    if isinstance(v, bytes):
        return f_bytes(7, v)
    if isinstance(v, list):
        return f_bytes(5, b"".join(f_bytes(1, any_value(x)) for x in v))
    if isinstance(v, dict):
        return f_bytes(6, b"".join(f_bytes(1, key_value(k, x)) for k, x in v.items()))
    return f_bytes(1, v)


def key_value(k, v):
    return f_bytes(1, k) + f_bytes(2, any_value(v))


def log_record(rec):
    out = b""
    if rec.get("time"):
        out += f_fixed64(1, rec["time"])
    if rec.get("severity_number"):
        out += f_varint(2, rec["severity_number"])
    if rec.get("severity_text"):
        out += f_bytes(3, rec["severity_text"])
    if "body" in rec:
        out += f_bytes(5, any_value(rec["body"]))
    for k, v in rec.get("attrs", {}).items():
        out += f_bytes(6, key_value(k, v))
    if rec.get("dropped"):
        out += f_varint(7, rec["dropped"])
    if rec.get("flags"):
        out += f_fixed32(8, rec["flags"])
    if rec.get("trace_id"):
        out += f_bytes(9, bytes.fromhex(rec["trace_id"]))
    if rec.get("span_id"):
        out += f_bytes(10, bytes.fromhex(rec["span_id"]))
    if rec.get("observed"):
        out += f_fixed64(11, rec["observed"])
    if rec.get("event_name"):
        out += f_bytes(12, rec["event_name"])
    return out


def logs_request_pb(service, records, resource_attrs=None, scope=("test.scope", "1.2")):
    res = f_bytes(1, key_value("service.name", service))
    for k, v in (resource_attrs or {}).items():
        res += f_bytes(1, key_value(k, v))
    sc = f_bytes(1, scope[0]) + f_bytes(2, scope[1])
    scope_logs = f_bytes(1, sc) + b"".join(f_bytes(2, log_record(r)) for r in records)
    rl = f_bytes(1, res) + f_bytes(2, scope_logs)
    return f_bytes(1, rl)


def logs_request_json(service, records):
    out = []
    for r in records:
        o = {"timeUnixNano": str(r["time"]), "severityNumber": r.get("severity_number", 0),
             "severityText": r.get("severity_text", ""), "body": {"stringValue": r["body"]},
             "attributes": [{"key": k, "value": {"stringValue": v}}
                            for k, v in r.get("attrs", {}).items()]}
        if r.get("trace_id"):
            o["traceId"] = r["trace_id"]
        if r.get("span_id"):
            o["spanId"] = r["span_id"]
        out.append(o)
    return {"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeLogs": [{"scope": {"name": "json.scope"}, "logRecords": out}]}]}


T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"


def logs(srv, **params):
    st, body = srv.get_json("/api/logs?" + urllib.parse.urlencode(params))
    return st, body


def bodies(resp):
    return [r["body"] for r in resp.get("data", [])]


srv = Server(binary, extra_args=["--cut-interval", "200ms"]).start()
try:
    # --- the spec example over OTLP/JSON ----------------------------------------
    with open(os.path.join(examples, "logs.json"), "rb") as f:
        st, hdrs, data = srv.post("/v1/logs", f.read(), "application/json")
    check_eq(st, 200, "spec logs.json accepted")
    check_eq(json.loads(data), {}, "no partial success for the spec example")
    st, r = srv.get_json("/api/traces/5b8efff798038103d269b633813fc60c/logs")
    check_eq(st, 200, "trace logs of the spec example")
    recs = r.get("data", [])
    check_eq(len(recs), 1, "the spec example's record is linked to its trace")
    if recs:
        e = recs[0]
        check_eq(e["timestamp"], "1544712660300000000", "timestamp as a string of unix ns")
        check_eq(e["severity_number"], 10, "severity number")
        check_eq(e["severity_text"], "Information", "severity text")
        check_eq(e["body"], "Example log record", "string body")
        check_eq(e["service"], "my.service", "service")
        check_eq(e["span_id"], "eee19b7ec3c1b174", "span id")
        check_eq(e["attributes"].get("array.attribute"), ["many", "values"], "array attribute")
        check_eq(e["attributes"].get("map.attribute"), {"some.map.key": "some value"},
                 "map attribute")
        check_eq(e["attributes"].get("double.attribute"), 637.704, "double attribute")
        check_eq(e["attributes"].get("int.attribute"), 10, "int attribute")
        check_eq(e["attributes"].get("boolean.attribute"), True, "bool attribute")
        check_eq(e["scope"], {"name": "my.library", "version": "1.0.0"}, "scope")

    # --- every field and body type over protobuf, gzip-compressed ----------------
    full = [
        {"time": T0 + 1, "observed": T0 + 2, "severity_number": 17, "severity_text": "ERROR",
         "body": "payment failed for order 4711: card declined", "attrs": {
             "user": "alice", "amount": 12.5, "retry": 3, "ok": False, "tags": ["a", "b"],
             "ctx": {"k": "v"}, "raw": b"\x00\x01"},
         "dropped": 4, "flags": 1, "trace_id": TRACE, "span_id": SPAN, "event_name": "pay.fail"},
        {"time": T0 + 3, "severity_number": 9, "body": 42},
        {"time": T0 + 4, "severity_number": 9, "body": 2.25},
        {"time": T0 + 5, "severity_number": 9, "body": True},
        {"time": T0 + 6, "severity_number": 9, "body": b"\xde\xad\xbe\xef"},
        {"time": T0 + 7, "severity_number": 9, "body": [1, "two", {"three": 3}]},
        {"time": T0 + 8, "severity_number": 9, "body": {"event": "login", "user": "bob"}},
        {"time": T0 + 9, "severity_number": 5},
        {"time": 0, "observed": T0 + 10, "severity_number": 13, "body": "time from observed"},
    ]
    pb = logs_request_pb("payments", full, {"host.name": "node-1", "cores": 8})
    st, hdrs, data = srv.post("/v1/logs", gzip_bytes(pb), "application/x-protobuf",
                              headers={"Content-Encoding": "gzip"})
    check_eq(st, 200, "gzip protobuf logs accepted")
    check_eq(hdrs.get("content-type"), "application/x-protobuf", "protobuf reply")
    check_eq(data, b"", "no partial success (empty protobuf response)")

    st, r = logs(srv, service="payments", direction="forward")
    check_eq(st, 200, "search by service")
    got = r.get("data", [])
    check_eq(len(got), len(full), "every record of the service")
    if len(got) == len(full):
        e = got[0]
        check_eq(e["timestamp"], str(T0 + 1), "timestamp")
        check_eq(e["observed_timestamp"], str(T0 + 2), "observed timestamp")
        check_eq(e["severity_number"], 17, "severity number")
        check_eq(e["severity_text"], "ERROR", "severity text")
        check_eq(e["trace_id"], TRACE, "trace id")
        check_eq(e["span_id"], SPAN, "span id")
        check_eq(e["flags"], 1, "flags")
        check_eq(e["event_name"], "pay.fail", "event name")
        check_eq(e["dropped_attributes_count"], 4, "dropped attributes")
        check_eq(e["attributes"], {"user": "alice", "amount": 12.5, "retry": 3, "ok": False,
                                   "tags": ["a", "b"], "ctx": {"k": "v"}, "raw": "AAE="},
                 "attributes of every type")
        check_eq(e["resource"], {"service.name": "payments", "host.name": "node-1", "cores": 8},
                 "resource")
        check_eq(e["scope"], {"name": "test.scope", "version": "1.2"}, "scope")
        check_eq(bodies(r)[1:8], [42, 2.25, True, "3q2+7w==", [1, "two", {"three": 3}],
                                  {"event": "login", "user": "bob"}, None], "body of every type")
        check_eq(got[8]["timestamp"], str(T0 + 10), "time 0 takes the observed time")

    # --- partial success -------------------------------------------------------------
    bad = [{"time": T0 + 20, "body": "fine"},
           {"time": T0 + 21, "body": "bad trace", "trace_id": "0102"},
           {"time": T0 + 22, "body": "bad span", "span_id": "01020304"}]
    st, _, data = srv.post("/v1/logs", logs_request_pb("partial", bad), "application/x-protobuf")
    check_eq(st, 200, "partially invalid protobuf request is 200")
    check(b"trace_id" in data and data[:1] == b"\x0a", f"protobuf partial_success: {data!r}")
    js = logs_request_json("partial-json", [{"time": T0 + 30, "body": "x"}])
    js["resourceLogs"][0]["scopeLogs"][0]["logRecords"].append(
        {"timeUnixNano": str(T0 + 31), "severityNumber": 99})
    st, _, data = srv.post("/v1/logs", json.dumps(js).encode(), "application/json")
    check_eq(st, 200, "partially invalid JSON request is 200")
    ps = json.loads(data).get("partialSuccess", {})
    check_eq(ps.get("rejectedLogRecords"), "1", "rejectedLogRecords")
    check("severity_number" in ps.get("errorMessage", ""), f"error message: {ps}")
    st, r = logs(srv, service="partial")
    check_eq(bodies(r), ["fine"], "only the valid record is stored")

    # --- status codes ------------------------------------------------------------------
    st, _, _ = srv.post("/v1/logs", b"\xff\xff\xff", "application/x-protobuf")
    check_eq(st, 400, "undecodable protobuf is 400")
    st, _, _ = srv.post("/v1/logs", b"{", "application/json")
    check_eq(st, 400, "bad JSON is 400")
    st, _, _ = srv.post("/v1/logs", b"x", "text/plain")
    check_eq(st, 415, "wrong content type is 415")
    st, _, _ = srv.post("/v1/logs", b"", "application/json", method="GET")
    check_eq(st, 405, "GET /v1/logs is 405")
    for q, what in [({"severity": "loud"}, "severity"), ({"limit": "0"}, "limit"),
                    ({"limit": "5001"}, "limit"), ({"start": "yesterday"}, "start"),
                    ({"direction": "sideways"}, "direction"), ({"trace_id": "xyz"}, "trace_id"),
                    ({"span_id": "12"}, "span_id"), ({"q": '"open'}, "unterminated")]:
        st, r = logs(srv, **q)
        check_eq(st, 400, f"bad {q} is 400")
        msg = json.dumps(r)
        check(what in msg, f"error for {q} names the problem: {msg}")
    st, _ = srv.get_json("/api/traces/nothex/logs")
    check_eq(st, 400, "bad trace id in /api/traces/{id}/logs is 400")
    st, _ = srv.get_json("/api/logs", headers={"X-Scope-OrgID": "../x"})
    check_eq(st, 400, "bad tenant is 400")

    # --- a corpus for the query parameters: JSON body, two services ----------------
    recs = []
    for i in range(200):
        sev = [5, 9, 13, 17][i % 4]
        recs.append({"time": T0 + 1_000_000_000 * i, "severity_number": sev,
                     "severity_text": ["DEBUG", "INFO", "WARN", "ERROR"][i % 4],
                     "body": f"request {i} handled by worker-{i % 7} in {i % 50} ms",
                     "attrs": {"user": f"user{i % 10}"},
                     "trace_id": TRACE if i % 50 == 0 else "",
                     "span_id": SPAN if i == 100 else ""})
    st, _, _ = srv.post("/v1/logs", json.dumps(logs_request_json("web", recs)).encode(),
                        "application/json")
    check_eq(st, 200, "JSON logs accepted")
    other = [{"time": T0 + 500_000_000 + 1_000_000_000 * i, "severity_number": 9,
              "body": f"cache refreshed {i} entries" + (" zebracorn" if i == 3 else "")}
             for i in range(50)]
    st, _, _ = srv.post("/v1/logs", gzip_bytes(logs_request_pb("cache", other)),
                        "application/x-protobuf", headers={"Content-Encoding": "gzip"})
    check_eq(st, 200, "second service accepted")

    def run_checks(phase):
        st, r = logs(srv, service="web", severity="error", limit=1000)
        check(st == 200 and len(r["data"]) == 50 and
              all(e["severity_number"] >= 17 for e in r["data"]), f"{phase}: severity=error")
        st, r = logs(srv, service="web", severity="13", limit=1000)
        check_eq(len(r.get("data", [])), 100, f"{phase}: severity=13 is a minimum")
        st, r = logs(srv, service="web", q="WORKER-3 user3", limit=1000)
        want = [i for i in range(200) if i % 7 == 3 and i % 10 == 3]
        check_eq(sorted(int(e["body"].split()[1]) for e in r.get("data", [])), want,
                 f"{phase}: all words must match, case-insensitive")
        st, r = logs(srv, q='"handled by worker-5"', limit=1000)
        check_eq(len(r.get("data", [])), len([i for i in range(200) if i % 7 == 5]),
                 f"{phase}: quoted phrase")
        st, r = logs(srv, q='"by handled"', limit=1000)
        check_eq(len(r.get("data", [])), 0, f"{phase}: phrase word order matters")
        st, r = logs(srv, q="zebracorn")
        check_eq(bodies(r), ["cache refreshed 3 entries zebracorn"], f"{phase}: rare word")
        st, r = logs(srv, trace_id=TRACE, service="web", direction="forward")
        check_eq([e["timestamp"] for e in r.get("data", [])],
                 [str(T0 + 1_000_000_000 * i) for i in (0, 50, 100, 150)], f"{phase}: trace_id")
        st, r = logs(srv, span_id=SPAN, service="web")
        check_eq(len(r.get("data", [])), 1, f"{phase}: span_id")
        st, r = srv.get_json(f"/api/traces/{TRACE}/logs")
        check_eq(len(r.get("data", [])), 5, f"{phase}: /api/traces/{{id}}/logs (web + payments)")
        st, r = logs(srv, service="web", start=str(T0 + 10_000_000_000),
                     end=str(T0 + 19_000_000_000), limit=1000)
        check_eq(len(r.get("data", [])), 10, f"{phase}: start/end in ns (inclusive)")
        st, r = logs(srv, service="web", start="2023-11-14T22:13:30Z",
                     end="2023-11-14T22:13:39.5Z", limit=1000)
        check_eq(len(r.get("data", [])), 10, f"{phase}: start/end in RFC 3339")
        st, r = logs(srv, service="web", limit=3)
        check_eq([e["timestamp"] for e in r.get("data", [])],
                 [str(T0 + 1_000_000_000 * i) for i in (199, 198, 197)],
                 f"{phase}: limit, backward (newest first) by default")
        st, r = logs(srv, service="web", limit=3, direction="forward")
        check_eq([e["timestamp"] for e in r.get("data", [])],
                 [str(T0 + 1_000_000_000 * i) for i in (0, 1, 2)], f"{phase}: forward")
        st, r = logs(srv, service="web")
        check_eq(len(r.get("data", [])), 100, f"{phase}: default limit 100")
        st, r = srv.get_json("/api/logs?service=web", headers={"X-Scope-OrgID": "other"})
        check_eq(r.get("data"), [], f"{phase}: tenants do not see each other's logs")

    run_checks("from the WAL")

    # --- after the cut: blocks, indexes and token filters -----------------------------
    deadline = time.time() + 30
    while time.time() < deadline:
        st, r = logs(srv, limit=1)
        if r.get("stats", {}).get("wal_records") == 0:
            break
        time.sleep(0.1)
    check_eq(r.get("stats", {}).get("wal_records"), 0, "the WAL was cut into blocks")
    run_checks("from blocks")
    st, r = logs(srv, q="zebracorn")
    stats = r.get("stats", {})
    check(stats.get("blocks_skipped", 0) > 0,
          f"a selective word search skips blocks by their token filter: {stats}")
    check(stats.get("blocks_scanned", 0) >= 1, f"and scans the one that matches: {stats}")
    check(stats.get("bytes_decompressed", 0) > 0, f"bytes_decompressed reported: {stats}")

    # --- a restart keeps everything --------------------------------------------------
    srv.stop()
    srv.start()
    st, r = logs(srv, service="web", limit=1000)
    check_eq(len(r.get("data", [])), 200, "records survive a restart")
finally:
    srv.cleanup()
finish()
