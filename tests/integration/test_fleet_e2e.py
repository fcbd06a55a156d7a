"""The whole fleet end to end: nats-server, Sightline (with active health
checks on every service), the registry, the five services and the gateway,
all real processes on loopback, driven through the gateway:

- one sign-up through the gateway is ONE trace in Sightline (Jaeger API)
  spanning gateway -> auth -> users -> NATS -> notifications (and
  analytics), each span the child of the right one: the gateway's SERVER
  span under the caller's context, auth's SERVER under the gateway's
  CLIENT, users' SERVER under auth's CLIENT, the outbox relay's PRODUCER
  under users' SERVER, the CONSUMER spans under the PRODUCER, the webhook's
  CLIENT under notifications' CONSUMER;
- login, and a protected route answering with the user's token and 401
  without it;
- fleet-loadgen's MFA journey (sign-up, TOTP enrolment and confirmation,
  login with the next code) answers 2xx at every step;
- a tenant sign-up saga whose welcome step fails (faults injected into
  notifications) is compensated: 502, the tenant failed, the admin deleted;
- the gateway's rate limit answers 429 with Retry-After;
- a killed service opens the gateway's circuit breaker within 5 s and
  Sightline's /api/fleet/health marks it down.

usage: test_fleet_e2e.py SIGHTLINE REGISTRY GATEWAY USERS AUTH TENANTS NOTIFICATIONS
                         ANALYTICS ROUTES_YAML LOADGEN"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from fleet_webhook import WebhookReceiver
from fleet_harness import (Fleet, Nats, Server, check, check_eq, finish, free_port, get_trace,
                           json_of, otel_env, parent_of, service_token, tags_of, wait_for,
                           write_key)

(sightline_bin, registry_bin, gateway_bin, users_bin, auth_bin, tenants_bin, notif_bin,
 analytics_bin, routes_yaml, loadgen_bin) = sys.argv[1:11]
work = tempfile.mkdtemp(prefix="fleet-e2e-")


receiver = WebhookReceiver(fail_first=())
hook_url = receiver.url

# A tight rate limit so that the test can exceed it cheaply.
routes = os.path.join(work, "routes.yaml")
with open(routes_yaml) as f:
    text = f.read()
text = re.sub(r"per_key: \{[^}]*\}", "per_key: {rate: 20, burst: 40}", text)
with open(routes, "w") as f:
    f.write(text)

names = ["registry", "auth", "users", "tenants", "notifications", "analytics", "gateway"]
ports = {n: free_port() for n in names}
checks = ",".join(f"{n}=http://127.0.0.1:{ports[n]}/health" for n in names if n != "registry")

nats = Nats().start()
key_path, key = write_key(work)
user_key = os.path.join(work, "user.key")
with open(user_key, "w") as f:
    f.write(os.urandom(32).hex() + "\n")

sightline = Server(sightline_bin, ["--cut-interval", "200ms", "--health-checks", checks,
                                   "--health-check-interval", "200ms"]).start()
procs = []


def start(name, binary, *extra):
    common = ["--service-key-file", key_path]
    if name != "registry":
        common += ["--registry", f"http://127.0.0.1:{ports['registry']}"]
    p = Fleet(binary, common + ["--db", os.path.join(work, f"{name}.db")] + list(extra),
              env=otel_env(sightline, name), name=name,
              listen=f"127.0.0.1:{ports[name]}").start()
    procs.append(p)
    return p


try:
    start("registry", registry_bin)
    users = start("users", users_bin, "--nats", nats.url)
    notif = start("notifications", notif_bin, "--nats", nats.url, "--enable-faults")
    analytics = start("analytics", analytics_bin, "--nats", nats.url)
    auth = start("auth", auth_bin, "--user-key-file", user_key)
    tenants = start("tenants", tenants_bin, "--nats", nats.url)
    gateway = start("gateway", gateway_bin, "--routes", routes, "--user-key-file", user_key)

    def gw(method, path, body=None, token=None, headers=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        st, hdrs, data = gateway.request(method, path, body, h)
        return st, hdrs, json_of(data) if data else None

    # Services register; the gateway finds them.
    def ready():
        st, _, t = gw("GET", "/v1/tenants/plans")
        return st == 200
    check(wait_for(ready, timeout=30), "the gateway reaches tenants through the registry")

    # --- a tenant with a webhook --------------------------------------------
    st, _, t = gw("POST", "/v1/tenants", {"id": "acme", "name": "Acme", "plan": "pro",
                                         "admin_email": "boss@acme.test",
                                         "webhook_url": hook_url})
    check_eq((st, (t or {}).get("status")), (201, "active"), f"tenant sign-up saga ({t})")

    # --- one sign-up, one trace ---------------------------------------------
    trace_id = os.urandom(16).hex()
    root_span = os.urandom(8).hex()
    st, _, s = gw("POST", "/v1/auth/signup",
                  {"email": "ann@acme.test", "password": "correct horse", "tenant": "acme"},
                  headers={"traceparent": f"00-{trace_id}-{root_span}-01"})
    check_eq(st, 201, f"sign-up through the gateway ({s})")
    user_id = (s or {}).get("user_id", "")
    hooks = wait_for(lambda: receiver.find("user.created",
                                           lambda e: e["body"]["data"]["user_id"] == user_id), 20)
    check(bool(hooks), "the welcome webhook for the new user arrived")
    if hooks:
        check(hooks[0]["traceparent"].split("-")[1] == trace_id,
              "the webhook carries the sign-up's trace id")

    def has_all(spans_services):
        spans, svcs = spans_services
        kinds = {(svcs.get(sp["processID"]), tags_of(sp).get("span.kind")) for sp in spans}
        want = {("gateway", "server"), ("gateway", "client"), ("auth", "server"),
                ("auth", "client"), ("users", "server"), ("users", "producer"),
                ("notifications", "consumer"), ("notifications", "client"),
                ("analytics", "consumer")}
        return want <= kinds

    spans, svcs = wait_for(lambda: (lambda r: r if r[0] and has_all(r) else None)(
        get_trace(sightline, trace_id, min_spans=9, timeout=1)), timeout=30) or ([], {})
    check(bool(spans), f"the sign-up's trace holds every hop ({len(spans)} spans)")
    by_id = {sp["spanID"]: sp for sp in spans}

    def one(service, kind, pred=lambda sp: True):
        c = [sp for sp in spans if svcs.get(sp["processID"]) == service and
             tags_of(sp).get("span.kind") == kind and pred(sp)]
        return c[0] if c else None

    def child_of(child, parent, what):
        ok = child is not None and parent is not None and parent_of(child) == parent["spanID"]
        check(ok, f"{what}: parent is right")

    if spans:
        check_eq({sp["traceID"] for sp in spans}, {trace_id}, "one trace")
        g_srv = one("gateway", "server")
        check(g_srv is not None and parent_of(g_srv) == root_span,
              "the gateway's SERVER span continues the caller's context")
        g_cli = one("gateway", "client")
        child_of(g_cli, g_srv, "gateway CLIENT under gateway SERVER")
        a_srv = one("auth", "server")
        child_of(a_srv, g_cli, "auth SERVER under gateway CLIENT")
        a_cli = one("auth", "client")
        child_of(a_cli, a_srv, "auth CLIENT under auth SERVER")
        u_srv = one("users", "server")
        child_of(u_srv, a_cli, "users SERVER under auth CLIENT")
        prod = one("users", "producer")
        child_of(prod, u_srv, "the relay's PRODUCER under users SERVER")
        n_con = one("notifications", "consumer")
        child_of(n_con, prod, "notifications CONSUMER under the PRODUCER")
        child_of(one("analytics", "consumer"), prod, "analytics CONSUMER under the PRODUCER")
        child_of(one("notifications", "client"), n_con, "the webhook CLIENT under the CONSUMER")
        orphans = [sp for sp in spans if parent_of(sp) not in by_id and sp is not g_srv]
        check_eq(orphans, [], "every other span's parent is in the trace")

    # --- login and a protected route ----------------------------------------
    st, _, l = gw("POST", "/v1/auth/login", {"email": "ann@acme.test",
                                             "password": "correct horse"})
    check_eq(st, 200, "login through the gateway")
    token = (l or {}).get("access_token")
    st, _, me = gw("GET", f"/v2/users/{user_id}", token=token)
    check_eq((st, (me or {}).get("email")), (200, "ann@acme.test"), "own profile with the token")
    check_eq(gw("GET", f"/v2/users/{user_id}")[0], 401, "no token: 401")
    st, h, _ = gw("GET", f"/v1/users/{user_id}", token=token)
    check(st == 200 and "deprecation" in h and "sunset" in h, "v1 is deprecated with Sunset")
    st, _, a = gw("GET", "/v1/analytics/tenants/acme", token=token)
    check(st == 200 and (a or {}).get("total", 0) >= 1, f"analytics through the gateway ({a})")

    # --- the load generator's MFA journey ---------------------------------------
    # Each journey is four requests: sign-up 201, enrol 200, confirm 200, login
    # with the next step's code 200 (a spent or wrong code would be 401).
    lg = subprocess.run([loadgen_bin, "--gateway", gateway.url, "--journeys", "mfa",
                         "--rate", "2", "--duration", "3", "--concurrency", "2",
                         "--report-s", "0"], capture_output=True, text=True, timeout=120,
                        env=otel_env(sightline, "fleet-loadgen"))
    check_eq(lg.returncode, 0, f"loadgen exit status; stderr: {lg.stderr[-1000:]}")
    m = re.search(r"^mfa\s+(\d+)\s", lg.stdout, re.M)
    n_mfa = int(m.group(1)) if m else 0
    statuses = dict(re.findall(r" (\d{3})=(\d+)", (re.search(r"^status:(.*)$", lg.stdout, re.M)
                                                    or re.match("()", "")).group(1)))
    check(n_mfa >= 4 and n_mfa % 4 == 0 and set(statuses) <= {"200", "201"},
          f"MFA journeys all 2xx: {lg.stdout}")
    check_eq(int(statuses.get("201", 0)) * 4, n_mfa, "one sign-up per MFA journey")

    # --- a failed saga step is compensated -----------------------------------
    admin = "Bearer " + service_token(key, "test", "notifications", "admin")
    check_eq(notif.request("POST", "/admin/faults", {"error_ratio": 1.0},
                           {"Authorization": admin})[0], 200, "faults into notifications")
    st, _, t2 = gw("POST", "/v1/tenants", {"id": "doomed", "name": "Doomed",
                                          "admin_email": "boss@doomed.test"})
    notif.request("DELETE", "/admin/faults", None, {"Authorization": admin})
    saga = (t2 or {}).get("saga", {})
    check_eq((st, (t2 or {}).get("status"), saga.get("status"), saga.get("failed_step")),
             (502, "failed", "failed", "welcome_notification"), "the saga failed at its step")
    comp = [e["step"] for e in saga.get("history", []) if e["action"] == "compensate"]
    check_eq(comp, ["create_admin", "reserve_tenant"], "compensated in reverse")
    gwt = "Bearer " + service_token(key, "gateway", "users")
    st, _, _ = users.request("GET", f"/v2/users/{(t2 or {}).get('admin_user_id')}", None,
                             {"Authorization": gwt, "X-Tenant-Id": "doomed"})
    check_eq(st, 404, "the compensated admin user is gone")

    # --- rate limit ------------------------------------------------------------
    limited = None
    for _ in range(120):
        st, h, _ = gw("GET", "/v1/tenants/plans")
        if st == 429:
            limited = h
            break
    check(limited is not None and "retry-after" in limited, "the rate limit answers 429")

    # --- a killed service: breaker and health view -----------------------------
    analytics.stop(sig=signal.SIGKILL)
    procs.remove(analytics)
    t0 = time.time()

    def breaker_open():
        gw("GET", "/v1/analytics/tenants/acme", token=token)
        st, _, m = gateway.request("GET", "/metrics")
        text = m.decode(errors="replace")
        return re.search(r'circuit_breaker_state\{[^}]*upstream="analytics"[^}]*\} 1', text)

    opened = wait_for(breaker_open, timeout=5, interval=0.1)
    check(bool(opened), f"the gateway's breaker for analytics opened within 5 s"
                        f" ({time.time() - t0:.1f} s)")
    st, _, _ = gw("GET", "/v1/analytics/tenants/acme", token=token)
    check(st in (502, 503), f"calls to the killed service fail fast ({st})")

    def marked_down():
        st, doc = sightline.get_json("/api/fleet/health")
        svcs = (doc or {}).get("data", {}).get("services", []) if st == 200 else []
        return any(sv.get("service") == "analytics" and sv.get("status") == "down"
                   for sv in svcs)

    check(wait_for(marked_down, timeout=15), "Sightline's fleet health marks analytics down")
finally:
    for p in reversed(procs):
        rc = p.stop()
        check_eq(rc, 0, f"{p.name} stops cleanly ({p.failure_log()})")
    sightline.stop()
    receiver.stop()
    nats.cleanup()

finish()
