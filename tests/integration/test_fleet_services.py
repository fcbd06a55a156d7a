"""The fleet's business services as real processes on real NATS (JetStream):

- users: v2 and v1 representations of one user, create/read/list/update/
  delete, a retried create is idempotent, a taken email is 409; through the
  gateway a member changes only their own profile (not their role) and an
  administrator anyone's; a missing
  service token is 401, a caller the route does not admit 403, bad JSON 400;
- plans: users refuses a user beyond the tenant's plan (limits learnt from
  tenant.created events);
- tenants: the sign-up saga creates the tenant, its admin (in users) and the
  welcome notification, delivered to the tenant's webhook (a receiver run by
  this test, which fails the first attempt: the delivery is retried);
  with notifications failing every request (fault injection) the saga fails,
  the admin user is deleted again, the tenant ends failed with the reason,
  and GET shows the saga's history; tenants killed in the middle of a saga
  resumes it when restarted;
- auth: sign-up (profile created in users), access tokens that verify with
  the published Ed25519 key (openssl), login, wrong password, refresh
  rotation, reuse of a used refresh token revoking the session, logout,
  TOTP enrolment and login with a code (computed here, RFC 6238), a code
  replayed is refused;
- events: user.created reaches notifications (a webhook delivered to the
  tenant) and analytics (counts per tenant and type); a message delivered
  twice by JetStream is counted once (idempotent by event id);
- every service stops cleanly on SIGTERM.

usage: test_fleet_services.py USERS AUTH TENANTS NOTIFICATIONS ANALYTICS"""

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from fleet_webhook import WebhookReceiver
from fleet_harness import (Fleet, Nats, check, check_eq, finish, json_of, service_token,
                           wait_for, write_key)

users_bin, auth_bin, tenants_bin, notif_bin, analytics_bin = sys.argv[1:6]
work = tempfile.mkdtemp(prefix="fleet-svc-")


receiver = WebhookReceiver(fail_first={"tenant.welcome"})
hook_url = receiver.url

nats = Nats().start()
key_path, key = write_key(work)
user_key_path = os.path.join(work, "user.key")
with open(user_key_path, "w") as f:
    f.write(os.urandom(32).hex() + "\n")


def svc(binary, name, *extra):
    db = os.path.join(work, f"{name}.db")
    return Fleet(binary, ["--db", db, "--nats", nats.url, "--service-key-file", key_path]
                 + list(extra), name=name)


