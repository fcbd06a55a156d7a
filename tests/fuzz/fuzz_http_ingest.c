/*
 * Fuzz target: the whole OTLP/HTTP receiver, end to end. A real collector
 * (libuv loop, http_parser framing, routing, decoding, group commit into a
 * real store on a scratch directory) runs in this process on a loopback
 * port; every input is written to a fresh connection as raw bytes (any mix of
 * request lines, headers, chunked or sized bodies, pipelined requests), the
 * write side is shut, and the replies are read until the server closes. The
 * sanitizers watch the server's threads; a hang shows up as the read timing
 * out, which aborts.
 */
#include "collector.h"
#include "sl_err.h"
#include "storage.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static stg_store *g_store;
static col_collector *g_col;
static uint16_t g_port;
static char g_dir[64];

static void stop_all(void) {
    col_stop(g_col);
    stg_close(g_store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", g_dir);
    }
}

static void start_all(void) {
    /* tmpfs when there is one: fsync per request costs nothing there. */
    snprintf(g_dir, sizeof(g_dir), "%s/sl-fuzz-http-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(g_dir) == NULL) {
        abort();
    }
    stg_options so;
    stg_options_init(&so);
    so.data_dir = g_dir;
    so.map_size = 256ull << 20;
    so.wal_map_size = 256ull << 20;
    col_options co;
    col_options_init(&co);
    co.host = "127.0.0.1";
    co.http_port = 0;
    co.grpc_port = -1;
    co.max_body_size = 1u << 20;
    co.request_timeout_ms = 1000;
    co.shutdown_grace_ms = 1000;
    if (stg_open(&so, &g_store) != 0 || col_start(&co, g_store, &g_col) != 0) {
        abort();
    }
    g_port = col_http_port(g_col);
    atexit(stop_all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_col == NULL) {
        start_all();
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        abort();
    }
    size_t off = 0;
    while (off < size) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n <= 0) {
            break; /* the server may close early (413, 400): fine */
        }
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    char buf[65536];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 10000);
        if (r == 0) {
            fprintf(stderr, "the server neither answered nor closed within 10 s\n");
            abort();
        }
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            break;
        }
    }
    close(fd);
    return 0;
}
