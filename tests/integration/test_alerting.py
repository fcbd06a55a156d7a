"""Alerting end to end on the real binary with a real webhook receiver (a
small HTTP server started here that records what it gets):

- `sightline rules check` refuses a rule file with its line number, and
  `serve` refuses to start with it;
- an alert goes pending, then firing, and the receiver gets Alertmanager's
  webhook payload (version 4, exact fields) for the group of two alerts, even
  though it answers the first attempt with 500;
- an unchanged group is notified again only after repeat_interval;
- a restart keeps the alert state (same activeAt, still firing) and the
  notification log (no duplicate notification before repeat_interval);
- POST /-/reload with a broken file is refused with the line and keeps the
  rules; a reload where the condition no longer holds resolves the alert and
  the receiver gets the resolved notification;
- delivery failures and retries are counted in /metrics;
- --alert-max-alerts truncates a notification and reports truncatedAlerts.

Rules here use expressions over constants so that they need no stored
samples; the rules over span-derived series are exercised through the same
engine by the PromQL API tests.

usage: test_alerting.py SIGHTLINE_BINARY"""

import http.client
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from harness import Server, check, check_eq, finish

binary = sys.argv[1]


class Receiver:
    """Records every POST; answers the first `fail_first` with 500."""

    def __init__(self, fail_first=1):
        self.got = []  # (time, status answered, body)
        self.fail_first = fail_first
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    status = 500 if outer.fail_first > 0 else 200
                    outer.fail_first -= 1
                    outer.got.append((time.time(), status, json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def accepted(self):
        with self.lock:
            return [(t, b) for (t, st, b) in self.got if st == 200]

    def wait_for(self, pred, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for t, b in self.accepted():
                if pred(b):
                    return t, b
            time.sleep(0.1)
        return None, None


FIRING_RULES = """groups:
  - name: red
    interval: 1s
    rules:
      - alert: HighErrorRatio
        expr: |
          label_replace(vector(0.25), "service_name", "cart", "", "")
            or label_replace(vector(0.5), "service_name", "shop", "", "")
        for: 2s
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.service_name }} error ratio {{ $value | humanizePercentage }}"
          runbook: "http://runbooks/errors"
"""

RESOLVED_RULES = FIRING_RULES.replace('vector(0.25)', 'vector(0.25) > 1').replace(
    'vector(0.5)', 'vector(0.5) > 1')

BAD_RULES = """groups:
  - name: red
    rules:
      - alert: Broken
        expr: sum(rate(x[5m])
"""


def wait_alerts(srv, pred, timeout=20):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        st, body = srv.get_json("/api/v1/alerts")
        if st == 200:
            last = body["data"]["alerts"]
            if pred(last):
                return last
        time.sleep(0.1)
    return last


def metric(srv, name):
    st, _, data = srv.get("/metrics")
    m = re.search(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), data.decode(), re.M)
    return float(m.group(1)) if m else None


work = tempfile.mkdtemp(prefix="sightline-alerting-")
rules_dir = os.path.join(work, "rules")
os.makedirs(rules_dir)
rules_file = os.path.join(rules_dir, "red.yml")
try:
    # --- a broken file: `rules check` and `serve` refuse it with the line ---
    with open(rules_file, "w") as f:
        f.write(BAD_RULES)
    r = subprocess.run([binary, "rules", "check", rules_file], capture_output=True, text=True)
    check_eq(r.returncode, 1, "rules check exit status on a broken file")
    check("red.yml:5: group \"red\", rule 1, \"Broken\": could not parse expression" in r.stdout,
          "rules check names the line: " + r.stdout)
    srv = Server(binary, ["--rules-dir", rules_dir])
    try:
        srv.start()
        check(False, "serve started with a broken rule file")
    except RuntimeError as e:
        check("red.yml:5:" in str(e), "serve reports the line: " + str(e)[-500:])
    srv.stop()

    # --- firing, grouping, retries, the v4 payload ---
    with open(rules_file, "w") as f:
        f.write(FIRING_RULES)
    r = subprocess.run([binary, "rules", "check", rules_file], capture_output=True, text=True)
    check_eq(r.returncode, 0, "rules check on a good file: " + r.stdout)
    check("SUCCESS: 1 rules found" in r.stdout, "rules check counts the rules: " + r.stdout)

    rcv = Receiver(fail_first=1)
    data_dir = os.path.join(work, "srv")
    os.makedirs(data_dir)
    args = ["--rules-dir", rules_dir, "--alert-webhook-url", f"http://127.0.0.1:{rcv.port}/hook",
            "--alert-group-by", "alertname", "--alert-group-wait", "1s",
            "--alert-group-interval", "1s", "--alert-repeat-interval", "6s",
            "--external-url", "http://sightline.example:16686"]
    srv = Server(binary, args, data_dir=data_dir).start()

    alerts = wait_alerts(srv, lambda a: len(a) == 2)
    check(alerts is not None and all(a["state"] in ("pending", "firing") for a in alerts),
          f"two active alerts: {alerts}")
    alerts = wait_alerts(srv, lambda a: len(a) == 2 and all(x["state"] == "firing" for x in a))
    check(alerts is not None and len(alerts) == 2, f"both alerts firing: {alerts}")
    active_at = {a["labels"]["service_name"]: a["activeAt"] for a in alerts or []}

    t_first, note = rcv.wait_for(lambda b: b["status"] == "firing")
    check(note is not None, "the receiver got a firing notification")
    if note is not None:
        check(rcv.got[0][1] == 500, "the first attempt was answered 500 and retried")
        check_eq(sorted(note.keys()),
                 sorted(["receiver", "status", "alerts", "groupLabels", "commonLabels",
                         "commonAnnotations", "externalURL", "version", "groupKey",
                         "truncatedAlerts"]), "v4 top-level fields")
        check_eq(note["version"], "4", "version")
        check_eq(note["receiver"], "webhook", "receiver")
        check_eq(note["groupLabels"], {"alertname": "HighErrorRatio"}, "groupLabels")
        check_eq(note["commonLabels"], {"alertname": "HighErrorRatio", "severity": "page"},
                 "commonLabels")
        check_eq(note["commonAnnotations"], {"runbook": "http://runbooks/errors"},
                 "commonAnnotations")
        check_eq(note["externalURL"], "http://sightline.example:16686", "externalURL")
        check_eq(note["groupKey"], '{}:{alertname="HighErrorRatio"}', "groupKey")
        check_eq(note["truncatedAlerts"], 0, "truncatedAlerts")
        check_eq(len(note["alerts"]), 2, "both alerts in one notification")
        by_svc = {a["labels"]["service_name"]: a for a in note["alerts"]}
        a = by_svc.get("shop", {})
        check_eq(sorted(a.keys()), sorted(["status", "labels", "annotations", "startsAt",
                                           "endsAt", "generatorURL", "fingerprint"]),
                 "alert fields")
        check_eq(a.get("status"), "firing", "alert status")
        check_eq(a.get("labels"), {"alertname": "HighErrorRatio", "service_name": "shop",
                                   "severity": "page"}, "alert labels")
        check_eq(a.get("annotations", {}).get("summary"), "shop error ratio 50%",
                 "templated annotation")
        check_eq(a.get("endsAt"), "0001-01-01T00:00:00Z", "a firing alert has no end")
        check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", a.get("startsAt", "")),
              "startsAt is RFC 3339: %r" % a.get("startsAt"))
        check(a.get("generatorURL", "").startswith("http://sightline.example:16686/graph?g0.expr="),
              "generatorURL: %r" % a.get("generatorURL"))
        check(re.match(r"^[0-9a-f]{16}$", a.get("fingerprint", "")), "fingerprint")
        check(by_svc.get("cart", {}).get("fingerprint") != a.get("fingerprint"),
              "fingerprints differ")

    # --- repeat_interval: the same group again, not before 6 s ---
    t_rep, rep = rcv.wait_for(lambda b: b["status"] == "firing" and
                              rcv.accepted()[-1][1] is b and len(rcv.accepted()) >= 2,
                              timeout=30)
    firing_notes = [(t, b) for t, b in rcv.accepted() if b["status"] == "firing"]
    check(len(firing_notes) >= 2, "the unchanged group was notified again after repeat_interval")
    if len(firing_notes) >= 2:
        gap = firing_notes[1][0] - firing_notes[0][0]
        check(gap >= 5.0, f"not repeated before repeat_interval (gap {gap:.1f}s)")
    check(metric(srv, "sightline_notification_retries_total") >= 1, "retries counted")
    check(metric(srv, "sightline_notifications_total") >= 2, "deliveries counted")

    # --- restart keeps alert state ---
    check_eq(srv.stop(), 0, "clean stop")
    t_restart = time.time()
    srv = Server(binary, args, data_dir=data_dir).start()
    st, body = srv.get_json("/api/v1/alerts")
    alerts = body["data"]["alerts"] if st == 200 else []
    check_eq(sorted(a["state"] for a in alerts), ["firing", "firing"],
             "alerts still firing right after a restart")
    check_eq({a["labels"]["service_name"]: a["activeAt"] for a in alerts}, active_at,
             "activeAt kept across the restart")

    # --- /api/v1/rules in Prometheus's shape ---
    st, body = srv.get_json("/api/v1/rules")
    check_eq(st, 200, "/api/v1/rules status")
    g = body["data"]["groups"][0] if st == 200 and body["data"]["groups"] else {}
    check_eq(g.get("name"), "red", "group name")
    check_eq(g.get("interval"), 1, "group interval (seconds)")
    rule = g.get("rules", [{}])[0]
    check_eq(rule.get("type"), "alerting", "rule type")
    check_eq(rule.get("duration"), 2, "rule for (seconds)")
    check_eq(rule.get("state"), "firing", "rule state")
    st, body = srv.get_json("/api/v1/rules?type=record")
    check_eq(body["data"]["groups"][0]["rules"], [], "type=record filters alerting rules out")
    st, _ = srv.get_json("/api/v1/rules?type=bogus")
    check_eq(st, 400, "bad type is a 400")

    # --- reload: a broken file is refused, the rules stay ---
    with open(rules_file, "w") as f:
        f.write(BAD_RULES)
    c = http.client.HTTPConnection("127.0.0.1", srv.query_port, timeout=30)
    c.request("POST", "/-/reload")
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    check_eq(r.status, 400, "reload of a broken file")
    check("red.yml:5:" in body, "reload error names the line: " + body)
    st, body = srv.get_json("/api/v1/alerts")
    check_eq(len(body["data"]["alerts"]), 2, "old rules and alerts kept after a failed reload")

    # The notification log survives the restart: the rebuilt group is not
    # notified again before repeat_interval (6 s) since the last notification.
    t_again, _ = rcv.wait_for(lambda b: b["status"] == "firing" and
                              any(t > t_restart for t, x in rcv.accepted() if x is b))
    check(t_again is not None, "firing notification after the restart (repeat_interval)")
    if t_again is not None:
        before = [t for t, b in rcv.accepted() if t < t_restart]
        gap = t_again - before[-1] if before else 0
        check(gap >= 5.0, f"no duplicate notification after the restart (gap {gap:.1f}s)")

    # --- reload: condition gone -> resolved notification ---
    with open(rules_file, "w") as f:
        f.write(RESOLVED_RULES)
    srv.proc.send_signal(signal.SIGHUP)
    alerts = wait_alerts(srv, lambda a: len(a) == 0)
    check_eq(alerts, [], "alerts resolved after the reload")
    t_res, res = rcv.wait_for(lambda b: b["status"] == "resolved")
    check(res is not None, "the receiver got the resolved notification")
    if res is not None:
        check_eq(len(res["alerts"]), 2, "both alerts resolved together")
        for a in res["alerts"]:
            check_eq(a["status"], "resolved", "alert status resolved")
            check(a["endsAt"] != "0001-01-01T00:00:00Z", "a resolved alert has its end")
    check_eq(srv.stop(), 0, "clean stop")

    # --- a receiver that keeps failing: counted, evaluation goes on ---
    with open(rules_file, "w") as f:
        f.write(FIRING_RULES.replace("for: 2s", "for: 0s"))
    dead = Receiver(fail_first=10**6)
    args2 = ["--rules-dir", rules_dir, "--alert-webhook-url",
             f"http://127.0.0.1:{dead.port}/hook", "--alert-group-wait", "0s"]
    srv = Server(binary, args2).start()
    deadline = time.time() + 20
    while time.time() < deadline and len(dead.got) < 3:
        time.sleep(0.1)
    check(len(dead.got) >= 3, "a failing receiver gets retries")
    st, body = srv.get_json("/api/v1/rules")
    check(st == 200 and body["data"]["groups"][0]["rules"][0]["health"] == "ok",
          f"evaluation goes on while deliveries fail: {body}")
    srv.cleanup()

    # --- --alert-max-alerts: Alertmanager's max_alerts, truncation reported ---
    small = Receiver(fail_first=0)
    args3 = ["--rules-dir", rules_dir, "--alert-webhook-url",
             f"http://127.0.0.1:{small.port}/hook", "--alert-group-wait", "0s",
             "--alert-max-alerts", "1"]
    srv = Server(binary, args3).start()
    _, note = small.wait_for(lambda b: b["status"] == "firing")
    check(note is not None, "a notification with max_alerts 1")
    if note is not None:
        check_eq(len(note["alerts"]), 1, "one alert in the notification")
        check_eq(note["truncatedAlerts"], 1, "the other one is reported as truncated")
        check_eq(note["commonLabels"], note["alerts"][0]["labels"],
                 "common labels are those of the alerts sent")
    check(metric(srv, "sightline_notification_alerts_truncated_total") >= 1,
          "truncated alerts counted in /metrics")
    srv.cleanup()
finally:
    shutil.rmtree(work, ignore_errors=True)

finish()
