"""sdk-c with the collector down, then up, then gone again (the real binary):

1. nothing listens: the application emits 2000 spans; every call returns
   (the driver reaches its next line), the bounded queue drops and counts;
2. the server starts on that port: a new trace is flushed and is found
   through the Jaeger API (the exporter reconnects by itself);
3. the server stops: 2000 more spans and a shutdown with a 1 s deadline
   return, with the loss counted; the process exits cleanly.

usage: test_sdk_downup.py SIGHTLINE_BINARY SDK_IT_DRIVER"""

import json
import os
import socket
import subprocess
import sys

from harness import Server, check, check_eq, finish

binary, driver = sys.argv[1], sys.argv[2]

s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()

env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
env.update({"OTEL_SERVICE_NAME": "downup", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_BSP_MAX_QUEUE_SIZE": "64", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "16",
            "OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_BSP_EXPORT_TIMEOUT": "2000",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1000", "OTEL_METRIC_EXPORT_INTERVAL": "60000"})
proc = subprocess.Popen([driver, "downup", "2000"], env=env, stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def phase():
    line = proc.stdout.readline()
    if not line:
        check(False, "driver ended early: " + proc.stderr.read().decode()[-2000:])
        return {"stats": {}}
    return json.loads(line)


srv = None
try:
    down = phase()
    check_eq(down.get("phase"), "down", "phase 1 reported")
    st = down["stats"]
    check_eq(st.get("spans_started"), 2000, "all spans started while the collector is down")
    check(st.get("spans_dropped", 0) > 0, "full queue drops and counts: %r" % st)
    check_eq(st.get("spans_exported"), 0, "nothing exported yet")

    srv = Server(binary, extra_args=["--otlp-http-port", str(port)]).start()
    check_eq(srv.otlp_port, port, "server on the port the SDK targets")
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    up = phase()
    check_eq(up.get("phase"), "up", "phase 2 reported")
    check(up["stats"].get("spans_exported", 0) >= 3, "spans exported after recovery")
    if "trace_id" in up:
        st_, doc = srv.get_json(f"/api/traces/{up['trace_id']}")
        check_eq(st_, 200, "trace emitted after recovery is stored")
        if st_ == 200:
            check_eq(len(doc["data"][0]["spans"]), 3, "all its spans")

    check_eq(srv.stop(), 0, "server exit status")
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    gone = phase()
    check_eq(gone.get("phase"), "gone", "phase 3 reported")
    g = gone.get("stats", {})
    check(g.get("spans_started", 0) == 4003, "phase 3 spans started")
    lost = g.get("spans_dropped", 0) + g.get("spans_export_failed", 0)
    check(lost > up["stats"].get("spans_dropped", 0), "loss after the collector left is counted")
    check(gone.get("rc") in (0, -20004, -20006), "shutdown returns (ok, timeout or export error)")
    proc.stdin.close()
    rc = proc.wait(timeout=60)
    check_eq(rc, 0, "driver exit status: " + proc.stderr.read().decode()[-1000:])
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if srv is not None:
        srv.cleanup()
finish()
