/*
 * otlp-gen: writes realistic OTLP ExportTraceServiceRequest protobuf bodies
 * made by spangen, for integration tests, curl experiments and benchmarks.
 *
 *   otlp-gen --spans 50 --seed 7 --out file.pb     one raw request body
 *   otlp-gen --count 64 --out reqs.lp              64 bodies, each preceded by
 *                                                  its size (4 bytes, big endian)
 *   otlp-gen --count 64 --out-dir DIR              DIR/req-000001.pb, ... (raw)
 *
 * Invariants: the same flags (with --start-unix-nano) give byte-identical
 * output. Single-threaded.
 */
#include "spangen.h"

#include "sl_err.h"
#include "sl_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fputs("usage: otlp-gen [options]\n"
          "  --spans N            spans per request (default 500; 1..100000)\n"
          "  --count N            number of requests (default 1)\n"
          "  --seed N             PRNG seed (default 1)\n"
          "  --start-unix-nano T  start time of the first trace (default: now)\n"
          "  --services N         services in the fleet, 5..10 (default: from the seed)\n"
          "  --out FILE           write to FILE instead of stdout\n"
          "  --out-dir DIR        write DIR/req-NNNNNN.pb, one raw body per request\n"
          "  --framed             prefix every body with its size (4 bytes, big endian);\n"
          "                       the default when --count > 1 without --out-dir\n"
          "  --stats              print what was generated to stderr\n"
          "  --text               print the requests as readable text instead of protobuf\n"
          "  --help\n",
          f);
}

static int parse_u64_arg(const char *name, const char *s, uint64_t *out) {
    int rc = sl_parse_u64(sl_str_c(s), out);
    if (rc != 0) {
        fprintf(stderr, "otlp-gen: %s needs a non-negative integer, got '%s'\n", name, s);
    }
    return rc;
}

static void print_value(FILE *f, const Opentelemetry__Proto__Common__V1__AnyValue *v) {
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        fprintf(f, "\"%s\"", v->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        fputs(v->bool_value ? "true" : "false", f);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        fprintf(f, "%lld", (long long)v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        fprintf(f, "%g", v->double_value);
        break;
    default:
        fputs("<other>", f);
        break;
    }
}

static void print_attrs(FILE *f, const char *indent,
                        Opentelemetry__Proto__Common__V1__KeyValue *const *kv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s%s = ", indent, kv[i]->key);
        print_value(f, kv[i]->value);
        fputc('\n', f);
    }
}

static void print_id(FILE *f, const ProtobufCBinaryData *id) {
    char hex[64];
    size_t n = id->len <= 32 ? id->len : 32;
    sl_hex_encode(id->data, n, hex);
    fprintf(f, "%.*s", (int)(2 * n), hex);
}

/* Decodes body again (a round trip through protobuf-c) and prints it as
 * indented text: for eyeballing what the generator makes. */
static int print_text(FILE *f, const uint8_t *body, size_t size) {
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, size,
                                                                                         body);
    if (req == NULL) {
        return SL_EDECODE;
    }
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[r];
        fprintf(f, "resource\n");
        if (rs->resource != NULL) {
            print_attrs(f, "    ", rs->resource->attributes, rs->resource->n_attributes);
        }
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[s];
            fprintf(f, "  scope %s %s\n", ss->scope ? ss->scope->name : "",
                    ss->scope ? ss->scope->version : "");
            for (size_t i = 0; i < ss->n_spans; i++) {
                const Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[i];
                fprintf(f, "    span \"%s\" kind=%d trace=", sp->name, (int)sp->kind);
                print_id(f, &sp->trace_id);
                fputs(" id=", f);
                print_id(f, &sp->span_id);
                fputs(" parent=", f);
                print_id(f, &sp->parent_span_id);
                fprintf(f, " start=%llu dur_us=%.1f flags=0x%x status=%d \"%s\"\n",
                        (unsigned long long)sp->start_time_unix_nano,
                        (double)(sp->end_time_unix_nano - sp->start_time_unix_nano) / 1e3,
                        sp->flags, sp->status ? (int)sp->status->code : 0,
                        sp->status ? sp->status->message : "");
                print_attrs(f, "        ", sp->attributes, sp->n_attributes);
                for (size_t e = 0; e < sp->n_events; e++) {
                    fprintf(f, "        event \"%s\" at %llu\n", sp->events[e]->name,
                            (unsigned long long)sp->events[e]->time_unix_nano);
                    print_attrs(f, "            ", sp->events[e]->attributes,
                                sp->events[e]->n_attributes);
                }
            }
        }
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                            NULL);
    return 0;
}

static int write_all(FILE *f, const void *p, size_t n) {
    return fwrite(p, 1, n, f) == n ? 0 : -EIO;
}