procs = []
try:
    users = svc(users_bin, "users", "--enable-faults").start()
    notif = svc(notif_bin, "notifications", "--enable-faults").start()
    analytics = svc(analytics_bin, "analytics").start()
    auth = svc(auth_bin, "auth", "--users-url", users.url, "--user-key-file",
               user_key_path).start()
    tenants = svc(tenants_bin, "tenants", "--users-url", users.url, "--notifications-url",
                  notif.url).start()
    procs = [users, notif, analytics, auth, tenants]

    def user_token(sub, tenant, scope):
        """What the gateway forwards in X-User-Token (it verified the
        signature; the services read the claims)."""
        enc = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
        return ".".join([enc({"alg": "EdDSA"}), enc({"sub": sub, "tenant": tenant,
                                                     "scope": scope}), "c2ln"])

    def call(target, method, path, body=None, iss="gateway", tenant=None, user=None,
             scope="", token=True, role="admin"):
        hdrs = {}
        if token:
            hdrs["Authorization"] = "Bearer " + service_token(key, iss, target.name, scope)
        if tenant:
            hdrs["X-Tenant-Id"] = tenant
        if user:
            hdrs["X-User-Id"] = user
        if iss == "gateway" and tenant:
            hdrs["X-User-Token"] = user_token(user or "someone", tenant,
                                              "user admin" if role == "admin" else "user")
        st, h, data = target.request(method, path, body, hdrs)
        return st, h, json_of(data) if data else None

    # /ready names the upstreams a service cannot serve without.
    st, _, rd = tenants.request("GET", "/ready")
    check_eq(st, 200, f"tenants is ready with users and notifications up ({rd})")

    # --- users -------------------------------------------------------------
    st, h, u = call(users, "POST", "/v2/users",
                    {"email": "ann@example.com", "display_name": "Ann"}, tenant="t0")
    check_eq(st, 201, "create user (v2)")
    uid = u["id"]
    check_eq(h.get("location"), f"/v2/users/{uid}", "Location of the new user")
    check_eq((u["tenant"], u["display_name"], u["role"], u["version"]), ("t0", "Ann", "member", 1),
             "v2 representation")
    st, _, u1 = call(users, "GET", f"/v1/users/{uid}", tenant="t0")
    check_eq(st, 200, "read user (v1)")
    check_eq((u1.get("tenant_id"), u1.get("name"), "display_name" in u1), ("t0", "Ann", False),
             "v1 representation")
    check_eq(call(users, "GET", f"/v2/users/{uid}", tenant="t9")[0], 404,
             "another tenant does not see the user")
    st, _, u2 = call(users, "PATCH", f"/v2/users/{uid}", {"display_name": "Ann B."}, tenant="t0")
    check_eq((st, u2.get("display_name"), u2.get("version")), (200, "Ann B.", 2), "update user")
    st, _, lst = call(users, "GET", "/v2/users?limit=10", tenant="t0")
    check_eq((st, lst.get("total"), len(lst.get("data", []))), (200, 1, 1), "list users")
    check_eq(call(users, "POST", "/v2/users", {"email": "ann@example.com"}, tenant="t0")[0], 409,
             "a taken email is a conflict")
    st, _, again = call(users, "POST", "/v2/users", {"id": uid, "email": "ann@example.com"},
                        tenant="t0")
    check_eq(st, 200, "a retried create with the same id and email is idempotent")
    check_eq(call(users, "POST", "/v2/users", {"email": 5}, tenant="t0")[0], 400,
             "a mistyped field is 400")
    check_eq(call(users, "POST", "/v2/users", {"email": "x@y.z"}, token=False,
                  tenant="t0")[0], 401, "no service token is 401")
    check_eq(call(users, "POST", "/v2/users", {"email": "x@y.z"}, iss="analytics",
                  tenant="t0")[0], 403, "a caller the route does not admit is 403")
    # A member (not an administrator) changes only their own profile.
    st, _, bob = call(users, "POST", "/v2/users", {"email": "bob@example.com"}, tenant="t0")
    check_eq(call(users, "POST", "/v2/users", {"email": "eve@example.com"}, tenant="t0",
                  user=bob["id"], role="member")[0], 403, "a member cannot create users")
    check_eq(call(users, "PATCH", f"/v2/users/{uid}", {"display_name": "X"}, tenant="t0",
                  user=bob["id"], role="member")[0], 403, "a member cannot change another user")
    check_eq(call(users, "PATCH", f"/v2/users/{bob['id']}", {"display_name": "Bob"}, tenant="t0",
                  user=bob["id"], role="member")[0], 200, "a member changes their own profile")
    check_eq(call(users, "PATCH", f"/v2/users/{bob['id']}", {"role": "admin"}, tenant="t0",
                  user=bob["id"], role="member")[0], 403, "...but not their role")
    check_eq(call(users, "DELETE", f"/v2/users/{uid}", tenant="t0")[0], 204, "delete user")
    check_eq(call(users, "GET", f"/v2/users/{uid}", tenant="t0")[0], 404, "deleted user is gone")

    # --- tenants: the sign-up saga -----------------------------------------
    st, h, t1 = call(tenants, "POST", "/v1/tenants",
                     {"id": "t1", "name": "Acme", "plan": "pro", "admin_email": "boss@acme.test",
                      "webhook_url": hook_url})
    check_eq(st, 201, f"tenant sign-up saga completes ({t1})")
    check_eq((t1.get("status"), t1.get("saga", {}).get("status")), ("active", "completed"),
             "tenant active, saga completed")
    check_eq(t1.get("limits", {}).get("max_users"), 100, "the pro plan's limits")
    admin = t1.get("admin_user_id", "")
    st, _, a = call(users, "GET", f"/v2/users/{admin}", tenant="t1")
    check_eq((st, a.get("role") if a else None), (200, "admin"), "the admin user exists in users")
    welcome = wait_for(lambda: receiver.find("tenant.welcome"), timeout=20)
    check(bool(welcome), "the welcome webhook reached the tenant's receiver")
    st, _, d = call(notif, "GET", "/v1/notifications/deliveries?tenant=t1", iss="test")
    wd = [x for x in (d or {}).get("data", []) if x["type"] == "tenant.welcome"]
    check(bool(wd) and wd[0]["status"] == "delivered" and wd[0]["attempts"] == 2,
          f"the welcome delivery failed once, was retried and delivered ({wd})")
    check_eq(call(tenants, "POST", "/v1/tenants", {"id": "t1", "name": "again",
                                                  "admin_email": "x@acme.test"})[0], 409,
             "a taken tenant id is 409")
    check_eq(call(tenants, "POST", "/v1/tenants", {"name": "x", "plan": "gold",
                                                  "admin_email": "x@acme.test"})[0], 400,
             "an unknown plan is 400")

    # Plans: users learns t3's limit (free: 5 users) from tenant.created and
    # refuses the sixth user. Until the event arrives there is no limit, so a
    # sixth user created too early is removed and the attempt repeated.
    st, _, t3 = call(tenants, "POST", "/v1/tenants", {"id": "t3", "name": "Tiny",
                                                     "admin_email": "boss@tiny.test"})
    check_eq((st, (t3 or {}).get("plan")), (201, "free"), "a tenant on the free plan")
    for i in range(4):
        check_eq(call(users, "POST", "/v2/users", {"email": f"u{i}@tiny.test"}, tenant="t3")[0],
                 201, f"user {i + 2} of 5")

    def sixth_refused():
        st, _, u6 = call(users, "POST", "/v2/users", {"email": "six@tiny.test"}, tenant="t3")
        if st == 201:
            call(users, "DELETE", f"/v2/users/{u6['id']}", tenant="t3")
        return st == 403

    check(wait_for(sixth_refused, timeout=20, interval=0.3), "the plan's user limit is enforced")
    st, _, lst = call(users, "GET", "/v2/users", tenant="t3")
    check_eq(lst.get("total"), 5, "t3 holds exactly its plan's 5 users")

    # A failing step is compensated: notifications answers 500 to everything.
    admin_tok = "Bearer " + service_token(key, "test", "notifications", "admin")
    st, _, _ = notif.request("POST", "/admin/faults", {"error_ratio": 1.0},
                             {"Authorization": admin_tok})
    check_eq(st, 200, "faults injected into notifications")
    st, _, t2 = call(tenants, "POST", "/v1/tenants",
                     {"id": "t2", "name": "Doomed", "admin_email": "boss@doomed.test"})
    notif.request("DELETE", "/admin/faults", None, {"Authorization": admin_tok})
    check_eq(st, 502, "the saga's failure is answered 502")
    saga = (t2 or {}).get("saga", {})
    check_eq(((t2 or {}).get("status"), saga.get("status"), saga.get("failed_step")),
             ("failed", "failed", "welcome_notification"), "tenant and saga failed at the step")
    check("notifications" in saga.get("error", ""), f"the reason is kept: {saga.get('error')}")
    hist = [(e["step"], e["action"], e["outcome"]) for e in saga.get("history", [])]
    check_eq(hist, [("reserve_tenant", "run", "ok"), ("create_admin", "run", "ok"),
                    ("welcome_notification", "run", "error"),
                    ("create_admin", "compensate", "ok"), ("reserve_tenant", "compensate", "ok")],
             "the saga's history: compensated in reverse")
    check_eq(call(users, "GET", f"/v2/users/{t2['admin_user_id']}", tenant="t2")[0], 404,
             "the compensated admin user was deleted")
    st, _, t2b = call(tenants, "GET", "/v1/tenants/t2")
    check_eq((st, t2b.get("status")), (200, "failed"), "GET shows the failed tenant")

    # A saga survives a crash: tenants is killed while create_admin waits
    # on a slow users; restarted, it resumes the saga before serving, and
    # the retried step is idempotent (one admin).
    users_admin = "Bearer " + service_token(key, "test", "users", "admin")
    users.request("POST", "/admin/faults", {"latency_ms": 1500}, {"Authorization": users_admin})
    def doomed_post():
        try:
            call(tenants, "POST", "/v1/tenants", {"id": "t4", "name": "Phoenix",
                                                  "admin_email": "boss@phoenix.test"})
        except OSError:
            pass  # the process answering it is killed

    bg = threading.Thread(target=doomed_post, daemon=True)
    bg.start()
    check(wait_for(lambda: call(tenants, "GET", "/v1/tenants/t4")[0] == 200, timeout=10,
                   interval=0.05), "the saga started")
    time.sleep(0.3)
    tenants.stop(sig=signal.SIGKILL)
    users.request("DELETE", "/admin/faults", None, {"Authorization": users_admin})
    bg.join(10)
    tenants.start()
    st, _, t4 = call(tenants, "GET", "/v1/tenants/t4")
    check_eq((st, (t4 or {}).get("status"), (t4 or {}).get("saga", {}).get("status")),
             (200, "active", "completed"), f"the saga resumed after the restart ({t4})")
    st, _, lst4 = call(users, "GET", "/v2/users", tenant="t4")
    check_eq((lst4 or {}).get("total"), 1, "the resumed step made one admin")

    # --- auth ----------------------------------------------------------------
    st, h, s1 = call(auth, "POST", "/v1/auth/signup",
                     {"email": "Zoe@Example.com", "password": "correct horse", "tenant": "t1",
                      "name": "Zoe"})
    check_eq(st, 201, f"sign-up ({s1})")
    zoe = s1["user_id"]
    st, _, prof = call(users, "GET", f"/v2/users/{zoe}", tenant="t1")
    check_eq((st, prof.get("email"), prof.get("display_name")), (200, "zoe@example.com", "Zoe"),
             "sign-up made the profile in users")
    check_eq(call(auth, "POST", "/v1/auth/signup", {"email": "zoe@example.com",
                                                   "password": "another one", "tenant": "t1"})[0],
             409, "an email signs up once")
    check_eq(call(auth, "POST", "/v1/auth/signup", {"email": "short@example.com",
                                                   "password": "short"})[0], 400,
             "a short password is 400")

    def b64d(s):
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    # The access token verifies with the published key.
    st, _, jwks = call(auth, "GET", "/v1/auth/jwks", token=False)
    check_eq(st, 200, "the key set is public")
    jwk = jwks["keys"][0]
    at = s1["access_token"]
    head, body, sig = at.split(".")
    claims = json.loads(b64d(body))
    check_eq((json.loads(b64d(head))["alg"], claims["sub"], claims["tenant"], claims["iss"],
              claims["aud"], claims["scope"]), ("EdDSA", zoe, "t1", "fleet-auth", "fleet", "user"),
             "access token claims")
    check(claims["exp"] - claims["iat"] == 900, "access token lives 15 minutes")
    der = bytes.fromhex("302a300506032b6570032100") + b64d(jwk["x"])
    pem = os.path.join(work, "user.pub.pem")
    with open(pem, "w") as f:
        f.write("-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode() +
                "\n-----END PUBLIC KEY-----\n")
    for name, data in (("msg", f"{head}.{body}".encode()), ("sig", b64d(sig))):
        with open(os.path.join(work, name), "wb") as f:
            f.write(data)
    v = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin",
                        "-in", os.path.join(work, "msg"), "-sigfile", os.path.join(work, "sig")],
                       capture_output=True)
    check_eq(v.returncode, 0, f"the signature verifies with the JWK ({v.stdout} {v.stderr})")

    check_eq(call(auth, "POST", "/v1/auth/login", {"email": "zoe@example.com",
                                                  "password": "wrong horse"})[0], 401,
             "wrong password is 401")
    check_eq(call(auth, "POST", "/v1/auth/login", {"email": "nobody@example.com",
                                                  "password": "whatever1"})[0], 401,
             "unknown email is 401")
    st, _, l1 = call(auth, "POST", "/v1/auth/login", {"email": "ZOE@example.com",
                                                     "password": "correct horse"})
    check_eq((st, l1.get("user_id")), (200, zoe), "login")
    st, _, r1 = call(auth, "POST", "/v1/auth/refresh", {"refresh_token": l1["refresh_token"]})
    check(st == 200 and r1["refresh_token"] != l1["refresh_token"], "refresh rotates the token")
    check_eq(call(auth, "POST", "/v1/auth/refresh", {"refresh_token": l1["refresh_token"]})[0],
             401, "a used refresh token is refused")
    check_eq(call(auth, "POST", "/v1/auth/refresh", {"refresh_token": r1["refresh_token"]})[0],
             401, "...and its reuse revoked the session's newer token too")
    st, _, l2 = call(auth, "POST", "/v1/auth/login", {"email": "zoe@example.com",
                                                     "password": "correct horse"})
    check_eq(call(auth, "POST", "/v1/auth/logout", {"refresh_token": l2["refresh_token"]})[0], 204,
             "logout")
    check_eq(call(auth, "POST", "/v1/auth/refresh", {"refresh_token": l2["refresh_token"]})[0],
             401, "a logged-out session cannot refresh")

    # TOTP.
    def totp(secret_b32, t):
        k = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
        mac = hmac.new(k, struct.pack(">Q", int(t) // 30), hashlib.sha1).digest()
        off = mac[-1] & 15
        return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7fffffff) % 1000000)

    check_eq(call(auth, "POST", "/v1/auth/totp/enroll")[0], 401,
             "enrolment needs a signed-in user")
    st, _, en = call(auth, "POST", "/v1/auth/totp/enroll", user=zoe)
    check(st == 200 and en["otpauth_uri"].startswith("otpauth://totp/"), f"enrol ({en})")
    check_eq(call(auth, "POST", "/v1/auth/totp/verify", {"code": "000000"}, user=zoe)[0], 401,
             "a wrong code does not enable TOTP")
    now = time.time()
    check_eq(call(auth, "POST", "/v1/auth/totp/verify", {"code": totp(en["secret"], now)},
                  user=zoe)[0], 200, "TOTP enabled")
    st, _, m = call(auth, "POST", "/v1/auth/login", {"email": "zoe@example.com",
                                                    "password": "correct horse"})
    check_eq((st, (m or {}).get("mfa_required")), (401, True), "login now asks for the code")
    # The step used for enabling cannot log in again; the next one can.
    code = totp(en["secret"], now + 30)
    st, _, m = call(auth, "POST", "/v1/auth/login", {"email": "zoe@example.com",
                                                    "password": "correct horse",
                                                    "totp_code": code})
    check_eq(st, 200, "login with password and TOTP code")
    check_eq(call(auth, "POST", "/v1/auth/login", {"email": "zoe@example.com",
                                                  "password": "correct horse",
                                                  "totp_code": code})[0], 401,
             "a TOTP code is accepted once")

    # --- events: notifications and analytics --------------------------------
    hooks = wait_for(lambda: receiver.find("user.created",
                                           lambda e: e["body"]["data"]["user_id"] == zoe), 20)
    check(bool(hooks), "user.created reached t1's webhook through NATS")
    if hooks:
        check_eq(hooks[0]["body"]["tenant"], "t1", "the webhook carries the event")
        check(bool(hooks[0]["traceparent"]), "the webhook carries a traceparent")

    def counts(tenant):
        st, _, c = call(analytics, "GET", f"/v1/analytics/tenants/{tenant}", tenant=tenant)
        return c.get("counts", {}) if st == 200 else {}

    got = wait_for(lambda: counts("t1").get("user.created") == 2 and
                   counts("t1").get("tenant.created") == 1 and counts("t1"), 20)
    check(bool(got), f"analytics counted t1's events ({counts('t1')})")
    check_eq(call(analytics, "GET", "/v1/analytics/tenants/t1", tenant="t0")[0], 403,
             "a user reads only their own tenant's analytics")

    # JetStream delivers one event twice (published twice, no message id):
    # it is counted once.
    ev = json.dumps({"id": "dup-event-1", "type": "test.ping", "tenant": "t7",
                     "time": "2026-01-01T00:00:00Z", "data": {}}).encode()
    with socket.create_connection(("127.0.0.1", nats.port), timeout=5) as sock:
        sock.recv(4096)
        msg = b"CONNECT {\"verbose\":false}\r\n"
        for _ in range(2):
            msg += b"PUB events.t7.test.ping %d\r\n%s\r\n" % (len(ev), ev)
        sock.sendall(msg + b"PING\r\n")
        buf = b""
        while b"PONG" not in buf:
            buf += sock.recv(4096)
    wait_for(lambda: counts("t7").get("test.ping"), 20)
    time.sleep(1.0)
    check_eq(counts("t7").get("test.ping"), 1, "an event delivered twice is counted once")
    st, _, d7 = call(notif, "GET", "/v1/notifications/deliveries?tenant=t7", iss="test")
    check_eq(len((d7 or {}).get("data", [])), 1, "...and recorded once by notifications")
finally:
    for p in reversed(procs):
        rc = p.stop()
        check_eq(rc, 0, f"{p.name} stops cleanly on SIGTERM ({p.failure_log()})")
    receiver.stop()
    nats.cleanup()

finish()
