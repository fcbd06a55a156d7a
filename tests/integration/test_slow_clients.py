"""Slow and greedy clients cannot exhaust the collector: a request trickled
one byte at a time is cut off by --request-timeout (408) however steadily it
trickles, idle keep-alive sockets are closed by --idle-timeout, connections
over --max-connections are closed at once, and real clients are served
throughout.

usage: test_slow_clients.py SIGHTLINE_BINARY"""

import socket
import sys
import threading
import time

from harness import Server, check, check_eq, finish, rand_hex, request, span


def closed_within(sock, seconds):
    """Reads until EOF or reset; returns (closed, bytes received)."""
    sock.settimeout(seconds)
    got = b""
    try:
        while True:
            d = sock.recv(4096)
            if not d:
                return True, got
            got += d
    except socket.timeout:
        return False, got
    except OSError:
        return True, got


def ok_request(srv):
    st, _, _ = srv.post_json(request("real", [span(rand_hex(16), rand_hex(8), "op")]))
    return st


def main():
    binary = sys.argv[1]
    srv = Server(binary, ["--request-timeout", "1s", "--idle-timeout", "2s",
                          "--max-connections", "40"]).start()

    # Slowloris: 20 clients trickle headers, one byte every 100 ms, forever.
    stop = threading.Event()
    results = []

    def trickle():
        s = socket.create_connection(("127.0.0.1", srv.otlp_port))
        data = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
                b"X-Padding: " + b"a" * 10000)
        t0 = time.time()
        got = b""
        try:
            for b in data:
                if stop.is_set():
                    break
                s.sendall(bytes([b]))
                time.sleep(0.1)
        except OSError:
            pass  # the server closed the connection
        closed, rest = closed_within(s, 5)
        results.append((time.time() - t0, closed, got + rest))
        s.close()

    ts = [threading.Thread(target=trickle) for _ in range(20)]
    for t in ts:
        t.start()
    time.sleep(0.5)
    check_eq(ok_request(srv), 200, "a real client is served while slow clients trickle")
    for t in ts:
        t.join(timeout=15)
    stop.set()
    check_eq(len(results), 20, "every trickling client finished")
    for took, closed, got in results:
        check(closed, "a trickling client is disconnected")
        check(took < 8, f"... within the request timeout plus a tick ({took:.1f}s)")
        check(got.startswith(b"HTTP/1.1 408"), f"... with 408 Request Timeout ({got[:40]!r})")

    # Idle keep-alive sockets are closed; a busy one is not.
    idle = socket.create_connection(("127.0.0.1", srv.otlp_port))
    closed, _ = closed_within(idle, 5)
    check(closed, "an idle connection is closed after --idle-timeout")
    idle.close()

    # A gRPC connection that never sends the HTTP/2 preface is idle too.
    g = socket.create_connection(("127.0.0.1", srv.grpc_port))
    closed, _ = closed_within(g, 5)
    check(closed, "an idle gRPC connection is closed")
    g.close()
    check_eq(srv.stop(), 0, "clean stop")
    srv.cleanup()

    # The connection limit, on a server whose idle timeout cannot close the
    # held sockets however slowly this runs: 40 open sockets fill it, the
    # next ones are closed without being served, and capacity comes back
    # when sockets go away.
    srv = Server(binary, ["--max-connections", "40"]).start()
    held = [socket.create_connection(("127.0.0.1", srv.otlp_port)) for _ in range(40)]
    time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", srv.otlp_port))
    try:
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    except OSError:
        pass  # already closed
    closed, got = closed_within(extra, 10)
    check(closed and got == b"",
          f"a connection over --max-connections is closed unserved ({got[:40]!r})")
    extra.close()
    grpc_extra = socket.create_connection(("127.0.0.1", srv.grpc_port))
    closed, _ = closed_within(grpc_extra, 10)
    check(closed, "the limit counts gRPC connections too")
    grpc_extra.close()
    for s in held:
        s.close()
    # The server counts a socket out once it has seen it close; give a slow
    # run time to, but no more than a few seconds.
    st = None
    deadline = time.time() + 5
    while st != 200 and time.time() < deadline:
        time.sleep(0.2)
        try:
            st = ok_request(srv)
        except OSError:
            st = None
    check_eq(st, 200, "capacity returns when connections close")
    check_eq(srv.stop(), 0, "clean stop")
    srv.cleanup()
    finish()


if __name__ == "__main__":
    main()