int main(int argc, char **argv) {
    spangen_options o;
    spangen_options_init(&o);
    uint64_t nspans = 500;
    uint64_t count = 1;
    uint64_t v = 0;
    const char *out_path = NULL;
    const char *out_dir = NULL;
    int framed = -1;
    int stats = 0;
    int text = 0;
    int rc = 0;
    spangen *g = NULL;
    FILE *f = NULL;
    sl_buf buf;
    sl_buf_init(&buf, 0);

    for (int i = 1, step = 2; i < argc; i += step) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        step = 2;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            goto out;
        } else if (strcmp(a, "--framed") == 0) {
            framed = 1;
            step = 1;
        } else if (strcmp(a, "--text") == 0) {
            text = 1;
            step = 1;
        } else if (strcmp(a, "--stats") == 0) {
            stats = 1;
            step = 1;
        } else if (val == NULL) {
            fprintf(stderr, "otlp-gen: unknown option or missing value: %s\n", a);
            usage(stderr);
            rc = 2;
            goto out;
        } else if (strcmp(a, "--spans") == 0) {
            rc = parse_u64_arg(a, val, &nspans);
        } else if (strcmp(a, "--count") == 0) {
            rc = parse_u64_arg(a, val, &count);
        } else if (strcmp(a, "--seed") == 0) {
            rc = parse_u64_arg(a, val, &o.seed);
        } else if (strcmp(a, "--start-unix-nano") == 0) {
            rc = parse_u64_arg(a, val, &o.start_unix_nano);
        } else if (strcmp(a, "--services") == 0) {
            rc = parse_u64_arg(a, val, &v);
            o.nservices = v <= 10 ? (uint32_t)v : 1; /* 1 is rejected below */
        } else if (strcmp(a, "--out") == 0) {
            out_path = val;
        } else if (strcmp(a, "--out-dir") == 0) {
            out_dir = val;
        } else {
            fprintf(stderr, "otlp-gen: unknown option: %s\n", a);
            usage(stderr);
            rc = 2;
            goto out;
        }
        if (rc != 0) {
            rc = 2;
            goto out;
        }
    }
    if (nspans < 1 || nspans > 100000 || count < 1 || count > 1000000) {
        fprintf(stderr, "otlp-gen: --spans must be 1..100000 and --count 1..1000000\n");
        rc = 2;
        goto out;
    }
    if (out_path != NULL && out_dir != NULL) {
        fprintf(stderr, "otlp-gen: --out and --out-dir exclude each other\n");
        rc = 2;
        goto out;
    }
    if (framed < 0) {
        framed = count > 1 && out_dir == NULL;
    }
    rc = spangen_create(&o, &g);
    if (rc != 0) {
        fprintf(stderr, "otlp-gen: bad options: %s\n", sl_strerror(rc));
        rc = 2;
        goto out;
    }
    if (out_dir == NULL) {
        if (out_path != NULL) {
            f = fopen(out_path, "wb");
            if (f == NULL) {
                fprintf(stderr, "otlp-gen: %s: %s\n", out_path, strerror(errno));
                rc = 1;
                goto out;
            }
        } else if (!text && isatty(STDOUT_FILENO)) {
            fprintf(stderr, "otlp-gen: refusing to write protobuf to a terminal (use --out)\n");
            rc = 2;
            goto out;
        }
    }
    for (uint64_t i = 0; i < count; i++) {
        buf.len = 0;
        rc = spangen_request(g, (size_t)nspans, &buf);
        if (rc != 0) {
            fprintf(stderr, "otlp-gen: generating request %llu: %s\n", (unsigned long long)i + 1,
                    sl_strerror(rc));
            rc = 1;
            goto out;
        }
        if (buf.len > UINT32_MAX) {
            fprintf(stderr, "otlp-gen: request too large to frame\n");
            rc = 1;
            goto out;
        }
        if (out_dir != NULL) {
            char path[4096];
            int n = snprintf(path, sizeof(path), "%s/req-%06llu.pb", out_dir,
                             (unsigned long long)i + 1);
            if (n < 0 || (size_t)n >= sizeof(path)) {
                fprintf(stderr, "otlp-gen: --out-dir path too long\n");
                rc = 2;
                goto out;
            }
            f = fopen(path, "wb");
            if (f == NULL) {
                fprintf(stderr, "otlp-gen: %s: %s\n", path, strerror(errno));
                rc = 1;
                goto out;
            }
        }
        FILE *dst = f != NULL ? f : stdout;
        if (text) {
            rc = print_text(dst, buf.data, buf.len);
            if (rc != 0) {
                fprintf(stderr, "otlp-gen: the request does not decode: %s\n", sl_strerror(rc));
                rc = 1;
                goto out;
            }
        } else {
            uint8_t hdr[4] = {(uint8_t)(buf.len >> 24), (uint8_t)(buf.len >> 16),
                              (uint8_t)(buf.len >> 8), (uint8_t)buf.len};
            if ((framed && write_all(dst, hdr, sizeof(hdr)) != 0) ||
                write_all(dst, buf.data, buf.len) != 0) {
                fprintf(stderr, "otlp-gen: write failed: %s\n", strerror(errno));
                rc = 1;
                goto out;
            }
        }
        if (out_dir != NULL) {
            int cerr = fclose(f);
            f = NULL;
            if (cerr != 0) {
                fprintf(stderr, "otlp-gen: close failed: %s\n", strerror(errno));
                rc = 1;
                goto out;
            }
        }
    }
    if (stats) {
        spangen_stats st;
        spangen_get_stats(g, &st);
        fprintf(stderr,
                "otlp-gen: %llu requests, %llu traces, %llu spans, %.1f attributes/span, "
                "%llu events, %.2f%% error spans\n",
                (unsigned long long)st.requests, (unsigned long long)st.traces,
                (unsigned long long)st.spans, (double)st.attributes / (double)st.spans,
                (unsigned long long)st.events, 100.0 * (double)st.error_spans / (double)st.spans);
    }
out:
    if (f != NULL && fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "otlp-gen: close failed: %s\n", strerror(errno));
        rc = 1;
    }
    if (rc == 0 && fflush(stdout) != 0) {
        rc = 1;
    }
    spangen_destroy(g);
    sl_buf_free(&buf);
    return rc;
}
