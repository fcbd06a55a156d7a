"""Test harness for Sightline integration tests: starts the real `sightline`
binary on ephemeral loopback ports with a fresh data directory, talks to it
over HTTP, and stops it. Standard library only."""

import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

FAILURES = []


def check(cond, msg):
    """Records a failed expectation (the test keeps going to report more)."""
    if not cond:
        FAILURES.append(msg)
        print("FAIL:", msg, file=sys.stderr, flush=True)
    return cond


def check_eq(got, want, msg):
    return check(got == want, f"{msg}: got {got!r}, want {want!r}")


def finish():
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")


class Server:
    def __init__(self, binary, extra_args=(), data_dir=None, env=None):
        self.binary = binary
        self.env = env
        self.extra_args = list(extra_args)
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="sightline-test-")
        self.proc = None
        self.otlp_port = None
        self.grpc_port = None
        self.query_port = None

    def start(self, timeout=20):
        ports = os.path.join(self.data_dir, "ports.json")
        if os.path.exists(ports):
            os.unlink(ports)
        args = [self.binary, "serve", "--host", "127.0.0.1", "--otlp-http-port", "0",
                "--otlp-grpc-port", "0",
                "--query-port", "0", "--data-dir", os.path.join(self.data_dir, "data"),
                "--ports-file", ports, "--log-level", "warn"] + self.extra_args
        self.log = open(os.path.join(self.data_dir, "server.log"), "ab")
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sightline exited with {self.proc.returncode}: " + self.read_log())
            if os.path.exists(ports):
                with open(ports) as f:
                    p = json.load(f)
                self.otlp_port, self.query_port = p["otlp_http"], p["query"]
                self.grpc_port = p.get("otlp_grpc")
                return self
            time.sleep(0.05)
        raise RuntimeError("sightline did not start: " + self.read_log())

    def read_log(self):
        try:
            with open(os.path.join(self.data_dir, "server.log"), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                check(False, "server did not stop within %ds" % timeout)
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        return rc

    def cleanup(self):
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # --- HTTP helpers -------------------------------------------------------

    def post(self, path, body, content_type="application/x-protobuf", headers=None,
             method="POST", conn=None):
        hdrs = {"Content-Type": content_type} if content_type else {}
        hdrs.update(headers or {})
        own = conn is None
        c = conn or http.client.HTTPConnection("127.0.0.1", self.otlp_port, timeout=30)
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        if own:
            c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def post_json(self, obj, **kw):
        return self.post("/v1/traces", json.dumps(obj).encode(), "application/json", **kw)

    def get(self, path, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.query_port, timeout=60)
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def get_json(self, path, headers=None):
        status, hdrs, data = self.get(path, headers)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, {"_raw": data.decode(errors="replace")}


def gzip_bytes(b):
    return gzip.compress(b)


def span(trace_id, span_id, name, parent="", kind=2, start_ns=None, dur_ns=1_000_000,
         attrs=None, status=None, events=None):
    start = start_ns if start_ns is not None else time.time_ns() - 5_000_000_000
    s = {"traceId": trace_id, "spanId": span_id, "parentSpanId": parent, "name": name,
         "kind": kind, "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + dur_ns),
         "attributes": attrs or []}
    if status:
        s["status"] = status
    if events:
        s["events"] = events
    return s


def request(service, spans, resource_attrs=None):
    attrs = [{"key": "service.name", "value": {"stringValue": service}}] + (resource_attrs or [])
    return {"resourceSpans": [{"resource": {"attributes": attrs},
                               "scopeSpans": [{"scope": {"name": "test", "version": "1"},
                                               "spans": spans}]}]}


def rand_hex(n):
    return os.urandom(n).hex()


def load(srv, seconds, threads=6, spans_per_req=20, acked=None, statuses=None):
    """Posts requests of fresh traces from several keep-alive clients for a
    bounded time; records acknowledged trace ids with their span counts."""
    stop_at = time.time() + seconds
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", srv.otlp_port, timeout=30)
        while time.time() < stop_at:
            tid = rand_hex(16)
            body = json.dumps(request("loadgen", [span(tid, rand_hex(8), f"op{i % 5}")
                                                  for i in range(spans_per_req)])).encode()
            try:
                conn.request("POST", "/v1/traces", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
            except OSError:
                break  # the server was killed
            with lock:
                if statuses is not None:
                    statuses.append((r.status, r.getheader("Retry-After")))
                if r.status == 200 and acked is not None:
                    acked[tid] = spans_per_req
        conn.close()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    return ts


def free_port():
    """A loopback port free right now (for servers the test starts itself)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pb_varint(v):
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def pb_field(n, wire, payload):
    """One protobuf field: wire 0 (varint: payload an int), 1 (payload 8 bytes),
    2 (payload bytes, length-delimited)."""
    if wire == 2:
        return pb_varint(n << 3 | 2) + pb_varint(len(payload)) + payload
    if wire == 1:
        return pb_varint(n << 3 | 1) + payload
    return pb_varint(n << 3) + pb_varint(payload)
