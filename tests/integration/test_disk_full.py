"""A full disk: the collector answers 503 with Retry-After and logs why,
keeps serving queries, loses nothing it acknowledged, and starts again on
the full disk. Runs on a small tmpfs; needs root to mount it (skipped with
exit code 77 otherwise).

usage: test_disk_full.py SIGHTLINE_BINARY"""

import glob
import http.client
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

from harness import Server, check, check_eq, finish, load

SKIP = 77


def main():
    binary, otlp_gen = sys.argv[1:3]
    mnt = tempfile.mkdtemp(prefix="sightline-diskfull-")
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt],
            capture_output=True).returncode != 0:
        print("SKIP: mounting a small tmpfs needs root")
        sys.exit(SKIP)
    try:
        # Bodies to fill the disk with: generated outside the small disk.
        gen = tempfile.mkdtemp(prefix="sightline-diskfull-gen-")
        subprocess.run([otlp_gen, "--spans", "2000", "--count", "150", "--out-dir", gen],
                       check=True)
        bodies = sorted(glob.glob(os.path.join(gen, "*.pb")))
        # Data on the small disk; the server's log beside it, where there is room.
        srv = Server(binary, ["--cut-interval", "500ms", "--data-dir", mnt]).start()
        acked, statuses, refusals = {}, [], []
        lock = threading.Lock()

        def fill(part):
            conn = http.client.HTTPConnection("127.0.0.1", srv.otlp_port, timeout=30)
            for path in part:
                with open(path, "rb") as f:
                    conn.request("POST", "/v1/traces", body=f.read(),
                                 headers={"Content-Type": "application/x-protobuf"})
                r = conn.getresponse()
                msg = r.read()
                with lock:
                    statuses.append((r.status, r.getheader("Retry-After")))
                    if r.status == 503:
                        refusals.append(msg)
                    if sum(1 for s, _ in statuses if s == 503) >= 10:
                        break
            conn.close()

        # Small JSON requests (whose ids are known) alongside the bulk.
        ts = load(srv, seconds=8, threads=2, spans_per_req=50, acked=acked, statuses=statuses)
        fillers = [threading.Thread(target=fill, args=(bodies[i::2],)) for i in range(2)]
        for t in fillers:
            t.start()
        for t in fillers + ts:
            t.join()
        for path in bodies:
            os.unlink(path)
        os.rmdir(gen)
        codes = {s for s, _ in statuses}
        check(codes <= {200, 503}, f"only 200 and 503 on a full disk, got {codes}")
        busy = [ra for s, ra in statuses if s == 503]
        check(len(busy) >= 10, f"a full disk answers 503 ({len(busy)} seen)")
        check(all(ra == "1" for ra in busy), "503 carries Retry-After")
        check(len(acked) > 0, "requests were acknowledged before the disk filled")
        check(srv.proc.poll() is None, "the server is still running")
        log = srv.read_log()
        check("No space left on device" in log, "the log says the disk is full")
        check(any(b"storage is full" in m for m in refusals),
              f"refused requests are told the storage is full ({set(refusals)!r})")
        st, _ = srv.get_json("/healthz")
        check_eq(st, 200, "health endpoint answers on a full disk")

        # A sample keeps the test short; which ones is random on every run.
        sample = random.sample(sorted(acked.items()), min(len(acked), 150))

        def missing():
            n = 0
            for tid, count in sample:
                st, doc = srv.get_json(f"/api/traces/{tid}")
                if st != 200 or len(doc["data"][0]["spans"]) != count:
                    n += 1
            return n

        check_eq(missing(), 0, f"acknowledged traces readable on a full disk (of {len(acked)})")
        check_eq(srv.stop(), 0, "SIGTERM on a full disk exits 0")
        srv.start()
        check_eq(missing(), 0, "acknowledged traces readable after a restart on the full disk")
        check_eq(srv.stop(), 0, "second stop exits 0")
        srv.cleanup()
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        os.rmdir(mnt)
    finish()


if __name__ == "__main__":
    main()
