"""Harness for the fleet's integration tests (standard library only).

- Nats: a real nats-server with JetStream in a temporary directory on a free
  loopback port (stop()/start() keep the port and the stored streams, so a
  test can take NATS down and bring it back).
- Fleet: a fleet binary started with --listen 127.0.0.1:0 (or a given
  address); the port is read from its "listening on http://127.0.0.1:PORT"
  line. Its stderr goes to a
  log file in its temporary directory (read_log()).
- service_token(): an HS256 service token minted the way the runtime mints
  them (iss, aud, iat, exp, scope), for tests that call services directly.
- http(): one request, answering (status, headers with lower-case names,
  body bytes); json_of() decodes a body.
Sightline itself is started with harness.Server (re-exported here).
"""

import base64
import hashlib
import hmac
import http.client as httpclient
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

from harness import FAILURES, Server, check, check_eq, finish  # noqa: F401 (re-exported)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def service_token(key, iss, aud, scope="", ttl=60, now=None, extra=None):
    """An HS256 JWT: key is bytes (the service key file's content, stripped)."""
    now = int(time.time()) if now is None else now
    claims = {"iss": iss, "aud": aud, "iat": now, "exp": now + ttl}
    if scope:
        claims["scope"] = scope
    claims.update(extra or {})
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def write_key(directory, name="service.key"):
    """Writes a fresh random service key file; returns (path, key bytes)."""
    key = base64.b64encode(os.urandom(32))
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(key + b"\n")
    return path, key


def http(method, url, body=None, headers=None, timeout=30, source=None):
    """One request on a new connection; source: the local address to send
    from (any 127.x.y.z works on loopback)."""
    u = urllib.parse.urlsplit(url)
    c = httpclient.HTTPConnection(u.hostname, u.port, timeout=timeout,
                                  source_address=(source, 0) if source else None)
    path = u.path + ("?" + u.query if u.query else "")
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        c.request(method, path or "/", body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def json_of(data):
    try:
        return json.loads(data)
    except ValueError:
        return {"_raw": data.decode(errors="replace")}


def otel_env(sightline, service=None, extra=None):
    """Environment for a fleet process exporting to a harness.Server, with
    short batch delays so tests see their telemetry quickly."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLEET_"))}
    if sightline is not None:
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sightline.otlp_port}",
                    "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BLRP_SCHEDULE_DELAY": "200",
                    "OTEL_METRIC_EXPORT_INTERVAL": "60000"})
    if service:
        env["OTEL_SERVICE_NAME"] = service
    env.update(extra or {})
    return env


class Nats:
    """nats-server with JetStream, file storage in a temporary directory."""

    def __init__(self, port=None):
        self.dir = tempfile.mkdtemp(prefix="fleet-nats-")
        self.port = port or free_port()
        self.proc = None

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout=15):
        self.log = open(os.path.join(self.dir, "nats.log"), "ab")
        self.proc = subprocess.Popen(
            ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js",
             "-sd", os.path.join(self.dir, "js")], stdout=self.log, stderr=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nats-server exited: " + self.read_log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4).startswith(b"INFO"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start: " + self.read_log())

    def read_log(self):
        try:
            with open(os.path.join(self.dir, "nats.log"), "rb") as f:
                return f.read().decode(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Fleet:
    """One fleet process (fleet-echo, fleet-users, ...)."""

    def __init__(self, binary, args=(), env=None, name=None, listen="127.0.0.1:0"):
        self.binary = binary
        self.listen = listen
        self.args = list(args)
        self.env = env
        self.name = name or os.path.basename(binary)
        self.dir = tempfile.mkdtemp(prefix=f"{self.name}-")
        self.proc = None
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=20):
        args = [self.binary, "--listen", self.listen] + self.args
        self.log = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, env=self.env)
        line = [None]

        def read():
            line[0] = self.proc.stdout.readline().decode()

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        text = line[0] or ""
        if not text.startswith("listening on http://"):
            self.stop(sig=signal.SIGKILL)
            raise RuntimeError(f"{self.name} did not start ({text!r}): " + self.read_log())
        self.port = int(text.strip().rsplit(":", 1)[1])
        return self

    def read_log(self):
        try:
            with open(os.path.join(self.dir, "stderr.log"), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def failure_log(self):
        """The log's sanitizer reports when it has any (they come long
        before the process's last lines), else its tail."""
        try:
            with open(os.path.join(self.dir, "stderr.log"), "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        reports = [m.start() for m in re.finditer(r"(WARNING|ERROR): \w+Sanitizer", text)]
        return text[reports[0]:reports[0] + 6000] if reports else text[-800:]

    def request(self, method, path, body=None, headers=None, timeout=30):
        return http(method, self.url + path, body, headers, timeout)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the process and waits (as harness.Server does); returns its
        exit status."""
        out = self.proc.stdout if self.proc is not None else None
        rc = Server.stop(self, sig, timeout)
        if out is not None:
            out.close()
        return rc

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(fn, timeout=20, interval=0.2):
    """Polls fn() until it returns a true value or the timeout passes."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() >= deadline:
            return v
        time.sleep(interval)


def get_trace(sightline, trace_id, min_spans=1, timeout=20):
    """Polls the Jaeger API until the trace holds min_spans spans; returns
    (spans, services by processID) or ([], {})."""
    def fetch():
        st, doc = sightline.get_json(f"/api/traces/{trace_id}")
        if st != 200 or not doc.get("data"):
            return None
        t = doc["data"][0]
        if len(t["spans"]) < min_spans:
            return None
        return t["spans"], {pid: p["serviceName"] for pid, p in t["processes"].items()}

    return wait_for(fetch, timeout) or ([], {})


def tags_of(span):
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def parent_of(span):
    for r in span.get("references", []):
        if r.get("refType") == "CHILD_OF":
            return r["spanID"]
    return None
