"""The runtime's registry client against the real fleet-registry:
- two fleet-echo instances (versions 1.0.0 and 2.0.0) register on start
  (they are listed, passing, with their tags);
- a third instance calls "echo" through discovery: calls alternate between
  the instances (round-robin), ?version= picks one version;
- SIGTERM deregisters an instance (it disappears from the registry and,
  once the 2 s cache expired, from discovery);
- a registry restart (it forgets everything) makes the heartbeats answer 404
  and the instances register again by themselves.

usage: test_fleet_registry.py FLEET_REGISTRY_BINARY FLEET_ECHO_BINARY"""

import sys
import time

from fleet_harness import Fleet, check, check_eq, finish, json_of, otel_env, service_token, wait_for, write_key

registry_bin, echo_bin = sys.argv[1], sys.argv[2]
procs = []
keydir = Fleet(echo_bin).dir
key_path, key = write_key(keydir)
env = otel_env(None)


def start(binary, args, name):
    p = Fleet(binary, ["--service-key-file", key_path] + args, env=env, name=name).start()
    procs.append(p)
    return p


try:
    registry = start(registry_bin, [], "registry")
    auth = {"Authorization": "Bearer " + service_token(key, "tester", "registry", "registry")}

    def instances(name, query=""):
        st, _, body = registry.request("GET", f"/v1/registry/services/{name}{query}", headers=auth)
        return st, json_of(body).get("instances") or []

    v1 = start(echo_bin, ["--registry", registry.url, "--version", "1.0.0", "--tags", "blue,a"],
               "echo-v1")
    v2 = start(echo_bin, ["--registry", registry.url, "--version", "2.0.0", "--tags", "green"],
               "echo-v2")
    caller = start(echo_bin, ["--registry", registry.url], "caller")
    got = wait_for(lambda: len(instances("echo")[1]) == 3, timeout=10)
    check(got, "three echo instances registered: %r" % (instances("echo"),))
    st, insts = instances("echo")
    by_addr = {i.get("address"): i for i in insts}
    check(v1.url in by_addr and v2.url in by_addr, "addresses are the instances' listening URLs")
    if v1.url in by_addr:
        i = by_addr[v1.url]
        check_eq((i.get("name"), i.get("version"), sorted(i.get("tags") or []), i.get("status")),
                 ("echo", "1.0.0", ["a", "blue"], "passing"), "v1's registration")

    # Discovery through the caller: round-robin over the passing instances.
    seen = []
    for _ in range(6):
        st, _, body = caller.request("GET", "/v1/echo/call/echo/v1/echo/hello")
        check_eq(st, 200, "discovery-aware call: %r" % body)
        seen.append(json_of(body).get("instance"))
    check_eq(set(seen), {v1.url, v2.url, caller.url}, "calls spread over every instance")
    check(all(seen[i] != seen[i + 1] for i in range(len(seen) - 1)), "round-robin: %r" % seen)
    st, _, body = caller.request("GET", "/v1/echo/call/echo/v1/echo/hello?version=2.0.0")
    check_eq(json_of(body).get("instance"), v2.url, "?version=2.0.0 reaches v2 only")
    st, _, body = caller.request("GET", "/v1/echo/call/nothing/x")
    check_eq((st, json_of(body).get("error")), (502, "no instance of the service available"),
             "an unknown service: no instance")

    # SIGTERM deregisters.
    check_eq(v1.stop(), 0, "v1 exits 0")
    check(wait_for(lambda: v1.url not in {i.get("address") for i in instances("echo")[1]}, 5),
          "v1 deregistered on SIGTERM")
    time.sleep(2.2)  # the caller's discovery cache
    seen = {json_of(caller.request("GET", "/v1/echo/call/echo/v1/echo/hello")[2]).get("instance")
            for _ in range(4)}
    check(v1.url not in seen, "discovery no longer returns v1: %r" % seen)

    # The registry restarts empty on the same port: heartbeats get 404 and
    # the instances register again by themselves.
    port = registry.port
    check_eq(registry.stop(), 0, "registry exits 0")
    registry = Fleet(registry_bin, ["--service-key-file", key_path], env=env, name="registry2",
                     listen=f"127.0.0.1:{port}").start()
    procs.append(registry)
    got = wait_for(lambda: {i.get("address") for i in instances("echo")[1]} == {v2.url, caller.url},
                   timeout=25)
    check(got, "instances registered again after the registry forgot them: %r" %
          (instances("echo"),))
    for p in procs:
        if p.proc is not None and p.proc.poll() is None:
            check_eq(p.stop(), 0, f"{p.name} exits 0: " + p.failure_log())
finally:
    for p in procs:
        p.cleanup()
finish()
