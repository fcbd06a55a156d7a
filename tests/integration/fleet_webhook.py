"""A tenant's webhook endpoint for the fleet's tests: a real HTTP server on
loopback that records every delivery (event id, type, traceparent, body) and
can fail the first attempt of chosen event types with 503 (to exercise the
notifications service's retries)."""

import http.server
import json
import threading


class WebhookReceiver:
    def __init__(self, fail_first=()):
        self.got = []
        self.attempts = {}
        self.fail_first = set(fail_first)
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ev_id = self.headers.get("X-Fleet-Event-Id", "")
                ev_type = self.headers.get("X-Fleet-Event-Type", "")
                with owner.lock:
                    n = owner.attempts.get(ev_id, 0) + 1
                    owner.attempts[ev_id] = n
                    fail = ev_type in owner.fail_first and n == 1
                    if not fail:
                        owner.got.append({"id": ev_id, "type": ev_type,
                                          "traceparent": self.headers.get("traceparent"),
                                          "body": json.loads(body)})
                self.send_response(503 if fail else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/hook"

    def find(self, ev_type, pred=lambda e: True):
        with self.lock:
            return [e for e in self.got if e["type"] == ev_type and pred(e)]

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()
