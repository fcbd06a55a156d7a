/*
 * Static files of the web UI (ui_dir): GET / is index.html, a path ending in
 * '/' is that folder's index.html, content types come from the extension.
 * The UI routes in the browser (/search, /trace/{id}, /logs, ...), so a
 * missing path whose last segment has no extension is a deep link and gets
 * index.html; a missing file with an extension stays a 404. The npm
 * libraries under /node_modules/ change only with the lock file and may be
 * cached for an hour; the UI's own files are revalidated on every load so
 * that a new build shows at once.
 *
 * Invariants: only regular files under ui_dir are ever opened: a path with a
 * ".." segment (or any segment starting with '.', which also hides dotfiles)
 * is a 404, as is anything that is not a regular file. The path arrives
 * URL-decoded, so "%2e%2e" is caught too. Symbolic links are followed only
 * while they stay inside ui_dir.
 * Thread-safety: pure apart from the file system; any thread.
 */
#include "query_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PATH_SIZE 1024

typedef struct ext_type {
    const char *ext;
    const char *type;
} ext_type;

static const ext_type g_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"wasm", "application/wasm"},
};

const char *qry_content_type(const char *name) {
    const char *slash = strrchr(name, '/');
    const char *base = slash != NULL ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    if (dot != NULL) {
        for (size_t i = 0; i < sizeof(g_types) / sizeof(g_types[0]); i++) {
            if (strcasecmp(dot + 1, g_types[i].ext) == 0) {
                return g_types[i].type;
            }
        }
    }
    return "application/octet-stream";
}

/* True when no segment of path is empty-dot-led: ".", "..", ".git", ... */
static int path_safe(const char *path) {
    const char *p = path;
    if (p[0] != '/') {
        return 0;
    }
    while (*p != '\0') {
        if (*p == '/') {
            p++;
            continue;
        }
        if (*p == '.' || *p == '\\') {
            return 0;
        }
        while (*p != '\0' && *p != '/') {
            if (*p == '\\') {
                return 0;
            }
            p++;
        }
    }
    return 1;
}

/* True when path's last segment has no '.', i.e. it names a UI route. */
static int is_route(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash != NULL && strchr(slash, '.') == NULL;
}

/* Opens ui_root + path (+ index.html for a folder) if it is a regular file
 * inside ui_root. Returns the descriptor (size in *size) or -1. */
static int open_under(const char *ui_root, const char *path, uint64_t *size) {
    char full[MAX_PATH_SIZE];
    struct stat st;
    int fd = -1;
    char *resolved = NULL;
    size_t plen = strlen(path);
    const char *index = plen > 0 && path[plen - 1] == '/' ? "index.html" : "";

    int n = snprintf(full, sizeof(full), "%s%s%s", ui_root, path, index);
    if (n < 0 || (size_t)n >= sizeof(full)) {
        goto not_found;
    }
    /* Symbolic links may point anywhere inside the folder but not out of it:
     * the resolved path must still lie under ui_root. */
    resolved = realpath(full, NULL);
    size_t rlen = strlen(ui_root);
    if (resolved == NULL || rlen == 0 || strncmp(resolved, ui_root, rlen) != 0 ||
        (ui_root[rlen - 1] != '/' && resolved[rlen] != '/')) {
        goto not_found;
    }
    /* O_NOFOLLOW: the resolved path has no links left, so one appearing now
     * is refused. O_NONBLOCK: opening a FIFO someone left in the folder must
     * not hang a worker; fstat then refuses it like any other non-regular
     * file. */
    fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0) {
        goto not_found;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        goto not_found;
    }
    *size = (uint64_t)st.st_size;
    free(resolved);
    return fd;
not_found:
    if (fd >= 0) {
        close(fd);
    }
    free(resolved);
    return -1;
}

void qry_serve_file(const char *ui_root, const char *path, qry_resp *resp) {
    uint64_t size = 0;
    int fd = -1;
    const char *served = path;
    size_t plen = strlen(path);

    if (ui_root == NULL || !path_safe(path)) {
        qry_resp_error(resp, 404, "not found");
        return;
    }
    fd = open_under(ui_root, path, &size);
    if (fd < 0 && is_route(path)) {
        served = "/";
        fd = open_under(ui_root, served, &size);
    }
    if (fd < 0) {
        qry_resp_error(resp, 404, "not found");
        return;
    }
    resp->fd = fd;
    resp->fd_size = size;
    resp->status = 200;
    resp->content_type =
        qry_content_type(plen > 0 && served[strlen(served) - 1] == '/' ? "index.html" : served);
    resp->cache_control =
        strncmp(path, "/node_modules/", 14) == 0 ? "public, max-age=3600" : "no-cache";
}
