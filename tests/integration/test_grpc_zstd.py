"""OTLP/gRPC with grpc-encoding zstd. The JavaScript gRPC client has no zstd,
so the calls are made with curl over h2c (prior knowledge): the test frames
the gRPC message itself (compressed flag, 4-byte length, a zstd frame made by
the zstd tool) and reads grpc-status from the trailers. Checked: a zstd export
is stored; corrupt zstd is INVALID_ARGUMENT; a zstd bomb past
--grpc-max-message-size is RESOURCE_EXHAUSTED; a compressed message without
grpc-encoding is INTERNAL; an unknown encoding is UNIMPLEMENTED; the logs
and metrics services take zstd too.

usage: test_grpc_zstd.py SIGHTLINE_BINARY OTLP_GEN
Exits 77 (skipped) when curl lacks HTTP/2 or the zstd tool is missing."""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, check_eq, finish, pb_field  # noqa: E402

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
METRICS = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"




def any_str(s):
    return pb_field(1, 2, s.encode())


def resource(service):
    kv = pb_field(1, 2, b"service.name") + pb_field(2, 2, any_str(service))
    return pb_field(1, 2, pb_field(1, 2, kv))


def logs_request(service, n):
    """ExportLogsServiceRequest: one resource, n records with string bodies."""
    now = time.time_ns()
    recs = b"".join(pb_field(2, 2, pb_field(1, 1, struct.pack("<Q", now)) +
                         pb_field(5, 2, any_str(f"zstd log line {i}")))
                    for i in range(n))
    return pb_field(1, 2, resource(service) + pb_field(2, 2, recs))


def metrics_request(service, name, value):
    """ExportMetricsServiceRequest: one gauge with one double point."""
    point = pb_field(3, 1, struct.pack("<Q", time.time_ns())) + pb_field(4, 1, struct.pack("<d", value))
    metric = pb_field(1, 2, name.encode()) + pb_field(5, 2, pb_field(1, 2, point))
    return pb_field(1, 2, resource(service) + pb_field(2, 2, pb_field(2, 2, metric)))


def zstd(data, work):
    src = os.path.join(work, "plain")
    with open(src, "wb") as f:
        f.write(data)
    subprocess.run(["zstd", "-q", "-f", src, "-o", src + ".zst"], check=True)
    with open(src + ".zst", "rb") as f:
        return f.read()


def call(port, path, message, work, encoding="zstd", compressed=True, tenant="default"):
    """One unary call; returns (grpc-status, grpc-message, response bytes)."""
    frame = os.path.join(work, "frame")
    with open(frame, "wb") as f:
        f.write(bytes([1 if compressed else 0]) + struct.pack(">I", len(message)) + message)
    hdrs, resp = os.path.join(work, "hdrs"), os.path.join(work, "resp")
    cmd = ["curl", "-s", "--http2-prior-knowledge", "-D", hdrs, "-o", resp,
           "-H", "content-type: application/grpc", "-H", "te: trailers",
           "-H", f"x-scope-orgid: {tenant}", "--data-binary", "@" + frame,
           f"http://127.0.0.1:{port}{path}"]
    if encoding:
        cmd[cmd.index("--data-binary"):cmd.index("--data-binary")] = \
            ["-H", f"grpc-encoding: {encoding}"]
    subprocess.run(cmd, check=True, timeout=60)
    status, msg = None, ""
    with open(hdrs, encoding="latin-1") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k.strip().lower() == "grpc-status":
                status = int(v.strip())
            elif k.strip().lower() == "grpc-message":
                msg = v.strip()
    with open(resp, "rb") as f:
        return status, msg, f.read()


