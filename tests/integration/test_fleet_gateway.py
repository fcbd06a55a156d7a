"""Integration test of fleet-gateway (real processes on loopback): Sightline,
fleet-registry, three fleet-echo instances (two 1.0.0, one 2.0.0 canary)
registered in the registry, and the gateway with a test route table. Checks
routing through the registry, the canary share over 200 requests, round-robin,
429 with Retry-After per key, per client address without a key and per
tenant, 431 over the header limit, 401 on missing/bad/expired user
JWTs (EdDSA tokens signed with openssl), body checks (413/415/400), 404/405,
Deprecation/Sunset/Link headers, that the gateway's spans are the parents of
the upstream's, and that killing the upstream opens its circuit breaker
within 5 s of requests (503 circuit_open, breaker state 1 on /metrics).

usage: test_fleet_gateway.py SIGHTLINE FLEET_REGISTRY FLEET_GATEWAY FLEET_ECHO
"""

import base64
import http.server as httpserver
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_harness import (Fleet, Server, check, check_eq, finish, get_trace, http,  # noqa: E402
                           json_of, otel_env, parent_of, service_token, wait_for, write_key)

sightline_bin, registry_bin, gateway_bin, echo_bin = sys.argv[1:5]
work = tempfile.mkdtemp(prefix="fleet-gateway-it-")
key_path, key = write_key(work)
seed = secrets.token_bytes(32)
user_key = os.path.join(work, "user.key")
with open(user_key, "w") as f:
    f.write(seed.hex() + "\n")
routes = os.path.join(work, "routes.yaml")
with open(routes, "w") as f:
    f.write("""
routes:
  - prefix: /v1/echo
    service: echo
    auth: none
    methods: [GET, POST]
    canary: {version: "2", percent: 5}
    deprecated: 2026-09-01
    sunset: 2027-06-30T00:00:00Z
    successor: /v2/echo
  - prefix: /v1/echo/items
    service: echo
    auth: user
    methods: [GET]
  - path: /v1/echo/messages
    service: echo
    auth: none
    methods: [POST]
    scope: echo.write
limits: {max_body_bytes: 1024, max_header_bytes: 4096}
rate_limits:
  per_key: {rate: 0.5, burst: 3}
  per_tenant: {rate: 0.5, burst: 2}
""")


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def user_token(claims_extra=None, key_seed=seed, alg="EdDSA", ttl=300):
    now = int(time.time())
    claims = {"iss": "fleet-auth", "aud": "fleet", "sub": "u-1", "tenant": "t-1", "iat": now,
              "exp": now + ttl, "scope": "user"}
    claims.update(claims_extra or {})
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    msg = f"{head}.{body}".encode()
    der = os.path.join(work, "k.der")
    with open(der, "wb") as fh:
        fh.write(bytes.fromhex("302e020100300506032b657004220420") + key_seed)
    msg_path = os.path.join(work, "msg")
    with open(msg_path, "wb") as fh:
        fh.write(msg)
    out = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", der, "-keyform", "DER",
                          "-rawin", "-in", msg_path], capture_output=True, check=True).stdout
    return f"{head}.{body}.{b64(out)}"


def public_key(key_seed):
    der = os.path.join(work, "pk.der")
    with open(der, "wb") as fh:
        fh.write(bytes.fromhex("302e020100300506032b657004220420") + key_seed)
    out = subprocess.run(["openssl", "pkey", "-inform", "DER", "-in", der, "-pubout", "-outform",
                          "DER"], capture_output=True, check=True).stdout
    return out[-32:]


