"""Integration test of fleet-registry (real processes on loopback): the
registry API with service tokens, re-registration keeping the id, TTL expiry
and revival by heartbeat, an active health check failure marking an instance
critical (a real fleet-echo instance, then the same one killed), discovery
filters, and a restart on the same database keeping the instances.

usage: test_fleet_registry.py FLEET_REGISTRY FLEET_ECHO
"""

import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_harness import (Fleet, check, check_eq, finish, free_port, http, json_of,  # noqa: E402
                           service_token, wait_for, write_key)

registry_bin, echo_bin = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="fleet-registry-it-")
key_path, key = write_key(work)
db = os.path.join(work, "registry.db")
args = ["--db", db, "--service-key-file", key_path, "--check-interval-ms", "300",
        "--check-timeout-ms", "1000", "--reap-after-s", "0"]


def auth(scope="registry", iss="tester"):
    return {"Authorization": "Bearer " + service_token(key, iss, "registry", scope)}


def call(reg, method, path, body=None, headers=None):
    st, _, data = http(method, reg.url + path, body, headers if headers is not None else auth())
    return st, json_of(data) if data else None


def instances(reg, name, query=""):
    st, doc = call(reg, "GET", f"/v1/registry/services/{name}{query}")
    check_eq(st, 200, f"discover {name}{query}")
    return (doc or {}).get("instances", [])


reg = Fleet(registry_bin, args, name="registry").start()
echo = Fleet(echo_bin, [], name="echo").start()
dead = f"http://127.0.0.1:{free_port()}"
try:
    # Service tokens: none is 401, a token without the registry scope 403;
    # the list of services (names and counts) is public.
    st, _, _ = http("GET", reg.url + "/v1/registry/services/echo")
    check_eq(st, 401, "no service token")
    st, _ = call(reg, "GET", "/v1/registry/services/echo", headers=auth(scope="other"))
    check_eq(st, 403, "token without scope registry")
    st, _, _ = http("POST", reg.url + "/v1/registry/instances", {"name": "x", "address": "http://a:1"})
    check_eq(st, 401, "registering needs a token")
    st, _, _ = http("GET", reg.url + "/v1/registry/services")
    check_eq(st, 200, "the service list is public")

    # Registration, and the same name+address again keeps the id.
    body = {"name": "echo", "version": "1.0.0", "address": echo.url, "tags": ["zone-a"],
            "ttl_s": 30}
    st, doc = call(reg, "POST", "/v1/registry/instances", body)
    check_eq(st, 201, "register")
    live_id = (doc or {}).get("id", "")
    check_eq(len(live_id), 32, "id is 32 hex digits")
    body["version"] = "1.0.1"
    st, doc = call(reg, "POST", "/v1/registry/instances", body)
    check_eq(st, 200, "re-register")
    check_eq((doc or {}).get("id"), live_id, "re-register keeps the id")
    st, doc = call(reg, "POST", "/v1/registry/instances", {"name": "echo", "address": "x"})
    check_eq(st, 400, "bad address")
    check("error" in (doc or {}), "400 has an error message")

    # An instance at a dead address: the active check marks it critical.
    st, doc = call(reg, "POST", "/v1/registry/instances",
                   {"name": "echo", "version": "2.0.0", "address": dead, "ttl_s": 30})
    check_eq(st, 201, "register the dead one")
    dead_id = (doc or {}).get("id", "")
    crit = wait_for(lambda: [i for i in instances(reg, "echo", "?all=1")
                             if i["id"] == dead_id and i["status"] == "critical"], timeout=15)
    check(bool(crit), "a failing health check marks the instance critical")
    if crit:
        check("reason" in crit[0], "a critical instance says why")
    listed = instances(reg, "echo")
    check_eq([i["id"] for i in listed], [live_id], "discovery lists only the passing instance")
    check_eq(listed[0]["version"] if listed else None, "1.0.1", "fields replaced on re-register")
    check_eq(instances(reg, "echo", "?version=2&all=1")[0]["id"] if
             instances(reg, "echo", "?version=2&all=1") else None, dead_id, "version filter")
    check_eq(len(instances(reg, "echo", "?tag=zone-a")), 1, "tag filter")
    check_eq(len(instances(reg, "echo", "?tag=zone-b")), 0, "tag filter (absent)")
    st, doc = call(reg, "GET", "/v1/registry/services")
    check_eq(doc, {"services": [{"name": "echo", "instances": 2, "passing": 1}]}, "services")

    # TTL: a 1 s TTL without heartbeats expires; a heartbeat revives it.
    st, doc = call(reg, "POST", "/v1/registry/instances",
                   {"name": "short", "address": echo.url, "ttl_s": 1})
    short_id = (doc or {}).get("id", "")
    check_eq(len(instances(reg, "short")), 1, "fresh instance passing")
    gone = wait_for(lambda: len(instances(reg, "short")) == 0, timeout=10)
    check(gone, "an instance past its TTL is not listed")
    all_short = instances(reg, "short", "?all=1")
    check(len(all_short) == 1 and all_short[0]["status"] == "critical" and
          all_short[0].get("reason") == "ttl expired", f"expired instance is critical: {all_short}")
    st, doc = call(reg, "PUT", f"/v1/registry/instances/{short_id}/heartbeat")
    check_eq(st, 200, "heartbeat")
    check_eq((doc or {}).get("status"), "passing", "heartbeat revives")
    st, _ = call(reg, "PUT", "/v1/registry/instances/" + "0" * 32 + "/heartbeat")
    check_eq(st, 404, "heartbeat of an unknown instance")
    st, _ = call(reg, "DELETE", f"/v1/registry/instances/{short_id}")
    check_eq(st, 204, "deregister")
    st, _ = call(reg, "DELETE", f"/v1/registry/instances/{short_id}")
    check_eq(st, 404, "deregister twice")

    # The live instance dies: its check fails and it turns critical.
    echo.stop(sig=signal.SIGKILL)
    check(wait_for(lambda: len(instances(reg, "echo")) == 0, timeout=15),
          "a killed instance turns critical")

    # Restart on the same database: the instances are still there.
    check_eq(reg.stop(), 0, "registry exits 0 on SIGTERM")
    reg = Fleet(registry_bin, args, name="registry").start()
    ids = sorted(i["id"] for i in instances(reg, "echo", "?all=1"))
    check_eq(ids, sorted([live_id, dead_id]), "a restarted registry keeps its instances")
    st, _ = call(reg, "PUT", f"/v1/registry/instances/{live_id}/heartbeat")
    check_eq(st, 200, "heartbeat after the restart")
finally:
    reg.cleanup()
    echo.cleanup()
finish()
