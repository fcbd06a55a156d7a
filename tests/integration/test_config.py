"""Configuration precedence over the wire: the YAML file (--config) is the
lowest, SIGHTLINE_* variables override it, flags override both; a bad file or
value stops the server with a clear message and exit code 2.

usage: test_config.py SIGHTLINE_BINARY"""

import os
import subprocess
import sys
import tempfile

from harness import Server, check, check_eq, finish

binary = sys.argv[1]
body = b"\0" * 5000  # over 1 KiB, far under 16 MiB


def status_of_big_body(srv):
    st, _, _ = srv.post("/v1/traces", body)
    return st


with tempfile.TemporaryDirectory() as d:
    cfg = os.path.join(d, "sightline.yaml")
    with open(cfg, "w") as f:
        f.write("# test settings\nmax_body_size: 1KiB\nretention: 3d\nlog-level: warn\n")

    srv = Server(binary, ["--config", cfg]).start()
    check_eq(status_of_big_body(srv), 413, "the file's max_body_size applies")
    srv.cleanup()

    srv = Server(binary, ["--config", cfg], env={"SIGHTLINE_MAX_BODY_SIZE": "16MiB"}).start()
    check_eq(status_of_big_body(srv), 400, "a variable overrides the file (body read, then 400)")
    srv.cleanup()

    srv = Server(binary, ["--config", cfg, "--max-body-size", "1KiB"],
                 env={"SIGHTLINE_MAX_BODY_SIZE": "16MiB"}).start()
    check_eq(status_of_big_body(srv), 413, "a flag overrides the variable")
    srv.cleanup()

    srv = Server(binary, env={"SIGHTLINE_CONFIG": cfg}).start()
    check_eq(status_of_big_body(srv), 413, "SIGHTLINE_CONFIG names the file too")
    srv.cleanup()

    for text, why in (("bogus: 1\n", "unknown setting"), ("retention: soon\n", "invalid retention"),
                      ("a: [1, 2]\n", "plain scalars"), ("x: [\n", "")):
        with open(cfg, "w") as f:
            f.write(text)
        r = subprocess.run([binary, "serve", "--config", cfg, "--otlp-http-port", "0",
                            "--query-port", "0", "--data-dir", os.path.join(d, "data")],
                           capture_output=True, text=True, timeout=30)
        check_eq(r.returncode, 2, f"bad config {text.strip()!r} exits with 2")
        check(why in r.stderr and cfg in r.stderr, f"bad config names the file and the problem: "
              f"{r.stderr.strip()!r}")
finish()
