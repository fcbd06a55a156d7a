"""The README's fleet command itself: `scripts/run.sh --fleet` (scripts/fleet.sh)
starts nats-server, Sightline, the registry, every service, the gateway and
the load generator with a fault schedule; this test runs it in a temporary
directory on free loopback ports and watches it through Sightline's own API
only (Prometheus alerts API, /api/fleet/health, the Jaeger API, the
Prometheus query API):

- traces from the gateway and every service arrive, one of them spanning the
  gateway and a service behind it; the recording rules of fleet/rules/fleet.yml
  produce series;
- an error fault on auth (50% of its requests answer 500 for 15 s) makes
  FleetServiceErrorRatioHigh{service_name="auth"} fire and, once the fault
  has ended, resolve;
- a kill fault on tenants (SIGKILLed, its supervisor holds the restart for
  12 s) makes /api/fleet/health mark tenants down and FleetServiceDown fire;
  after the restart tenants is up again, the alert resolves and new traces of
  tenants arrive (the restarted process registered again: the gateway finds
  it through the registry);
- a second run on the same data directory or the same ports is refused before
  it touches the first one's files;
- Ctrl-C (SIGINT to the script's process group, as a terminal sends it) stops
  everything: the script exits 0 and no process of the fleet is left; no
  process reported a sanitizer error in its log.

Time: the rules are the real ones except for the evaluation interval (2 s
instead of 15 s) and `for` (4 s instead of 30 s / 10 s), set with fleet.sh's
--rule-interval and --rule-for (a derived copy in the data directory); the
active health checks run every second (SIGHTLINE_HEALTH_CHECK_INTERVAL). What
bounds the test is the 1-minute rate window of the error-ratio rule: with an
error ratio r during the fault, auth's ratio over the window drops below 5%
only once less than 0.05 * 60 / r seconds of the fault remain in it, i.e.
about 50 s after the fault ends (r = 0.5). So the whole run is 70 to 90 s
(startup about 10 s, faults at 4 s into the load, resolution about 75 s
into it, the stop a few seconds). Every wait is a poll with a deadline.

Skipped (exit 77) when nats-server is not installed.

usage: test_fleet_run.py REPO_DIR BUILD_DIR"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

from fleet_harness import FAILURES, check, check_eq, finish, http, json_of, wait_for

repo, build = sys.argv[1:3]
if shutil.which("nats-server") is None:
    print("nats-server is not installed: skipped")
    sys.exit(77)

# The schedule (seconds into the load generator's run; the period is long
# enough that it does not come round again during the test).
KILL_AT, KILL_FOR = 4, 12
ERR_AT, ERR_FOR, ERR_RATIO = 4, 15, 0.5
CHAOS = f"{KILL_AT}:kill:tenants:0:{KILL_FOR},{ERR_AT}:errors:auth:{ERR_RATIO}:{ERR_FOR}"
SERVICES = ["gateway", "auth", "users", "tenants", "notifications", "analytics"]
N_PORTS = 12  # NATS, OTLP/HTTP, OTLP/gRPC, query, registry, gateway, 6 services


def port_base():
    """A run of N_PORTS free consecutive loopback ports, below the ephemeral
    range (where other processes' outgoing connections take theirs)."""
    for _ in range(200):
        base = random.randrange(20000, 32000 - N_PORTS)
        socks = []
        try:
            for p in range(base, base + N_PORTS):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports")


work = tempfile.mkdtemp(prefix="fleet-run-it-")
data = os.path.join(work, "data")
base = port_base()
query = f"http://127.0.0.1:{base + 3}"
env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLEET_", "SIGHTLINE_"))}
env.update({"SIGHTLINE_HOST": "127.0.0.1", "SIGHTLINE_HEALTH_CHECK_INTERVAL": "1s",
            "SIGHTLINE_CUT_INTERVAL": "500ms", "SIGHTLINE_LOG_LEVEL": "warn",
            "OTEL_BSP_SCHEDULE_DELAY": "500", "OTEL_BLRP_SCHEDULE_DELAY": "500"})
cmd = ["bash", os.path.join(repo, "scripts", "run.sh"), "--fleet", "--data-dir", data,
       "--port-base", str(base), "--build-dir", build, "--no-setup",
       "--rule-interval", "2s", "--rule-for", "4s", "--rate", "10",
       "--chaos", CHAOS, "--chaos-period", "3600"]
out = open(os.path.join(work, "stdout"), "wb")
err = open(os.path.join(work, "stderr"), "wb")


def restore_sigint():
    # A shell started in the background of a non-interactive shell ignores
    # SIGINT and cannot trap it: give the script the terminal's default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


t_start = time.time()
proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=err, start_new_session=True,
                        preexec_fn=restore_sigint)


