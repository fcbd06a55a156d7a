"""LMDB maps that fill up: with a 1 MiB --wal-map-size and --map-size, the
write-ahead log, the trace windows and the logs windows all outgrow their
maps. The write-ahead log grows before a write that would not fit and a
window grows when a cut finds it full, so every request is acknowledged (no
503 while the disk has room), every acknowledged span and log record is
stored and readable, each growth is logged, and the store reopens after a
restart with the same tiny settings and keeps growing.

usage: test_map_full.py SIGHTLINE_BINARY"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, check_eq, finish, rand_hex, request, span  # noqa: E402

ARGS = ["--map-size", "1MiB", "--wal-map-size", "1MiB", "--cut-interval", "300ms"]


def traces_body(tids):
    """One request: 40 spans per trace id, with incompressible attributes."""
    spans = [span(t, rand_hex(8), f"op{i}", attrs=[{"key": "blob",
                                                   "value": {"stringValue": rand_hex(128)}}])
             for t in tids for i in range(40)]
    return json.dumps(request("mapfull", spans)).encode()


def logs_body(n):
    now = time.time_ns()
    recs = [{"timeUnixNano": str(now + i), "severityNumber": 9,
             "body": {"stringValue": f"line {i} " + rand_hex(200)}} for i in range(n)]
    return json.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "maplogs"}}]},
        "scopeLogs": [{"logRecords": recs}]}]}).encode()


def metric(srv, name):
    _, _, body = srv.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def main():
    binary = sys.argv[1]
    srv = Server(binary, ARGS).start()
    tids, statuses = [], []
    for _ in range(60):
        batch = [rand_hex(16) for _ in range(5)]
        st, _, _ = srv.post("/v1/traces", traces_body(batch), "application/json")
        statuses.append(st)
        if st == 200:
            tids += batch
    for _ in range(12):
        st, _, _ = srv.post("/v1/logs", logs_body(400), "application/json")
        statuses.append(st)
    check_eq(sorted(set(statuses)), [200], "every request acknowledged while maps grow")

    # Everything is cut into the windows (which grow), then readable.
    deadline = time.time() + 60
    while time.time() < deadline and metric(srv, "sightline_storage_wal_records") != 0:
        time.sleep(0.3)
    check_eq(metric(srv, "sightline_storage_wal_records"), 0, "the WAL is cut empty")
    log = srv.read_log()
    check("write-ahead log of tenant default: map grown" in log, "the WAL's growth is logged")
    grown = [line for line in log.splitlines() if "map was full; grown" in line]
    check(any("/traces/" in line for line in grown), "a trace window's growth is logged")
    check(any("/logs/" in line for line in grown), "a logs window's growth is logged")

    def all_found():
        missing = [t for t in tids if srv.get_json(f"/api/traces/{t}")[0] != 200]
        return missing
    check_eq(all_found(), [], "every acknowledged trace is stored")
    st, doc = srv.get_json("/api/logs?service=maplogs&limit=5000")
    check_eq(len(doc.get("data", [])), 12 * 400, "every acknowledged log record is stored")
    check_eq(srv.stop(), 0, "clean stop")

    # The same tiny settings after a restart: the data is there, writes go on.
    srv = Server(binary, ARGS, data_dir=srv.data_dir).start()
    check_eq(all_found(), [], "every trace after the restart")
    more = [rand_hex(16) for _ in range(5)]
    statuses = [srv.post("/v1/traces", traces_body(more), "application/json")[0]
                for _ in range(10)]
    check_eq(sorted(set(statuses)), [200], "writes after the restart are acknowledged")
    deadline = time.time() + 60
    while time.time() < deadline and metric(srv, "sightline_storage_wal_records") != 0:
        time.sleep(0.3)
    tids += more
    check_eq(all_found(), [], "and stored")
    check("cannot grow" not in srv.read_log(), "no growth failed")
    check_eq(srv.stop(), 0, "clean stop")
    srv.cleanup()
    finish()


if __name__ == "__main__":
    main()
