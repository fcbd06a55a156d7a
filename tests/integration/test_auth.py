"""Bearer tokens (--auth-tokens): missing or wrong tokens are 401 and store
or return nothing, a token only ever reaches its own tenant whatever
X-Scope-OrgID says, scopes gate ingest, query and the server's metrics, over
OTLP/HTTP, OTLP/gRPC and the query API; SIGHUP reloads the file (a broken
file keeps the old tokens); tokens never appear in the log.

usage: test_auth.py SIGHTLINE_BINARY CLIENT_DIR"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from harness import Server, check, check_eq, finish, rand_hex, request, span

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TOKENS = {name: "tok-" + name + "-" + rand_hex(12)
          for name in ("a", "b_ingest", "b_query", "admin", "c")}


def line(tok, tenant, scopes):
    return f"{hashlib.sha256(tok.encode()).hexdigest()} {tenant} {scopes}\n"


def write_tokens(path, rows):
    with open(path + ".tmp", "w") as f:
        f.write("# tenant tokens\n\n")
        for tok, tenant, scopes in rows:
            f.write(line(tok, tenant, scopes))
    os.rename(path + ".tmp", path)


def bearer(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


def main():
    binary, client_dir = sys.argv[1:3]
    work = tempfile.mkdtemp(prefix="sightline-auth-")
    tokens = os.path.join(work, "tokens")
    write_tokens(tokens, [(TOKENS["a"], "team-a", "ingest,query"),
                          (TOKENS["b_ingest"], "team-b", "ingest"),
                          (TOKENS["b_query"], "team-b", "query"),
                          (TOKENS["admin"], "ops", "admin")])
    srv = Server(binary, ["--auth-tokens", tokens]).start()

    def post(trace_id, headers):
        body = json.dumps(request("svc", [span(trace_id, rand_hex(8), "op")])).encode()
        st, hdrs, data = srv.post("/v1/traces", body, "application/json", headers=headers)
        return st, hdrs, data

    def find(trace_id, headers):
        st, _ = srv.get_json(f"/api/traces/{trace_id}", headers=headers)
        return st

    # Ingest over HTTP.
    t1 = rand_hex(16)
    st, hdrs, _ = post(t1, {})
    check_eq(st, 401, "no token: 401")
    check("bearer" in hdrs.get("www-authenticate", "").lower(), "401 names the Bearer scheme")
    st, _, _ = post(t1, {"Authorization": "Bearer nope"})
    check_eq(st, 401, "unknown token: 401")
    st, _, _ = post(t1, {"Authorization": "Basic " + TOKENS["a"]})
    check_eq(st, 401, "a token under another scheme: 401")
    st, _, _ = post(t1, dict(bearer("a"), **{"X-Scope-OrgID": "team-b"}))
    check_eq(st, 403, "token of team-a writing to team-b: 403")
    st, _, _ = post(t1, bearer("b_query"))
    check_eq(st, 403, "a query-only token cannot ingest")
    st, _, _ = post(t1, bearer("a"))
    check_eq(st, 200, "token of team-a ingests")
    st, _, _ = post(t1, dict(bearer("a"), **{"X-Scope-OrgID": "team-a"}))
    check_eq(st, 200, "... also when X-Scope-OrgID names its own tenant")
    t2 = rand_hex(16)
    st, _, _ = post(t2, bearer("b_ingest"))
    check_eq(st, 200, "token of team-b ingests")

    # Query.
    check_eq(find(t1, {}), 401, "query without a token: 401")
    check_eq(find(t1, {"Authorization": "Bearer nope"}), 401, "query with a wrong token: 401")
    check_eq(find(t1, bearer("a")), 200, "team-a reads its trace")
    check_eq(find(t2, bearer("a")), 404, "team-a does not see team-b's trace")
    check_eq(find(t2, dict(bearer("a"), **{"X-Scope-OrgID": "team-b"})), 403,
             "team-a's token naming team-b: 403")
    check_eq(find(t2, bearer("b_ingest")), 403, "an ingest-only token cannot query")
    check_eq(find(t2, bearer("b_query")), 200, "team-b's query token reads team-b")
    check_eq(find(t1, bearer("b_query")), 404, "team-b's token does not see team-a")
    st, body = srv.get_json("/api/services", headers=bearer("b_query"))
    check_eq(st, 200, "services for team-b")
    st, _, _ = srv.get("/healthz")
    check_eq(st, 200, "health needs no token")
    st, _, _ = srv.get("/metrics")
    check_eq(st, 401, "the server's metrics need a token")
    st, _, _ = srv.get("/metrics", headers=bearer("a"))
    check_eq(st, 403, "... with the admin scope")
    st, _, _ = srv.get("/metrics", headers=bearer("admin"))
    check_eq(st, 200, "an admin token reads the metrics")

    # gRPC.
    def grpc(meta):
        p = subprocess.run(["node", os.path.join(client_dir, "client.mjs"), "raw",
                            str(srv.grpc_port), TRACE_EXPORT, "none"] + meta,
                           capture_output=True, text=True, timeout=60, cwd=client_dir)
        check_eq(p.returncode, 0, f"gRPC client ran ({p.stderr[-300:]})")
        return json.loads(p.stdout.strip().splitlines()[-1])["code"]

    check_eq(grpc([]), 16, "gRPC without a token: UNAUTHENTICATED")
    check_eq(grpc(["authorization=Bearer nope"]), 16, "gRPC with a wrong token: UNAUTHENTICATED")
    check_eq(grpc(["authorization=Bearer " + TOKENS["a"], "x-scope-orgid=team-b"]), 7,
             "gRPC token of team-a naming team-b: PERMISSION_DENIED")
    check_eq(grpc(["authorization=Bearer " + TOKENS["a"]]), 0, "gRPC with team-a's token: OK")

    # SIGHUP: team-a's token is revoked, a new one works; a broken file
    # keeps the tokens in force.
    write_tokens(tokens, [(TOKENS["c"], "team-a", "ingest,query"),
                          (TOKENS["b_query"], "team-b", "query")])
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and find(t1, bearer("c")) != 200:
        time.sleep(0.1)
    check_eq(find(t1, bearer("c")), 200, "a token added by SIGHUP works")
    check_eq(find(t1, bearer("a")), 401, "a token removed by SIGHUP is refused")
    with open(tokens, "w") as f:
        f.write("not a token line\n")
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    check_eq(find(t1, bearer("c")), 200, "a broken token file keeps the tokens in force")
    check_eq(srv.proc.poll(), None, "the server survives a broken token file")

    log = srv.read_log()
    check("not loaded" in log, "a broken token file is logged")
    check(all(tok not in log for tok in TOKENS.values()), "tokens never appear in the log")
    check_eq(srv.stop(), 0, "clean stop")
    srv.cleanup()
    finish()


if __name__ == "__main__":
    main()