def script_log():
    with open(os.path.join(work, "stderr"), "rb") as f:
        return f.read().decode(errors="replace")


def tail(text, n=3000):
    return text[-n:]


def get_json(path):
    try:
        st, _, body = http("GET", query + path, timeout=10)
    except OSError:
        return None
    return json_of(body) if st == 200 else None


def alerts(name):
    """{service_name: state} of the active alerts called name."""
    doc = get_json("/api/v1/alerts") or {}
    return {a["labels"].get("service_name"): a["state"]
            for a in doc.get("data", {}).get("alerts", []) if a["labels"].get("alertname") == name}


def health():
    doc = get_json("/api/fleet/health") or {}
    return {s["service"]: s for s in doc.get("data", {}).get("services", [])}


seen_pids = set()


def note_pids():
    run = os.path.join(data, "fleet", "run")
    try:
        for f in os.listdir(run):
            if f.endswith(".pid"):
                with open(os.path.join(run, f)) as fh:
                    seen_pids.add(int(fh.read().strip() or 0))
    except (OSError, ValueError):
        pass


def processes_of_run():
    """Processes whose command line names the run's directory (every
    process the script starts, and the script's own subshells, do)."""
    left = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                line = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if work in line and int(pid) != os.getpid():
            left.append(f"{pid}: {line[:160]}")
    return left


