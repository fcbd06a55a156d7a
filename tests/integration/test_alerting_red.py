"""An alert over a span-derived error ratio, end to end: spans go in over
OTLP, the collector derives traces_span_metrics_calls_total, the rule's ratio
crosses its threshold, and a real webhook receiver (started here) gets the
firing notification with the exact v4 fields, then the resolved one when OK
spans bring the ratio down. ALERTS and ALERTS_FOR_STATE are written back and
queryable through the Prometheus API, and so is the recording rule's series.

usage: test_alerting_red.py SIGHTLINE_BINARY"""

import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse

from harness import Server, check, check_eq, finish, rand_hex, request, span

binary = sys.argv[1]

got = []
lock = threading.Lock()


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            got.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=hook.serve_forever, daemon=True).start()

RULES = """groups:
  - name: red
    interval: 1s
    rules:
      - record: service:calls:errors_ratio
        expr: |
          sum by (service_name) (traces_span_metrics_calls_total{status_code="STATUS_CODE_ERROR"})
            / sum by (service_name) (traces_span_metrics_calls_total)
      - alert: HighErrorRatio
        expr: service:calls:errors_ratio > 0.2
        for: 1s
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.service_name }} fails {{ $value | humanizePercentage }} of calls"
"""


def send(srv, n, errors):
    spans = []
    for i in range(n):
        spans.append(span(rand_hex(16), rand_hex(8), "POST /pay", kind=2,
                          status={"code": 2} if i < errors else None))
    st, _, body = srv.post_json(request("payments", spans))
    check_eq(st, 200, "spans accepted")


def wait_note(pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with lock:
            for b in got:
                if pred(b):
                    return b
        time.sleep(0.1)
    return None


def prom(srv, q, wait=30):
    """The query's result, polled until it is non-empty (write-back and the
    metrics cutter run on their own threads; slow under sanitizers). Every
    answer other than 200 is printed, with the server's log when the wait
    runs out, so that a failure here says what the server said."""
    deadline = time.time() + wait
    result = None
    while True:
        st, doc = srv.get_json("/api/v1/query?query=" + urllib.parse.quote(q))
        result = doc.get("data", {}).get("result", []) if st == 200 else None
        if st != 200:
            print(f"query {q}: {st} {doc}", flush=True)
        if result:
            return result
        if time.time() > deadline:
            print("server log:\n" + srv.read_log()[-4000:], flush=True)
            return result
        time.sleep(0.3)


work = tempfile.mkdtemp(prefix="sightline-red-")
os.makedirs(os.path.join(work, "rules"))
with open(os.path.join(work, "rules", "red.yml"), "w") as f:
    f.write(RULES)
srv = Server(binary, ["--rules-dir", os.path.join(work, "rules"),
                      "--alert-webhook-url", f"http://127.0.0.1:{hook.server_address[1]}/",
                      "--alert-group-wait", "1s", "--alert-group-interval", "1s",
                      "--external-url", "http://sightline:16686"]).start()
try:
    send(srv, 10, errors=5)  # 50% errors
    note = wait_note(lambda b: b["status"] == "firing")
    check(note is not None, "firing notification for the span-derived error ratio")
    if note:
        check_eq(note["version"], "4", "version")
        check_eq(note["groupKey"], '{}:{alertname="HighErrorRatio"}', "groupKey")
        check_eq(note["groupLabels"], {"alertname": "HighErrorRatio"}, "groupLabels")
        check_eq(note["commonLabels"], {"alertname": "HighErrorRatio",
                                        "service_name": "payments", "severity": "page"},
                 "commonLabels")
        check_eq(note["commonAnnotations"], {"summary": "payments fails 50% of calls"},
                 "commonAnnotations")
        check_eq(note["externalURL"], "http://sightline:16686", "externalURL")
        check_eq(note["truncatedAlerts"], 0, "truncatedAlerts")
        a = note["alerts"][0]
        check_eq((a["status"], a["endsAt"]), ("firing", "0001-01-01T00:00:00Z"), "firing alert")
        check(a["generatorURL"].startswith("http://sightline:16686/graph?g0.expr="),
              "generatorURL")

    r = prom(srv, 'ALERTS{alertname="HighErrorRatio",alertstate="firing"}')
    check(r is not None and len(r) == 1 and r[0]["metric"].get("service_name") == "payments",
          f"ALERTS written back: {r}")
    r = prom(srv, "ALERTS_FOR_STATE")
    check(r is not None and len(r) == 1 and float(r[0]["value"][1]) > 1e9,
          f"ALERTS_FOR_STATE written back: {r}")
    r = prom(srv, "service:calls:errors_ratio")
    check(r is not None and len(r) == 1 and float(r[0]["value"][1]) == 0.5,
          f"recording rule written back: {r}")

    send(srv, 40, errors=0)  # 5 of 50: 10% < 20%
    note = wait_note(lambda b: b["status"] == "resolved")
    check(note is not None, "resolved notification once the ratio drops")
    if note:
        a = note["alerts"][0]
        check_eq(a["status"], "resolved", "alert resolved")
        check(a["endsAt"] != "0001-01-01T00:00:00Z", "endsAt set")
        check_eq(a["labels"]["service_name"], "payments", "the same alert")
finally:
    srv.cleanup()
    shutil.rmtree(work, ignore_errors=True)

finish()