def metric(srv, name):
    _, _, body = srv.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def main():
    binary, otlp_gen = sys.argv[1:3]
    version = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout
    if "HTTP2" not in version or shutil.which("zstd") is None:
        print("skipped: curl without HTTP/2 or no zstd tool")
        sys.exit(77)
    work = tempfile.mkdtemp(prefix="sightline-grpc-zstd-")
    srv = Server(binary, ["--grpc-max-message-size", "1MiB"])
    srv.start()
    port = srv.grpc_port

    # A zstd-compressed trace export is stored like any other.
    pb = os.path.join(work, "req.pb")
    subprocess.run([otlp_gen, "--spans", "40", "--seed", "3", "--out", pb], check=True)
    with open(pb, "rb") as f:
        plain = f.read()
    before = metric(srv, "sightline_spans_accepted_total")
    status, msg, resp = call(port, TRACES, zstd(plain, work), work, tenant="zt")
    check_eq((status, msg), (0, ""), "a zstd export succeeds")
    check_eq(resp, b"\x00\x00\x00\x00\x00", "... with an empty ExportTraceServiceResponse")
    check_eq(metric(srv, "sightline_spans_accepted_total") - before, 40, "its 40 spans stored")
    st, doc = srv.get_json("/api/services", headers={"X-Scope-OrgID": "zt"})
    check(st == 200 and len(doc.get("data") or []) > 0, f"its services are listed: {doc}")

    # Logs and metrics over zstd, read back through their APIs.
    status, msg, _ = call(port, LOGS, zstd(logs_request("zlogs", 3), work), work)
    check_eq((status, msg), (0, ""), "a zstd logs export succeeds")
    st, doc = srv.get_json("/api/logs?service=zlogs")
    check_eq(len(doc.get("data", [])), 3, "its 3 records are stored")
    status, msg, _ = call(port, METRICS, zstd(metrics_request("zmet", "zstd_gauge", 4.5), work),
                          work)
    check_eq((status, msg), (0, ""), "a zstd metrics export succeeds")
    st, doc = srv.get_json("/api/v1/query?query=zstd_gauge")
    res = doc.get("data", {}).get("result", [])
    check(len(res) == 1 and res[0]["value"][1] == "4.5", f"its point is stored: {doc}")

    # Corrupt zstd: INVALID_ARGUMENT, nothing stored.
    before = metric(srv, "sightline_spans_accepted_total")
    bad = bytearray(zstd(plain, work))
    bad[len(bad) // 2] ^= 0xFF
    bad[len(bad) // 3] ^= 0x55
    status, msg, _ = call(port, TRACES, bytes(bad), work)
    check_eq(status, 3, f"corrupt zstd is INVALID_ARGUMENT ({msg})")
    status, _, _ = call(port, TRACES, b"not zstd at all", work)
    check_eq(status, 3, "bytes that are no zstd frame are INVALID_ARGUMENT")
    check_eq(metric(srv, "sightline_spans_accepted_total"), before, "nothing of them stored")

    # A bomb: 64 MiB of zeros in a few KiB, past the 1 MiB message limit.
    bomb = zstd(b"\0" * (64 << 20), work)
    check(len(bomb) < 64 << 10, "the bomb is small on the wire")
    status, msg, _ = call(port, TRACES, bomb, work)
    check_eq(status, 8, f"a zstd bomb is RESOURCE_EXHAUSTED ({msg})")

    # Framing against the encoding header.
    status, _, _ = call(port, TRACES, zstd(plain, work), work, encoding=None)
    check_eq(status, 13, "a compressed message without grpc-encoding is INTERNAL")
    status, _, _ = call(port, TRACES, zstd(plain, work), work, encoding="br")
    check_eq(status, 12, "an unknown grpc-encoding is UNIMPLEMENTED")
    before = metric(srv, "sightline_spans_accepted_total")
    status, _, _ = call(port, TRACES, plain, work, compressed=False)
    check_eq(status, 0, "an uncompressed message under grpc-encoding zstd is accepted")
    check_eq(metric(srv, "sightline_spans_accepted_total") - before, 40, "... and stored")

    check_eq(srv.stop(), 0, "clean stop")
    srv.cleanup()
    shutil.rmtree(work, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