stopped = False
try:
    up = wait_for(lambda: "everything is up" in script_log() or proc.poll() is not None,
                  timeout=90, interval=0.2)
    check(up and proc.poll() is None, "the fleet comes up: " + tail(script_log()))
    if proc.poll() is not None:
        raise RuntimeError("the run script exited at start")
    t_up = time.time()
    print(f"up after {t_up - t_start:.1f} s", flush=True)

    # The derived rules, the real ones untouched.
    with open(os.path.join(data, "fleet", "rules", "fleet.yml")) as f:
        derived = f.read()
    check("interval: 2s" in derived and "for: 4s" in derived and "for: 30s" not in derived,
          "the rules are a derived copy with the test's interval and for")

    # --- a second copy is refused before it touches anything -------------------
    # On the same data dir it used to delete the first one's pid files (whose
    # Ctrl-C then left everything running); on the same ports it passed the
    # start checks against the first one's processes.
    note_pids()
    pids_before = sorted(os.listdir(os.path.join(data, "fleet", "run")))
    other = os.path.join(work, "other")
    for what, args, message in [
            ("the same data dir", ["--data-dir", data, "--port-base", str(base)], "another run uses"),
            ("the same ports", ["--data-dir", other, "--port-base", str(base)], "is in use")]:
        second = subprocess.run(
            ["bash", os.path.join(repo, "scripts", "run.sh"), "--fleet", "--build-dir", build,
             "--no-setup", "--no-loadgen"] + args, cwd=work, env=env, capture_output=True,
            timeout=30)
        text = second.stderr.decode(errors="replace")
        check(second.returncode == 2 and message in text,
              f"a second run on {what} is refused ({second.returncode}: {text[-500:]})")
    check_eq(sorted(os.listdir(os.path.join(data, "fleet", "run"))), pids_before,
             "the first run's pid files are untouched")
    check(not os.path.exists(os.path.join(other, "fleet", "run", "nats.pid")),
          "the refused run started nothing")

    # --- the faults, watched from Sightline ------------------------------------
    # One loop polls the alerts and the health view and notes when each
    # expected state was first seen; it ends once all were seen (or at the
    # deadline: the error alert resolves about 75 s into the load).
    seen = {}
    kill_end = t_up + KILL_AT + KILL_FOR

    def note(what):
        if what not in seen:
            seen[what] = time.time()
            print(f"{seen[what] - t_up:6.1f} s  {what}", flush=True)

    want = ["tenants down", "FleetServiceDown firing", "tenants up again",
            "FleetServiceDown resolved", "auth error alert firing", "auth error alert resolved"]
    deadline = t_up + 150
    while time.time() < deadline and not all(w in seen for w in want):
        note_pids()
        h = health()
        down = alerts("FleetServiceDown")
        errs = alerts("FleetServiceErrorRatioHigh")
        tenants = h.get("tenants", {})
        if tenants.get("status") == "down":
            note("tenants down")
        if down.get("tenants") == "firing":
            note("FleetServiceDown firing")
        if ("tenants down" in seen and time.time() > kill_end and tenants
                and tenants.get("status") != "down"):
            note("tenants up again")
        if "FleetServiceDown firing" in seen and "tenants" not in down:
            note("FleetServiceDown resolved")
        if errs.get("auth") == "firing":
            note("auth error alert firing")
        if "auth error alert firing" in seen and "auth" not in errs:
            note("auth error alert resolved")
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    for w in want:
        check(w in seen, f"{w} (seen: {sorted(seen)}); script: " + tail(script_log(), 1500))
    if "tenants up again" in seen:
        check(seen["tenants up again"] > kill_end, "tenants is up only after its restart")
    if "auth error alert resolved" in seen:
        check(seen["auth error alert resolved"] > t_up + ERR_AT + ERR_FOR,
              "the error alert resolves after the fault ends")
    final = health()
    check(final.get("tenants", {}).get("status") not in (None, "down"),
          f"tenants not down at the end ({final.get('tenants')})")

    # --- traces -----------------------------------------------------------------
    def services():
        return set((get_json("/api/services") or {}).get("data") or [])

    got = wait_for(lambda: set(SERVICES) <= services(), timeout=20)
    check(got, f"traces of {SERVICES} arrived (services: {sorted(services())})")

    def spanning_trace():
        doc = get_json("/api/traces?" + urllib.parse.urlencode(
            {"service": "gateway", "limit": "20", "lookback": "1h"})) or {}
        for t in doc.get("data") or []:
            names = {p["serviceName"] for p in t["processes"].values()}
            if "gateway" in names and len(names & set(SERVICES)) >= 2:
                return names
        return None

    check(wait_for(spanning_trace, timeout=20),
          "a trace spans the gateway and a service behind it")

    if "tenants up again" in seen:
        restart_us = int((kill_end - 1) * 1e6)

        def tenants_after_restart():
            doc = get_json("/api/traces?" + urllib.parse.urlencode(
                {"service": "tenants", "start": str(restart_us),
                 "end": str(int(time.time() * 1e6) + 10**6), "limit": "1"})) or {}
            return bool(doc.get("data"))

        check(wait_for(tenants_after_restart, timeout=30),
              "traces of the restarted tenants arrive (it registered again)")

    # --- the recording rules, through the Prometheus API -----------------------
    def recorded():
        doc = get_json("/api/v1/query?" + urllib.parse.urlencode(
            {"query": 'service:server_calls:rate1m{service_name="gateway"}'})) or {}
        res = doc.get("data", {}).get("result") or []
        return res and float(res[0]["value"][1]) > 0

    check(wait_for(recorded, timeout=10), "the recording rule has the gateway's request rate")

    # --- Ctrl-C ------------------------------------------------------------------
    note_pids()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        rc = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        rc = None
    stopped = True
    check_eq(rc, 0, "the script exits 0 after Ctrl-C: " + tail(script_log(), 1500))
    check("run.sh --fleet: stopped" in script_log(), "the script says it stopped")
    left = wait_for(lambda: not processes_of_run(), timeout=5) or processes_of_run()
    check(left is True, f"no process of the fleet is left: {left}")
    alive = []
    for pid in seen_pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except (OSError, ValueError):
            pass
    check_eq(alive, [], f"every pid the run recorded ({len(seen_pids)}) is gone")
    with open(os.path.join(work, "stdout"), "rb") as f:
        summary = f.read().decode(errors="replace")
    check("requests" in summary, f"the load generator printed its summary ({summary[-300:]!r})")
    logs = os.path.join(data, "fleet", "logs")
    for name in sorted(os.listdir(logs)):
        with open(os.path.join(logs, name), "rb") as f:
            text = f.read().decode(errors="replace")
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                    "WARNING: ThreadSanitizer"):
            check(bad not in text, f"{name}: {bad}: " + tail(text[text.find(bad):], 1500))
finally:
    if not stopped and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    out.close()
    err.close()
    print(f"wall time {time.time() - t_start:.1f} s", flush=True)

if not FAILURES:
    shutil.rmtree(work, ignore_errors=True)
else:
    print(f"kept {work}", file=sys.stderr)
finish()
