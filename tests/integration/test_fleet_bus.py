"""The fleet runtime's client side and message bus end to end, with a real
nats-server (JetStream) and the real Sightline binary:
- a call through the runtime's client: a CLIENT span in the caller, child of
  its SERVER span, and the callee's SERVER span child of the CLIENT span;
- an event committed with its state change (outbox) is relayed to JetStream
  and consumed by a durable queue consumer in another process: PRODUCER and
  CONSUMER spans in the request's trace, with correct parents;
- core NATS publish/subscribe with a queue group: each message to one member,
  CONSUMER spans children of PRODUCER spans;
- NATS down: events still commit (201), /ready reports nats; NATS back: the
  pending events are published and consumed, each once;
- events committed while NATS is down by a producer then killed with SIGKILL
  are published by the restarted producer (the outbox is the database);
- a durable consumer started while NATS is down: /ready 503, then it
  subscribes in the background once NATS is back and receives events;
- a killed upstream opens the caller's circuit breaker within 5 s
  (http_client_circuit_breaker_state on /metrics), and /ready, which requires
  that upstream, answers 503 naming it.

usage: test_fleet_bus.py SIGHTLINE_BINARY FLEET_ECHO_BINARY"""

import os
import signal
import sys
import time
import urllib.parse

from fleet_harness import (Fleet, Nats, Server, check, check_eq, finish, get_trace, json_of,
                           otel_env, parent_of, tags_of, wait_for)

sightline_bin, echo_bin = sys.argv[1], sys.argv[2]

srv = Server(sightline_bin).start()
nats = Nats().start()
procs = []


def fleet(name, args):
    p = Fleet(echo_bin, args, env=otel_env(srv, service=name), name=name).start()
    procs.append(p)
    return p


