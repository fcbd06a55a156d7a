/*
 * W3C Trace Context: traceparent parsing (valid, malformed and future
 * versions, per the specification's rules), formatting, tracestate
 * validation, inject/extract through a header carrier, and the current
 * context stack.
 */
#include "sl_test.h"

#include <sightline/sightline.h>

static const char *const TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

static void test_traceparent_valid(void) {
    sl_span_context c;
    memset(&c, 0x55, sizeof c);
    ASSERT_EQ(sl_traceparent_parse(TP, strlen(TP), &c), 0);
    ASSERT_EQ(c.trace_id[0], 0x0a);
    ASSERT_EQ(c.trace_id[15], 0x9c);
    ASSERT_EQ(c.span_id[0], 0xb7);
    ASSERT_EQ(c.span_id[7], 0x31);
    ASSERT_EQ(c.trace_flags, 1);
    ASSERT_TRUE(c.is_remote);
    ASSERT_STR_EQ(c.trace_state, "");
    char out[SL_TRACEPARENT_LEN + 1];
    ASSERT_EQ(sl_traceparent_format(&c, out), 0);
    ASSERT_STR_EQ(out, TP);

    /* Not sampled; surrounding optional whitespace. */
    const char *ns = " \t00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00 ";
    ASSERT_EQ(sl_traceparent_parse(ns, strlen(ns), &c), 0);
    ASSERT_EQ(c.trace_flags, 0);
    /* A future version may append fields after a '-'. */
    const char *v1 = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future";
    ASSERT_EQ(sl_traceparent_parse(v1, strlen(v1), &c), 0);
    ASSERT_EQ(c.trace_flags, 1);
    const char *v2 = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-09";
    ASSERT_EQ(sl_traceparent_parse(v2, strlen(v2), &c), 0);
    ASSERT_EQ(c.trace_flags, 9); /* unknown flags of a later version are kept */
    /* Only len bytes are read. */
    char buf[80];
    snprintf(buf, sizeof buf, "%sGARBAGE", TP);
    ASSERT_EQ(sl_traceparent_parse(buf, strlen(TP), &c), 0);
}

static void test_traceparent_malformed(void) {
    static const char *const bad[] = {
        "",
        "00",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",         /* no flags */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",       /* short flags */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",     /* 00 with extra */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",     /* 00 too long */
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",      /* version ff */
        "0g-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",      /* bad version */
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",      /* uppercase */
        "00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01",      /* uppercase */
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",      /* zero trace id */
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",      /* zero span id */
        "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",      /* delimiter */
        "00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01",      /* delimiter */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331_01",      /* delimiter */
        "00-0af7651916cd43dd8448eb211c80319-cb7ad6b7169203331-01",      /* shifted */
        "00-0af7651916cd43dd8448eb211c80319z-b7ad6b7169203331-01",      /* not hex */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333g-01",      /* not hex */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",      /* flags not hex */
        "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01.what", /* no '-' after */
        "00 0af7651916cd43dd8448eb211c80319c b7ad6b7169203331 01",      /* spaces */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sl_span_context c;
        memset(&c, 0, sizeof c);
        int rc = sl_traceparent_parse(bad[i], strlen(bad[i]), &c);
        if (rc != SL_OTEL_EPARSE) {
            SL_FAIL_AT("case %zu \"%s\": rc %d, want SL_OTEL_EPARSE", i, bad[i], rc);
        }
    }
    sl_span_context c;
    ASSERT_EQ(sl_traceparent_parse(NULL, 0, &c), SL_OTEL_EINVAL);
    memset(&c, 0, sizeof c);
    char out[SL_TRACEPARENT_LEN + 1];
    ASSERT_EQ(sl_traceparent_format(&c, out), SL_OTEL_EINVAL);
}

