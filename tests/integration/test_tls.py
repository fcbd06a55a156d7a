"""TLS on every listener (--tls-cert/--tls-key): OTLP/HTTP and the query API
over HTTPS, OTLP/gRPC over TLS with ALPN h2 (the OpenTelemetry JS SDK's
exporter), TLS 1.2+ only, cleartext refused; and mutual TLS on ingest
(--tls-client-ca): a client without a certificate signed by that CA is
refused on both OTLP ports, while the query API stays one-way TLS.

usage: test_tls.py SIGHTLINE_BINARY CLIENT_DIR"""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile

from harness import Server, check, check_eq, finish, rand_hex, request, span

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_certs(d):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=sightline-test-ca", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        extra = ["-extfile", "san.ext"] if name == "server" else []
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", *extra, cwd=d)


def https(port, method, path, body=None, ctx=None, headers=None):
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=ctx)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def grpc_call(client_dir, port, env, mode="raw"):
    args = ["node", os.path.join(client_dir, "client.mjs"), mode, str(port)]
    args += [TRACE_EXPORT, "none"] if mode == "raw" else ["default", "1", "none"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=client_dir,
                       env=dict(os.environ, **env))
    check_eq(p.returncode, 0, f"gRPC client ran ({p.stderr[-300:]})")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    binary, client_dir = sys.argv[1:3]
    if shutil.which("openssl") is None:
        check(False, "the openssl command is installed (scripts/setup.sh)")
        finish()
    d = tempfile.mkdtemp(prefix="sightline-tls-")
    make_certs(d)
    ca, cert, key = (os.path.join(d, n) for n in ("ca.pem", "server.pem", "server.key"))
    ctx = ssl.create_default_context(cafile=ca)
    tls_args = ["--tls-cert", cert, "--tls-key", key]

    srv = Server(binary, tls_args).start()
    tid = rand_hex(16)
    body = json.dumps(request("tls-svc", [span(tid, rand_hex(8), "secure op")])).encode()
    st, _ = https(srv.otlp_port, "POST", "/v1/traces", body, ctx,
                  {"Content-Type": "application/json"})
    check_eq(st, 200, "OTLP/HTTP over TLS")
    st, data = https(srv.query_port, "GET", f"/api/traces/{tid}", ctx=ctx)
    check_eq(st, 200, "the query API over TLS finds the trace")
    check(b"secure op" in data, "... with its span")

    # Cleartext and old protocol versions are refused.
    s = socket.create_connection(("127.0.0.1", srv.otlp_port), timeout=5)
    s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    try:
        got = s.recv(100)
    except OSError:
        got = b""
    s.close()
    check(not got.startswith(b"HTTP/1.1 200"), "cleartext HTTP on a TLS port is not served")
    old = ssl.create_default_context(cafile=ca)
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        https(srv.otlp_port, "POST", "/v1/traces", body, old,
              {"Content-Type": "application/json"})
        check(False, "TLS 1.1 is refused")
    except (ssl.SSLError, OSError):
        pass
    tls12 = ssl.create_default_context(cafile=ca)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    st, _ = https(srv.otlp_port, "POST", "/v1/traces", body, tls12,
                  {"Content-Type": "application/json"})
    check_eq(st, 200, "TLS 1.2 is accepted")

    # gRPC over TLS with the OpenTelemetry JS SDK's exporter.
    res = grpc_call(client_dir, srv.grpc_port, {"SL_GRPC_CA": ca}, mode="sdk")
    check(res["results"] and all(r == 0 for r in res["results"]), "SDK exports over gRPC+TLS")
    st, _ = https(srv.query_port, "GET", f"/api/traces/{res['trace_ids'][0]}", ctx=ctx)
    check_eq(st, 200, "the gRPC+TLS trace is stored")
    r = grpc_call(client_dir, srv.grpc_port, {})
    check(r["code"] != 0, "a cleartext gRPC client cannot talk to a TLS port")
    check_eq(srv.stop(), 0, "clean stop")
    srv.cleanup()

    # Mutual TLS on ingest.
    srv = Server(binary, tls_args + ["--tls-client-ca", ca]).start()
    try:
        https(srv.otlp_port, "POST", "/v1/traces", body, ctx,
              {"Content-Type": "application/json"})
        check(False, "mTLS: a client without a certificate is refused")
    except (ssl.SSLError, OSError):
        pass
    mctx = ssl.create_default_context(cafile=ca)
    mctx.load_cert_chain(os.path.join(d, "client.pem"), os.path.join(d, "client.key"))
    st, _ = https(srv.otlp_port, "POST", "/v1/traces", body, mctx,
                  {"Content-Type": "application/json"})
    check_eq(st, 200, "mTLS: a client with a certificate from the CA is served")
    st, _ = https(srv.query_port, "GET", "/api/services", ctx=ctx)
    check_eq(st, 200, "the query API needs no client certificate")
    r = grpc_call(client_dir, srv.grpc_port, {"SL_GRPC_CA": ca})
    check(r["code"] != 0, "mTLS: a gRPC client without a certificate is refused")
    r = grpc_call(client_dir, srv.grpc_port,
                  {"SL_GRPC_CA": ca, "SL_GRPC_CLIENT_CERT": os.path.join(d, "client.pem"),
                   "SL_GRPC_CLIENT_KEY": os.path.join(d, "client.key")})
    check_eq(r["code"], 0, "mTLS: a gRPC client with a certificate is served")
    check_eq(srv.stop(), 0, "clean stop")
    srv.cleanup()

    # A missing key is refused at start-up.
    bad = Server(binary, ["--tls-cert", cert])
    try:
        bad.start(timeout=5)
        check(False, "--tls-cert without --tls-key is refused")
    except RuntimeError:
        pass
    bad.cleanup()
    shutil.rmtree(d)
    finish()


if __name__ == "__main__":
    main()
