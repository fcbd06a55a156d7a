"""The static UI files: content types per extension, the single-page app's
deep links (an extension-less path that is not a file gets index.html),
caching headers, and the folder's boundaries (dotfiles, '..', a missing file
with an extension, /api/ paths never fall back to the page)."""

import os
import sys
import tempfile

from harness import Server, check, check_eq, finish


def main():
    binary = sys.argv[1]
    ui = tempfile.mkdtemp(prefix="sightline-ui-files-")
    os.makedirs(os.path.join(ui, "js"))
    os.makedirs(os.path.join(ui, "node_modules", "lib"))
    files = {
        "index.html": b"<!doctype html><title>app</title>",
        "style.css": b"body{}",
        "js/app.js": b"export {};",
        "node_modules/lib/lib.js": b"export default 1;",
        ".secret": b"no",
    }
    for name, body in files.items():
        with open(os.path.join(ui, name), "wb") as f:
            f.write(body)
    srv = Server(binary, ["--ui-dir", ui]).start()
    try:
        for path, ctype, body in [("/", "text/html", files["index.html"]),
                                  ("/style.css", "text/css", files["style.css"]),
                                  ("/js/app.js", "text/javascript", files["js/app.js"]),
                                  ("/node_modules/lib/lib.js", "text/javascript", None)]:
            st, h, data = srv.get(path)
            check_eq(st, 200, f"GET {path}")
            check(h.get("content-type", "").startswith(ctype), f"{path} content type {h.get('content-type')}")
            if body is not None:
                check_eq(data, body, f"{path} body")
        check_eq(srv.get("/js/app.js")[1].get("cache-control"), "no-cache", "own files are revalidated")
        check("max-age" in srv.get("/node_modules/lib/lib.js")[1].get("cache-control", ""),
              "npm libraries may be cached")

        # Deep links of the app are the page itself.
        for path in ["/search", "/trace/4bf92f3577b34da6a3ce929d0e0e4736", "/logs", "/graph", "/map"]:
            st, h, data = srv.get(path + "?service=a")
            check_eq(st, 200, f"deep link {path}")
            check(h.get("content-type", "").startswith("text/html"), f"deep link {path} is HTML")
            check_eq(data, files["index.html"], f"deep link {path} serves index.html")

        # What stays a 404.
        for path in ["/missing.js", "/js/missing.css", "/.secret", "/js/../.secret", "/%2e%2e/etc/passwd",
                     "/node_modules/lib/missing.js"]:
            check_eq(srv.get(path)[0], 404, f"GET {path}")
        st, h, data = srv.get("/api/no-such-api")
        check_eq(st, 404, "unknown API path")
        check(h.get("content-type", "").startswith("application/json"), "an unknown API path answers JSON, not the page")
        # The server's own endpoints keep their meaning.
        check_eq(srv.get("/metrics")[1].get("content-type", "").split(";")[0], "text/plain", "/metrics is the server's")
    finally:
        srv.cleanup()
        for root, dirs, names in os.walk(ui, topdown=False):
            for n in names:
                os.unlink(os.path.join(root, n))
            for d in dirs:
                os.rmdir(os.path.join(root, d))
        os.rmdir(ui)
    finish()


if __name__ == "__main__":
    main()