static void test_tracestate(void) {
    char out[SL_TRACESTATE_MAX + 1];
    const char *ok = "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE ,,  tenant1@vendor=x:y";
    ASSERT_EQ(sl_tracestate_parse(ok, strlen(ok), out, sizeof out), 0);
    ASSERT_STR_EQ(out, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant1@vendor=x:y");
    ASSERT_EQ(sl_tracestate_parse("", 0, out, sizeof out), 0);
    ASSERT_STR_EQ(out, "");
    ASSERT_EQ(sl_tracestate_parse("a-b_c*d/e=v v", 13, out, sizeof out), 0);

    static const char *const bad[] = {
        "rojo",                        /* no '=' */
        "Rojo=1",                      /* uppercase key */
        "1rojo=1",                     /* simple key starts with a digit */
        "rojo=1,rojo=2",               /* duplicate key */
        "rojo=a,b",                    /* member without '=' */
        "rojo=",                       /* empty value */
        "rojo=a=b",                    /* '=' in value */
        "@vendor=1",                   /* empty tenant */
        "tenant@=1",                   /* empty system */
        "tenant@Vendor=1",             /* uppercase system */
        "tenant@vendorvendorvendor=1", /* system id longer than 14 */
        "rojo=a\x01",                  /* control character */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = sl_tracestate_parse(bad[i], strlen(bad[i]), out, sizeof out);
        if (rc != SL_OTEL_EPARSE) {
            SL_FAIL_AT("case %zu \"%s\": rc %d, want SL_OTEL_EPARSE", i, bad[i], rc);
        }
    }
    /* 32 members are fine, 33 are not. */
    char many[1024];
    size_t o = 0;
    for (int i = 0; i < 33; i++) {
        o += (size_t)snprintf(many + o, sizeof many - o, "%sk%d=v", i ? "," : "", i);
        if (i == 31) {
            ASSERT_EQ(sl_tracestate_parse(many, o, out, sizeof out), 0);
        }
    }
    ASSERT_EQ(sl_tracestate_parse(many, o, out, sizeof out), SL_OTEL_EPARSE);
    /* A value that does not fit the output is refused, not cut. */
    char small[8];
    ASSERT_EQ(sl_tracestate_parse("rojo=00f067aa", 13, small, sizeof small), SL_OTEL_ELIMIT);
}

/* A carrier of at most 8 headers. */
typedef struct carrier {
    char name[8][32];
    char value[8][600];
    int n;
} carrier;

static int carrier_set(void *ud, const char *name, const char *value) {
    carrier *c = ud;
    if (c->n == 8) {
        return -1;
    }
    snprintf(c->name[c->n], sizeof c->name[0], "%s", name);
    snprintf(c->value[c->n], sizeof c->value[0], "%s", value);
    c->n++;
    return 0;
}

static const char *carrier_get(void *ud, const char *name) {
    carrier *c = ud;
    for (int i = 0; i < c->n; i++) {
        if (strcmp(c->name[i], name) == 0) {
            return c->value[i];
        }
    }
    return NULL;
}

static void test_inject_extract(void) {
    sl_context_reset();
    carrier c = {0};
    ASSERT_EQ(sl_propagation_inject(NULL, carrier_set, &c), SL_OTEL_ENOTFOUND);
    ASSERT_EQ(c.n, 0);
    sl_span_context ctx, got;
    ASSERT_EQ(sl_propagation_extract(carrier_get, &c, &got), SL_OTEL_ENOTFOUND);

    ASSERT_EQ(sl_traceparent_parse(TP, strlen(TP), &ctx), 0);
    snprintf(ctx.trace_state, sizeof ctx.trace_state, "rojo=1,congo=2");
    ASSERT_EQ(sl_propagation_inject(&ctx, carrier_set, &c), 0);
    ASSERT_EQ(c.n, 2);
    ASSERT_STR_EQ(carrier_get(&c, "traceparent"), TP);
    ASSERT_STR_EQ(carrier_get(&c, "tracestate"), "rojo=1,congo=2");
    ASSERT_EQ(sl_propagation_extract(carrier_get, &c, &got), 0);
    ASSERT_TRUE(memcmp(got.trace_id, ctx.trace_id, 16) == 0);
    ASSERT_TRUE(memcmp(got.span_id, ctx.span_id, 8) == 0);
    ASSERT_TRUE(got.is_remote);
    ASSERT_STR_EQ(got.trace_state, "rojo=1,congo=2");

    /* A malformed tracestate is dropped, the traceparent kept. */
    snprintf(c.value[1], sizeof c.value[1], "rojo=1,rojo=2");
    ASSERT_EQ(sl_propagation_extract(carrier_get, &c, &got), 0);
    ASSERT_STR_EQ(got.trace_state, "");
    /* A malformed traceparent is an error: the callee starts a new trace. */
    snprintf(c.value[0], sizeof c.value[0], "00-xyz");
    ASSERT_EQ(sl_propagation_extract(carrier_get, &c, &got), SL_OTEL_EPARSE);

    /* Inject with ctx NULL uses the current context. */
    carrier c2 = {0};
    ASSERT_EQ(sl_context_push(&ctx), 0);
    ASSERT_EQ(sl_propagation_inject(NULL, carrier_set, &c2), 0);
    ASSERT_STR_EQ(carrier_get(&c2, "traceparent"), TP);
    sl_context_pop();
}

static void test_context_stack(void) {
    sl_context_reset();
    sl_span_context a, b, cur;
    ASSERT_EQ(sl_context_current(&cur), SL_OTEL_ENOTFOUND);
    ASSERT_EQ(sl_traceparent_parse(TP, strlen(TP), &a), 0);
    b = a;
    b.span_id[7] ^= 0xff;
    ASSERT_EQ(sl_context_push(&a), 0);
    ASSERT_EQ(sl_context_push(&b), 0);
    ASSERT_EQ(sl_context_current(&cur), 0);
    ASSERT_EQ(cur.span_id[7], b.span_id[7]);
    sl_context_pop();
    ASSERT_EQ(sl_context_current(&cur), 0);
    ASSERT_EQ(cur.span_id[7], a.span_id[7]);
    /* Overflow: pushes past the depth are counted so that pops balance, and
     * meanwhile there is no current context rather than a wrong one. */
    for (int i = 0; i < 40; i++) {
        sl_context_push(&b);
    }
    ASSERT_EQ(sl_context_current(&cur), SL_OTEL_ENOTFOUND);
    for (int i = 0; i < 40; i++) {
        sl_context_pop();
    }
    ASSERT_EQ(sl_context_current(&cur), 0);
    ASSERT_EQ(cur.span_id[7], a.span_id[7]);
    sl_context_pop();
    sl_context_pop(); /* an extra pop is harmless */
    ASSERT_EQ(sl_context_current(&cur), SL_OTEL_ENOTFOUND);
}

int main(void) {
    RUN(test_traceparent_valid);
    RUN(test_traceparent_malformed);
    RUN(test_tracestate);
    RUN(test_inject_extract);
    RUN(test_context_stack);
    return SL_TEST_RESULT();
}