try:
    producer = fleet("producer", ["--db", os.path.join(nats.dir, "producer.db"),
                                  "--nats", nats.url, "--require", "echo-upstream"])
    consumer = fleet("consumer", ["--nats", nats.url, "--consume", "notifications",
                                  "--subscribe", "chat.>"])
    consumer2 = fleet("consumer2", ["--nats", nats.url, "--subscribe", "chat.>"])
    upstream = fleet("upstream", [])

    # --- a call through the runtime's client -----------------------------------
    trace_id = os.urandom(16).hex()
    root = os.urandom(8).hex()
    target = urllib.parse.quote(upstream.url + "/v1/echo/hello", safe="")
    st, _, body = producer.request("GET", "/v1/echo/proxy?url=" + target,
                                   headers={"traceparent": f"00-{trace_id}-{root}-01"})
    check_eq(st, 200, "proxied call: %r" % body)
    check_eq(json_of(body).get("body", {}).get("trace_id"), trace_id,
             "the upstream continued the caller's trace")
    spans, services = get_trace(srv, trace_id, min_spans=3)
    by_name = {(services.get(s["processID"]), s["operationName"]): s for s in spans}
    server_a = by_name.get(("producer", "GET /v1/echo/proxy"))
    client = by_name.get(("producer", "GET"))
    server_b = by_name.get(("upstream", "GET /v1/echo/hello"))
    check(server_a and client and server_b, "SERVER, CLIENT, SERVER spans: %r" % list(by_name))
    if server_a and client and server_b:
        check_eq(parent_of(server_a), root, "caller's SERVER span under the test's span")
        check_eq(parent_of(client), server_a["spanID"], "CLIENT span under the SERVER span")
        check_eq(parent_of(server_b), client["spanID"], "callee's SERVER span under the CLIENT span")
        t = tags_of(client)
        check_eq(t.get("span.kind"), "client", "client kind")
        check_eq(t.get("http.response.status_code"), 200, "client status code")
        check_eq(t.get("peer.service"), "echo-upstream", "peer.service")
        check_eq(t.get("server.port"), upstream.port, "client server.port")
        check(t.get("url.full", "").endswith("/v1/echo/hello"), "url.full")

    # --- an event through the outbox, JetStream and a durable consumer ---------
    trace_id = os.urandom(16).hex()
    root = os.urandom(8).hex()
    st, _, body = producer.request("POST", "/v1/echo/events",
                                   {"tenant": "t1", "type": "user.created", "data": {"n": 1}},
                                   headers={"traceparent": f"00-{trace_id}-{root}-01"})
    check_eq(st, 201, "event stored: %r" % body)
    event_id = json_of(body).get("id")

    def received():
        st, _, body = consumer.request("GET", "/v1/echo/received")
        return json_of(body) if st == 200 else {}

    got = wait_for(lambda: event_id in received().get("events", {}), timeout=20)
    check(got, "the consumer received the event")
    ev = received().get("events", {}).get(event_id, {})
    check_eq(ev.get("subject"), "events.t1.user.created", "subject events.<tenant>.<type>")
    check(ev.get("traceparent", "").startswith(f"00-{trace_id}-"),
          "traceparent travelled in the headers: %r" % ev.get("traceparent"))

    spans, services = get_trace(srv, trace_id, min_spans=3)
    by_name = {(services.get(s["processID"]), s["operationName"]): s for s in spans}
    server = by_name.get(("producer", "POST /v1/echo/events"))
    prod = by_name.get(("producer", "events.t1.user.created publish"))
    cons = by_name.get(("consumer", "events.t1.user.created process"))
    check(server and prod and cons, "SERVER, PRODUCER, CONSUMER spans: %r" % list(by_name))
    if server and prod and cons:
        check_eq(parent_of(prod), server["spanID"], "PRODUCER under the request's SERVER span")
        check_eq(parent_of(cons), prod["spanID"], "CONSUMER under the PRODUCER span")
        check_eq(tags_of(prod).get("span.kind"), "producer", "producer kind")
        check_eq(tags_of(cons).get("span.kind"), "consumer", "consumer kind")
        check_eq(tags_of(prod).get("messaging.system"), "nats", "messaging.system")
        check_eq(tags_of(cons).get("messaging.message.id"), event_id, "message id on the consumer")
        check_eq(tags_of(cons).get("messaging.destination.name"), "events.t1.user.created",
                 "destination on the consumer")

    # --- core NATS: a queue group shares the messages -----------------------------
    trace_id = os.urandom(16).hex()
    root = os.urandom(8).hex()
    core_ids = [f"core-{i}" for i in range(20)]
    for cid in core_ids:
        st, _, _ = producer.request("POST", "/v1/echo/publish", {"subject": "chat.room1", "id": cid},
                                    headers={"traceparent": f"00-{trace_id}-{root}-01"})
        check_eq(st, 202, "core publication")

    def core_got(p):
        st, _, body = p.request("GET", "/v1/echo/received")
        return {k for k in json_of(body).get("events", {}) if k.startswith("core-")}

    check(wait_for(lambda: len(core_got(consumer) | core_got(consumer2)) == 20, timeout=10),
          "the queue group received all 20 core messages")
    a, b = core_got(consumer), core_got(consumer2)
    check(not (a & b), "each core message went to one member of the queue group")
    check(a and b, "both members got a share: %d and %d" % (len(a), len(b)))
    spans, services = get_trace(srv, trace_id, min_spans=60)
    kinds = sorted(tags_of(s).get("span.kind") for s in spans)
    check_eq((kinds.count("server"), kinds.count("producer"), kinds.count("consumer")),
             (20, 20, 20), "SERVER, PRODUCER and CONSUMER spans of the core messages")
    by_id = {s["spanID"]: s for s in spans}
    check(all(tags_of(by_id.get(parent_of(s), {})).get("span.kind") == "producer"
              for s in spans if tags_of(s).get("span.kind") == "consumer"),
          "every CONSUMER span is a child of a PRODUCER span")

    # --- NATS outage: events commit, wait in the outbox, go out once back -------
    nats.stop()
    st, _, body = producer.request("GET", "/ready")
    ready = wait_for(lambda: producer.request("GET", "/ready")[0] == 503, timeout=10)
    check(ready, "/ready is 503 while NATS is down")
    st, _, body = producer.request("GET", "/ready")
    check("nats" in json_of(body).get("checks", {}) and
          json_of(body)["checks"]["nats"] != "ok", "/ready names nats: %r" % body)
    ids = []
    for i in range(3):
        st, _, body = producer.request("POST", "/v1/echo/events",
                                       {"tenant": "t2", "type": "tenant.created", "data": {"i": i}})
        check_eq(st, 201, "event %d committed while NATS is down" % i)
        ids.append(json_of(body).get("id"))
    time.sleep(1.5)
    check(not any(i in received().get("events", {}) for i in ids), "nothing delivered meanwhile")
    nats.start()
    got = wait_for(lambda: all(i in received().get("events", {}) for i in ids), timeout=30)
    check(got, "the pending events were published and consumed once NATS came back")
    r = received()
    jet = {k: v for k, v in r.get("events", {}).items() if not k.startswith("core-")}
    check_eq(len(jet), 4, "four distinct events consumed")
    check_eq(r.get("deliveries"), 4 + len(core_got(consumer)), "each delivered once")
    check(wait_for(lambda: producer.request("GET", "/ready")[0] == 200, timeout=10),
          "/ready again once NATS is back")
    st, _, body = producer.request("GET", "/metrics")
    check("bus_messages_published_total 24" in body.decode(),
          "publications counted (4 JetStream, 20 core)")

    # --- a producer killed with events still in its outbox publishes them on restart
    nats.stop()
    crash_ids = []
    for i in range(2):
        st, _, body = producer.request("POST", "/v1/echo/events",
                                       {"tenant": "t3", "type": "user.deleted", "data": {"i": i}})
        check_eq(st, 201, "event %d committed before the crash" % i)
        crash_ids.append(json_of(body).get("id"))
    producer.proc.send_signal(signal.SIGKILL)
    producer.proc.wait()
    nats.start()
    producer = fleet("producer-restarted", producer.args)
    got = wait_for(lambda: all(i in received().get("events", {}) for i in crash_ids), timeout=30)
    check(got, "events committed before a SIGKILL were published after the restart")

    # --- a durable consumer started while NATS is down subscribes once it is back
    nats.stop()
    late = fleet("late-consumer", ["--nats", nats.url, "--consume", "late"])
    check(wait_for(lambda: late.request("GET", "/ready")[0] == 503, timeout=10),
          "/ready of a consumer started without NATS is 503")
    nats.start()
    check(wait_for(lambda: late.request("GET", "/ready")[0] == 200, timeout=20),
          "its /ready turns 200 once NATS is back and the consumer subscribed")
    st, _, body = producer.request("POST", "/v1/echo/events",
                                   {"tenant": "t4", "type": "user.created", "data": {}})
    check_eq(st, 201, "an event for the late consumer")
    late_id = json_of(body).get("id")

    def late_got():
        st, _, body = late.request("GET", "/v1/echo/received")
        return json_of(body).get("events", {}) if st == 200 else {}

    check(wait_for(lambda: late_id in late_got(), timeout=20),
          "the consumer started while NATS was down receives events")

    # --- a killed upstream opens the breaker within 5 s ---------------------------
    target = urllib.parse.quote(upstream.url + "/v1/echo/hello", safe="")
    st, _, _ = producer.request("GET", "/v1/echo/proxy?url=" + target)
    check_eq(st, 200, "upstream alive")
    upstream.proc.send_signal(signal.SIGKILL)
    upstream.proc.wait()
    killed = time.time()
    opened_after = None
    while time.time() - killed < 10:
        st, _, body = producer.request("GET", "/v1/echo/proxy?url=" + target)
        _, _, m = producer.request("GET", "/metrics")
        if 'http_client_circuit_breaker_state{upstream="echo-upstream"} 1' in m.decode():
            opened_after = time.time() - killed
            break
        time.sleep(0.05)
    check(opened_after is not None and opened_after < 5.0,
          "breaker open within 5 s of the upstream's death (took %s s)" % opened_after)
    st, _, body = producer.request("GET", "/v1/echo/proxy?url=" + target)
    check_eq((st, json_of(body).get("error")), (502, "circuit breaker open"),
             "calls refused at once while open")
    st, _, body = producer.request("GET", "/ready")
    check_eq((st, json_of(body).get("checks", {}).get("echo-upstream")),
             (503, "circuit breaker open"), "/ready names the required upstream")
    print("breaker opened %.3f s after the upstream was killed" % (opened_after or -1))

    for p in procs:
        if p.proc is not None and p.proc.poll() is None:
            check_eq(p.stop(), 0, f"{p.name} exits 0 on SIGTERM: " + p.failure_log())
finally:
    for p in procs:
        p.cleanup()
    nats.cleanup()
    srv.cleanup()
finish()
