"""Cross-check of rule evaluation against Prometheus 2.42: the same rule file
runs in `prometheus` (samples pushed through its remote-write receiver) and
in `sightline serve` (the same samples as OTLP/JSON gauges), both evaluating
every second, while the test moves the data through phases. At each phase's
steady state the alerts of both /api/v1/alerts must agree (labels,
templated annotations, state, value) and so must the recording rule's
series; over the whole run every alert must go through the same states
(pending before firing when it has a `for`, none without) and both must end
with no alert once the condition is gone.

Timing differs (each evaluates on its own grid, one second apart at most), so
the test compares steady states and state sequences, never instants.

usage: test_alerting_prom_diff.py SIGHTLINE_BINARY
Exits 77 (skipped) when prometheus is not installed."""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, check, check_eq, finish, free_port, pb_field,  # noqa: E402
                     pb_varint)
from test_promql_diff import stop_process  # noqa: E402

# keep_firing_for is left out: Prometheus 2.42 predates it.
RULES = """groups:
  - name: diff
    interval: 1s
    rules:
      - alert: HighTemp
        expr: temp_celsius > 30
        for: 3s
        labels:
          severity: page
        annotations:
          summary: "room {{ $labels.room }} at {{ $value }} degrees"
      - alert: VeryHot
        expr: temp_celsius > 40
        labels:
          severity: critical
      - alert: ManyHot
        expr: count(temp_celsius > 30) > 1
        for: 2s
        annotations:
          summary: "{{ $value }} rooms are hot"
      - record: room:temp_celsius:max
        expr: max by (room) (temp_celsius)
"""

# Phases: (room -> temperature, seconds held).
PHASES = [
    ({"a": 20, "b": 21, "c": 22}, 4),
    ({"a": 35, "b": 25, "c": 45}, 9),
    ({"a": 36, "b": 33, "c": 25}, 9),
    ({"a": 20, "b": 21, "c": 22}, 8),
]




def remote_write_body(temps, t_ms):
    """A snappy-framed prometheus.WriteRequest (snappy as one literal)."""
    series = b""
    for room, v in sorted(temps.items()):
        labels = [("__name__", "temp_celsius"), ("room", room)]
        ts = b"".join(pb_field(1, 2, pb_field(1, 2, k.encode()) + pb_field(2, 2, val.encode()))
                      for k, val in labels)
        ts += pb_field(2, 2, pb_field(1, 1, struct.pack("<d", v)) + pb_field(2, 0, t_ms))
        series += pb_field(1, 2, ts)
    lit = pb_varint(len(series)) + bytes([63 << 2]) + struct.pack("<I", len(series) - 1) + series
    return lit


def otlp_body(temps, t_ns):
    points = [{"timeUnixNano": str(t_ns), "asDouble": float(v),
               "attributes": [{"key": "room", "value": {"stringValue": r}}]}
              for r, v in sorted(temps.items())]
    return json.dumps({"resourceMetrics": [{"resource": {}, "scopeMetrics": [{"metrics": [
        {"name": "temp_celsius", "gauge": {"dataPoints": points}}]}]}]}).encode()



def get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def alerts_of(doc):
    """{(alertname, labels...): (state, annotations, value)} of an /api/v1/alerts body."""
    out = {}
    for a in (doc or {}).get("data", {}).get("alerts", []):
        key = tuple(sorted(a["labels"].items()))
        out[key] = (a["state"], tuple(sorted(a.get("annotations", {}).items())),
                    float(a["value"]))
    return out


def main():
    binary = sys.argv[1]
    prom = shutil.which("prometheus")
    if not prom:
        print("SKIP: prometheus is not installed (scripts/setup.sh installs it)")
        sys.exit(77)
    work = tempfile.mkdtemp(prefix="sightline-alert-diff-")
    rules_dir = os.path.join(work, "rules")
    os.makedirs(rules_dir)
    with open(os.path.join(rules_dir, "diff.yml"), "w") as f:
        f.write(RULES)
    cfg = os.path.join(work, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  evaluation_interval: 1s\nrule_files:\n  - "
                + os.path.join(rules_dir, "diff.yml") + "\nscrape_configs: []\n")
    port = free_port()
    plog = open(os.path.join(work, "prometheus.log"), "wb")
    proc = subprocess.Popen([prom, f"--config.file={cfg}",
                             f"--storage.tsdb.path={os.path.join(work, 'tsdb')}",
                             f"--web.listen-address=127.0.0.1:{port}",
                             "--web.enable-remote-write-receiver"], stdout=plog, stderr=plog)
    srv = None
    try:
        deadline = time.time() + 60
        while get_json(f"http://127.0.0.1:{port}/api/v1/status/buildinfo") is None:
            check(time.time() < deadline and proc.poll() is None, "prometheus starts")
            if time.time() > deadline or proc.poll() is not None:
                return
            time.sleep(0.2)
        srv = Server(binary, ["--rules-dir", rules_dir, "--rule-interval", "1s"]).start()
        purl = f"http://127.0.0.1:{port}"
        surl = f"http://127.0.0.1:{srv.query_port}"

        seen = {"prometheus": {}, "sightline": {}}  # key -> [states], consecutive deduped
        steady = []  # per phase: (prometheus alerts, sightline alerts, recordings)

        def poll():
            got = {}
            for name, base in (("prometheus", purl), ("sightline", surl)):
                al = alerts_of(get_json(base + "/api/v1/alerts"))
                got[name] = al
                for k, (state, _, _) in al.items():
                    states = seen[name].setdefault(k, [])
                    if not states or states[-1] != state:
                        states.append(state)
                for k, states in seen[name].items():
                    if k not in al and states[-1] != "inactive":
                        states.append("inactive")
            return got

        def recording(base):
            q = urllib.parse.urlencode({"query": "room:temp_celsius:max"})
            doc = get_json(f"{base}/api/v1/query?{q}") or {}
            return {r["metric"].get("room"): float(r["value"][1])
                    for r in doc.get("data", {}).get("result", [])}

        for temps, hold in PHASES:
            end = time.time() + hold
            last = None
            while time.time() < end:
                now = time.time_ns()
                req = urllib.request.Request(
                    purl + "/api/v1/write", data=remote_write_body(temps, now // 1_000_000),
                    headers={"Content-Type": "application/x-protobuf",
                             "Content-Encoding": "snappy",
                             "X-Prometheus-Remote-Write-Version": "0.1.0"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    check(r.status in (200, 204), f"remote write accepted ({r.status})")
                st, _, _ = srv.post("/v1/metrics", otlp_body(temps, now), "application/json")
                check_eq(st, 200, "OTLP metrics accepted")
                last = poll()
                time.sleep(0.25)
            steady.append((last["prometheus"], last["sightline"], recording(purl),
                           recording(surl)))

        for i, (p_al, s_al, p_rec, s_rec) in enumerate(steady):
            check_eq(s_al, p_al, f"phase {i}: the same alerts, states, annotations and values")
            check_eq(s_rec, p_rec, f"phase {i}: the same recording rule series")
        check(len(steady[1][0]) >= 4, f"phase 1 fires alerts in Prometheus: {steady[1][0]}")
        check_eq(steady[-1][0], {}, "no alert in Prometheus at the end")
        check_eq(seen["sightline"], seen["prometheus"],
                 "every alert went through the same states")
    finally:
        if srv is not None:
            srv.cleanup()
        stop_process(proc)
        plog.close()
        shutil.rmtree(work, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