class FakeAuth(httpserver.BaseHTTPRequestHandler):
    """Stands in for fleet-auth's public endpoints: its key set and /health."""

    jwks = {}

    def do_GET(self):
        body = json.dumps(FakeAuth.jwks if self.path == "/v1/auth/jwks" else {"status": "ok"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def metric_sum(url, name, must=""):
    st, _, data = http("GET", url + "/metrics")
    total = 0.0
    for line in data.decode().splitlines():
        if line.startswith(name) and must in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


sl = Server(sightline_bin).start()
procs = []
try:
    env = lambda svc: otel_env(sl, svc)  # noqa: E731
    reg = Fleet(registry_bin, ["--service-key-file", key_path, "--check-interval-ms", "10000"],
                env=env("registry"), name="registry").start()
    procs.append(reg)
    echos = []
    for version in ("1.0.0", "1.0.0", "2.0.0"):
        e = Fleet(echo_bin, ["--service-key-file", key_path, "--version", version],
                  env=env("echo"), name="echo").start()
        procs.append(e)
        echos.append(e)
        st, _, _ = http("POST", reg.url + "/v1/registry/instances",
                        {"name": "echo", "version": version, "address": e.url, "ttl_s": 60},
                        {"Authorization": "Bearer " +
                         service_token(key, "tester", "registry", "registry")})
        check_eq(st, 201, f"register echo {version}")
    gw = Fleet(gateway_bin, ["--routes", routes, "--registry", reg.url, "--service-key-file",
                             key_path, "--user-key-file", user_key],
               env=env("gateway"), name="gateway").start()
    procs.append(gw)

    def get(path, headers=None, api_key=None, method="GET", body=None):
        h = dict(headers or {})
        h["X-API-Key"] = api_key or secrets.token_hex(8)
        st, hdrs, data = http(method, gw.url + path, body, h)
        return st, hdrs, json_of(data) if data else None

    st, _, body = http("GET", gw.url + "/ready")
    check_eq(st, 200, f"ready while the registry answers: {body[:200]}")

    # A second gateway without the seed: it verifies with auth's published key.
    FakeAuth.jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64(public_key(seed)),
                               "alg": "EdDSA", "use": "sig", "kid": "k1"}]}
    fake_auth = httpserver.ThreadingHTTPServer(("127.0.0.1", 0), FakeAuth)
    threading.Thread(target=fake_auth.serve_forever, daemon=True).start()
    st, _, _ = http("POST", reg.url + "/v1/registry/instances",
                    {"name": "auth", "version": "1.0.0",
                     "address": f"http://127.0.0.1:{fake_auth.server_address[1]}"},
                    {"Authorization": "Bearer " + service_token(key, "tester", "registry", "registry")})
    check_eq(st, 201, "register the stand-in auth")
    gw2 = Fleet(gateway_bin, ["--routes", routes, "--registry", reg.url, "--service-key-file",
                              key_path], env=env("gateway"), name="gateway2").start()
    procs.append(gw2)
    st, _, data = http("GET", gw2.url + "/v1/echo/items/7",
                       headers={"Authorization": "Bearer " + user_token(), "X-API-Key": "jwks"})
    check_eq(st, 200, f"user token verified with the key from /v1/auth/jwks: {data[:200]}")
    st, _, _ = http("GET", gw2.url + "/v1/echo/items/7", headers={
        "Authorization": "Bearer " + user_token(key_seed=secrets.token_bytes(32)),
        "X-API-Key": "jwks2"})
    check_eq(st, 401, "a token of another key fails with the published key")
    gw2.stop()
    fake_auth.shutdown()

    # Routing through the registry, with the deprecation headers of the route.
    st, hdrs, doc = get("/v1/echo/hello")
    check_eq(st, 200, "GET through the gateway")
    check_eq((doc or {}).get("hello"), "world", "the upstream's body")
    check_eq(hdrs.get("deprecation"), "@1788220800", "Deprecation header")
    check_eq(hdrs.get("sunset"), "Wed, 30 Jun 2027 00:00:00 GMT", "Sunset header")
    check_eq(hdrs.get("link"), '</v2/echo/hello>; rel="successor-version"', "Link header")

    # Canary: 5% of 200 requests to the 2.0.0 instance, the rest round-robin.
    before = [metric_sum(e.url, "http_server_requests_total", "/v1/echo/hello") for e in echos]
    canary_hdr = 0
    for _ in range(200):
        st, hdrs, _ = get("/v1/echo/hello")
        check_eq(st, 200, "canary run request")
        canary_hdr += hdrs.get("x-canary") == "1"
    served = [metric_sum(e.url, "http_server_requests_total", "/v1/echo/hello") - b
              for e, b in zip(echos, before)]
    check_eq(sum(served), 200, f"every request served once: {served}")
    check(5 <= served[2] <= 15, f"canary got about 5% (10 of 200): {served}")
    check_eq(canary_hdr, served[2], "X-Canary marks the canary's answers")
    check(abs(served[0] - served[1]) <= 2, f"round-robin between the stable ones: {served}")

    # Rate limit per API key: burst 3, then 429 with Retry-After.
    codes = [get("/v1/echo/hello", api_key="fixed-key")[0] for _ in range(3)]
    check_eq(codes, [200, 200, 200], "within the burst")
    st, hdrs, doc = get("/v1/echo/hello", api_key="fixed-key")
    check_eq(st, 429, "past the burst")
    ra = hdrs.get("retry-after", "")
    check(ra.isdigit() and 1 <= int(ra) <= 2, f"Retry-After in whole seconds: {ra!r}")
    check_eq(((doc or {}).get("error") or {}).get("code"), "rate_limited", "429 body")

    # Callers without a key: one bucket per client address, so that one of
    # them cannot starve the others.
    anon = [http("GET", gw.url + "/v1/echo/hello", source="127.0.0.2")[0] for _ in range(4)]
    check_eq(anon, [200, 200, 200, 429], "no API key, from 127.0.0.2: the burst, then 429")
    st, _, _ = http("GET", gw.url + "/v1/echo/hello", source="127.0.0.3")
    check_eq(st, 200, "no API key, from 127.0.0.3: a bucket of its own")

    # The header section's limit (max_header_bytes 4096 in the route table).
    st, _, _ = get("/v1/echo/hello", {"X-Pad": "a" * 3000})
    check_eq(st, 200, "headers under the limit")
    st, _, doc = get("/v1/echo/hello", {"X-Pad": "a" * 5000})
    check_eq(st, 431, "headers over the limit")
    check_eq(((doc or {}).get("error") or {}).get("code"), "headers_too_large", "431 body")

    # User JWTs on a protected route.
    st, hdrs, doc = get("/v1/echo/items/42")
    check_eq(st, 401, "no token")
    check("bearer" in hdrs.get("www-authenticate", "").lower(), "WWW-Authenticate")
    good = user_token()
    st, _, doc = get("/v1/echo/items/42", {"Authorization": "Bearer " + good})
    check_eq(st, 200, "valid user token")
    check_eq((doc or {}).get("id"), "42", "forwarded to the upstream")
    for name, tok in [("expired", user_token(ttl=-60)),
                      ("wrong key", user_token(key_seed=secrets.token_bytes(32))),
                      ("wrong audience", user_token({"aud": "other"})),
                      ("wrong issuer", user_token({"iss": "auth"})),
                      ("alg none", b64(json.dumps({"alg": "none"}).encode()) + "." +
                       good.split(".")[1] + "."),
                      ("garbage", "abc.def")]:
        st, _, _ = get("/v1/echo/items/42", {"Authorization": "Bearer " + tok})
        check_eq(st, 401, f"{name} token")
    # Rate limit per tenant (burst 2) whatever the API key.
    tt = user_token({"tenant": "t-busy"})
    codes = [get("/v1/echo/items/1", {"Authorization": "Bearer " + tt})[0] for _ in range(3)]
    check_eq(codes, [200, 200, 429], "per-tenant limit")

    # Request checks.
    st, _, doc = get("/v1/echo/messages", method="POST", body=b"x" * 2000,
                     headers={"Content-Type": "application/json"})
    check_eq(st, 413, "body over the route table's limit")
    st, _, _ = get("/v1/echo/messages", method="POST", body=b"hello",
                   headers={"Content-Type": "text/plain"})
    check_eq(st, 415, "not JSON")
    st, _, doc = get("/v1/echo/messages", method="POST", body=b'{"message":',
                     headers={"Content-Type": "application/json"})
    check_eq(st, 400, "malformed JSON")
    check_eq(((doc or {}).get("error") or {}).get("code"), "invalid_json", "400 code")
    st, _, doc = get("/v1/echo/messages", method="POST", body={"message": "hi"})
    check_eq(st, 201, "a valid POST with the route's scope reaches the upstream")
    check_eq((doc or {}).get("caller"), "gateway", "the upstream saw the gateway's service token")
    st, _, _ = get("/v1/nowhere")
    check_eq(st, 404, "no route")
    st, hdrs, _ = get("/v1/echo/items/1", method="DELETE")
    check_eq(st, 405, "method not allowed")
    check_eq(hdrs.get("allow"), "GET, POST", "Allow header")
    st, _, _ = get("/v1/echo/../admin")
    check(st in (400, 404), f"dot segments refused ({st})")

    # Trace context: the gateway's SERVER span continues ours, its CLIENT span
    # is the parent of the echo's SERVER span.
    trace_id, root = secrets.token_hex(16), secrets.token_hex(8)
    st, _, _ = get("/v1/echo/hello", {"traceparent": f"00-{trace_id}-{root}-01"})
    check_eq(st, 200, "traced request")
    spans, procs_by = get_trace(sl, trace_id, min_spans=3, timeout=30)
    by_id = {s["spanID"]: s for s in spans}
    svc = lambda s: procs_by.get(s["processID"])  # noqa: E731
    gw_server = [s for s in spans if svc(s) == "gateway" and parent_of(s) == root]
    echo_server = [s for s in spans if svc(s) == "echo"]
    check(len(gw_server) == 1, f"the gateway's SERVER span continues the caller's trace: {spans}")
    check_eq([s["operationName"] for s in gw_server], ["GET /v1/echo"], "named by the route")
    check(len(echo_server) == 1, "the echo's SERVER span is in the same trace")
    if gw_server and echo_server:
        client = by_id.get(parent_of(echo_server[0]))
        check(client is not None and svc(client) == "gateway" and
              parent_of(client) == gw_server[0]["spanID"],
              "echo's span is a child of the gateway's CLIENT span, itself a child of its SERVER span")

    # Circuit breaker: every echo instance killed; within 5 s of requests the
    # gateway answers 503 circuit_open without calling.
    for e in echos:
        e.stop(sig=signal.SIGKILL)
    t0 = time.time()
    seen = []
    while time.time() - t0 < 5:
        st, _, doc = get("/v1/echo/hello")
        code = ((doc or {}).get("error") or {}).get("code")
        seen.append((st, code))
        if st == 503 and code == "circuit_open":
            break
        time.sleep(0.05)
    print("breaker sequence:", seen, "canary split:", served)
    check(seen and seen[-1] == (503, "circuit_open"), f"breaker open within 5 s: {seen[-5:]}")
    check(all(s in (502, 503, 504) for s, _ in seen), f"failures are 5xx JSON errors: {seen}")
    check_eq(metric_sum(gw.url, "http_client_circuit_breaker_state", 'upstream="echo"'), 1.0,
             "breaker state on /metrics")
    reg.stop()
    st, _, body = http("GET", gw.url + "/ready")
    check(st == 503 and b"registry" in body, f"not ready without the registry: {st} {body[:200]}")
    check_eq(gw.stop(), 0, "gateway exits 0 on SIGTERM")
finally:
    for p in procs:
        p.cleanup()
    sl.stop()
finish()
