"""Integration test of fleet-loadgen (real processes on loopback): the
registry, the gateway with the shipped route table, and fleet-echo instances
registered under the services' names (auth, users, tenants, analytics), so
every journey reaches a real upstream (which answers 404/401 for paths it
does not serve: the counts are what the summary must report). Checks the
rate is held, the summary (requests, status counts, percentiles per
journey), that a latency fault is set and cleared on every instance of a
service through /admin/faults with an admin service token, and that a kill
fault kills the process named by the pid file and holds it down for FOR
seconds (the hold file), then lets it go.

usage: test_fleet_loadgen.py FLEET_REGISTRY FLEET_GATEWAY FLEET_ECHO FLEET_LOADGEN ROUTES
"""

import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_harness import (Fleet, check, check_eq, finish, http, otel_env,  # noqa: E402
                           service_token, wait_for, write_key)

registry_bin, gateway_bin, echo_bin, loadgen_bin, routes = sys.argv[1:6]
work = tempfile.mkdtemp(prefix="fleet-loadgen-it-")
key_path, key = write_key(work)
user_key = os.path.join(work, "user.key")
with open(user_key, "w") as f:
    f.write(os.urandom(32).hex() + "\n")
env = otel_env(None)
procs = []
try:
    reg = Fleet(registry_bin, ["--service-key-file", key_path, "--check-interval-ms", "10000"],
                env=env, name="registry").start()
    procs.append(reg)
    auth = {"Authorization": "Bearer " + service_token(key, "tester", "registry", "registry")}
    upstream = {}
    for name in ("auth", "users", "tenants", "analytics"):
        e = Fleet(echo_bin, ["--service-key-file", key_path, "--enable-faults"], env=env,
                  name=name).start()
        procs.append(e)
        upstream[name] = e
        st, _, _ = http("POST", reg.url + "/v1/registry/instances",
                        {"name": name, "version": "1.0.0", "address": e.url}, auth)
        check_eq(st, 201, f"register {name}")
        # Also under its own name: the fault's admin token is for audience "echo".
        st, _, _ = http("POST", reg.url + "/v1/registry/instances",
                        {"name": "echo", "version": "1.0.0", "address": e.url}, auth)
        check_eq(st, 201, f"register {name} as echo")
    gw = Fleet(gateway_bin, ["--routes", routes, "--registry", reg.url, "--service-key-file",
                             key_path, "--user-key-file", user_key],
               env=env, name="gateway").start()
    procs.append(gw)
    pid_dir = os.path.join(work, "run")
    os.makedirs(pid_dir)
    with open(os.path.join(pid_dir, "tenants.pid"), "w") as f:
        f.write(f"{upstream['tenants'].proc.pid}\n")

    # Period 6 s: latency on every echo during [0, 2), tenants killed during [1, 3).
    args = [loadgen_bin, "--gateway", gw.url, "--rate", "40", "--duration", "5",
            "--concurrency", "4", "--report-s", "1", "--registry", reg.url,
            "--service-key-file", key_path, "--pid-dir", pid_dir,
            "--chaos", "0:latency:echo:30:2,1:kill:tenants:0:2", "--chaos-period", "6"]
    t0 = time.time()
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    wall = time.time() - t0
    out, err = p.stdout, p.stderr
    check_eq(p.returncode, 0, f"loadgen exit status; stderr: {err[-2000:]}")
    m = re.search(r"requests (\d+), ([\d.]+) requests/s", out)
    check(m is not None, f"summary line: {out}")
    if m:
        n = int(m.group(1))
        check(100 <= n <= 240, f"about 40/s for 5 s: {n} requests in {wall:.1f} s")
    check(re.search(r"status: .*\d{3}=\d+", out) is not None, f"status counts: {out}")
    for journey in ("signup", "login", "profile_read", "analytics", "all"):
        check(re.search(rf"^{journey}\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+$", out, re.M)
              is not None, f"percentiles of {journey}: {out}")
    check("loadgen: 1s" in err or "loadgen: 2s" in err, f"progress lines: {err[-500:]}")
    check(re.search(r"set latency fault on echo http://127\.0\.0\.1:\d+: HTTP 20\d", err)
          is not None, f"latency fault set with an admin token: {err[-2000:]}")
    check(re.search(r"cleared latency fault on echo .*HTTP 20\d", err) is not None,
          f"latency fault cleared: {err[-2000:]}")
    check("killed tenants" in err, f"kill fault: {err[-2000:]}")
    check(upstream["tenants"].proc.poll() is not None, "the killed service is dead")
    check(not os.path.exists(os.path.join(pid_dir, "tenants.hold")),
          "the hold file is gone after FOR seconds")
    st, _, body = http("GET", upstream["users"].url + "/admin/faults", headers={
        "Authorization": "Bearer " + service_token(key, "tester", "echo", "admin")})
    check(st == 200 and b'"latency_ms":0' in body.replace(b" ", b""),
          f"no fault left behind: {st} {body[:200]}")
finally:
    for pr in procs:
        pr.cleanup()
finish()
