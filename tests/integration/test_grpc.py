"""OTLP/gRPC with real gRPC clients (Node's @grpc/grpc-js, and the
OpenTelemetry JavaScript SDK's gRPC trace exporter): export and read back
through the Jaeger API, gzip, tenants in metadata, partial success, and the
status codes of the OTLP spec (INVALID_ARGUMENT, RESOURCE_EXHAUSTED,
UNIMPLEMENTED, UNAVAILABLE with RetryInfo).

usage: test_grpc.py SIGHTLINE_BINARY OTLP_GEN CLIENT_DIR"""

import json
import os
import subprocess
import sys
import tempfile

from harness import Server, check, check_eq, finish

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def node(client_dir, *args, timeout=90):
    p = subprocess.run(["node", os.path.join(client_dir, "client.mjs")] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout, cwd=client_dir)
    check_eq(p.returncode, 0, f"node client {args[0]} exits 0 (stderr: {p.stderr[-2000:]})")
    return json.loads(p.stdout.strip().splitlines()[-1])


def pb_field(data, number):
    """The first length-delimited field `number` of a protobuf message."""
    i = 0
    while i < len(data):
        key, shift = 0, 0
        while True:
            b = data[i]; i += 1
            key |= (b & 0x7F) << shift; shift += 7
            if b < 0x80:
                break
        wt = key & 7
        if wt == 0:
            while data[i] & 0x80:
                i += 1
            i += 1
            continue
        if wt != 2:
            raise ValueError("unexpected wire type")
        ln, shift = 0, 0
        while True:
            b = data[i]; i += 1
            ln |= (b & 0x7F) << shift; shift += 7
            if b < 0x80:
                break
        if key >> 3 == number:
            return data[i:i + ln]
        i += ln
    return None


def main():
    binary, otlp_gen, client_dir = sys.argv[1:4]
    if not os.path.isdir(os.path.join(client_dir, "node_modules", "@grpc")):
        check(False, "the gRPC test clients are installed (scripts/setup.sh runs npm ci)")
    work = tempfile.mkdtemp(prefix="sightline-grpc-")
    payload = os.path.join(work, "req.pb")
    subprocess.run([otlp_gen, "--spans", "300", "--seed", "7", "--out", payload], check=True)

    srv = Server(binary).start()
    port = srv.grpc_port
    check(port, "the ports file names the gRPC port")

    # The OpenTelemetry JS SDK's exporter, plain and gzip, into two tenants.
    res = node(client_dir, "sdk", port, "grpc-a", 3, "none")
    check(res["results"] and all(r == 0 for r in res["results"]), "SDK exports succeed")
    for i, tid in enumerate(res["trace_ids"]):
        st, body = srv.get_json(f"/api/traces/{tid}", headers={"X-Scope-OrgID": "grpc-a"})
        check_eq(st, 200, "exported trace is found in its tenant")
        spans = body["data"][0]["spans"]
        check_eq(len(spans), 3, "all three spans of the trace are stored")
        names = {s["operationName"] for s in spans}
        check(names == {f"grpc-root-{i}", "grpc-child", "grpc-grandchild"},
              f"span names kept: {names}")
        procs = body["data"][0]["processes"]
        check(any(p["serviceName"] == "grpc-js-client" for p in procs.values()),
              "service.name from the SDK's resource")
        st, _ = srv.get_json(f"/api/traces/{tid}", headers={"X-Scope-OrgID": "grpc-b"})
        check_eq(st, 404, "another tenant does not see it")
    res = node(client_dir, "sdk", port, "grpc-b", 2, "gzip")
    check(all(r == 0 for r in res["results"]), "gzip exports succeed")
    for tid in res["trace_ids"]:
        st, _ = srv.get_json(f"/api/traces/{tid}", headers={"X-Scope-OrgID": "grpc-b"})
        check_eq(st, 200, "gzip-exported trace is found")

    # Raw calls: a valid request answers OK with an empty response.
    r = node(client_dir, "raw", port, TRACE_EXPORT, payload)
    check_eq(r["code"], 0, "valid protobuf request is OK")
    check_eq(r["response"], "", "no partial_success when nothing was rejected")

    # Partial success: one span with a bad trace id among good ones.
    bad = os.path.join(work, "partial.pb")
    good_span = bytes([0x0a, 16]) + bytes(range(1, 17)) + bytes([0x12, 8]) + bytes(range(1, 9)) + \
        bytes([0x2a, 2]) + b"ok"
    bad_span = bytes([0x0a, 3]) + b"abc" + bytes([0x12, 8]) + bytes(range(1, 9)) + \
        bytes([0x2a, 3]) + b"bad"
    scope_spans = b"".join(bytes([0x12, len(s)]) + s for s in (good_span, bad_span))
    resource_spans = bytes([0x12, len(scope_spans)]) + scope_spans
    with open(bad, "wb") as f:
        f.write(bytes([0x0a, len(resource_spans)]) + resource_spans)
    r = node(client_dir, "raw", port, TRACE_EXPORT, bad)
    check_eq(r["code"], 0, "a request with one bad span is still OK")
    ps = pb_field(bytes.fromhex(r["response"]), 1)
    check(ps is not None and ps[:2] == bytes([0x08, 1]), "partial_success.rejected_spans = 1")
    check(b"trace_id" in ps, "partial_success names the problem")

    # Errors as the OTLP spec maps them.
    r = node(client_dir, "raw", port, TRACE_EXPORT, "big:100")
    check_eq(r["code"], 3, "undecodable message is INVALID_ARGUMENT")
    r = node(client_dir, "raw", port, TRACE_EXPORT, "big:5000000")
    check_eq(r["code"], 8, "a message over 4 MiB is RESOURCE_EXHAUSTED")
    r = node(client_dir, "raw", port, "/opentelemetry.proto.collector.trace.v1.TraceService/Nope",
             "none")
    check_eq(r["code"], 12, "unknown method is UNIMPLEMENTED")
    r = node(client_dir, "raw", port, TRACE_EXPORT, "none", "x-scope-orgid=../etc")
    check_eq(r["code"], 3, "invalid tenant is INVALID_ARGUMENT")
    r = node(client_dir, "raw", port, TRACE_EXPORT, "none")
    check_eq(r["code"], 0, "an empty request is OK")
    srv.stop()
    srv.cleanup()

    # Saturation: a queue of one request answers UNAVAILABLE with RetryInfo.
    srv = Server(binary, ["--queue-max", "1"]).start()
    r = node(client_dir, "flood", srv.grpc_port, TRACE_EXPORT, payload, 48)
    codes = {int(k): v for k, v in r["codes"].items()}
    check(set(codes) <= {0, 14}, f"only OK and UNAVAILABLE under saturation: {codes}")
    check(codes.get(14, 0) > 0, "a saturated receiver answers UNAVAILABLE")
    check_eq(r["unavailable_with_retry_info"], codes.get(14, 0), "UNAVAILABLE carries RetryInfo")
    check(codes.get(0, 0) > 0, "calls still succeed under saturation")
    srv.stop()
    srv.cleanup()

    # --otlp-grpc-port off: no gRPC port.
    srv = Server(binary, ["--otlp-grpc-port", "off"]).start()
    check_eq(srv.grpc_port, 0, "gRPC can be switched off")
    srv.stop()
    srv.cleanup()
    finish()


if __name__ == "__main__":
    main()
