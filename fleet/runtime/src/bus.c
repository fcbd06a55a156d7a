/*
 * The NATS bus (see sf_bus.h). Threads: callers publish from any thread
 * (libnats serializes on the connection); each subscription's handler runs on
 * the subscription's libnats thread; asynchronous JetStream acknowledgements
 * arrive on libnats' own thread and are matched to the waiting batch under
 * batch_mu. Batches are serialized (one in flight per bus) because the
 * acknowledgement handler is one per JetStream context.
 */
#include "sf/sf_bus.h"

#include "rt_int.h"
#include "sf/sf_err.h"
#include "sl_buf.h"
#include "sl_err.h"
#include "sl_metrics.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct sub_ctx {
    sf_bus *bus;
    sf_bus_handler h;
    void *userdata;
    bool jetstream;
    natsSubscription *sub;   /* NULL: a JetStream consumer not subscribed yet */
    char *subject, *durable; /* JetStream consumers: kept for the retries */
} sub_ctx;

struct sf_bus_msg {
    natsMsg *msg;
    uint64_t delivery;
};

/* The batch being published: its messages and where their results go. */
typedef struct batch {
    natsMsg **msgs;
    sf_bus_pub *pubs;
    size_t n;
    size_t done;
} batch;

struct sf_bus {
    sf_bus_options o;
    char *url, *service, *stream, *subjects;
    natsOptions *nopts;
    natsConnection *nc;
    jsCtx *js;
    atomic_bool stream_ok;
    atomic_bool closing;
    pthread_mutex_t closed_mu;
    pthread_cond_t closed_cv;
    bool closed;
    pthread_mutex_t mu; /* subscriptions list (and each sub_ctx's sub), stream creation */
    sub_ctx **subs;
    size_t nsubs, subs_cap;
    /* Consumers that could not subscribe (NATS or JetStream unavailable) are
     * retried every second by one thread, started with the first of them. */
    pthread_mutex_t retry_mu;
    pthread_cond_t retry_cv;
    pthread_t retry_thread;
    bool retry_started;
    atomic_uint pending;
    pthread_mutex_t batch_serial; /* one batch at a time */
    pthread_mutex_t batch_mu;     /* the current batch's results */
    batch *cur;
    sl_metric *published, *pub_failed, *acked, *nakked;
};

void sf_bus_options_init(sf_bus_options *o) {
    memset(o, 0, sizeof(*o));
    o->stream = "EVENTS";
    o->subjects = "events.>";
    o->publish_timeout_ms = 5000;
    o->ack_wait_ms = 30000;
    o->max_deliver = 10;
}

static const char *nats_err(natsStatus s) {
    const char *t = nats_GetLastError(NULL);
    return t != NULL && t[0] != '\0' ? t : natsStatus_GetText(s);
}

/* --- trace context in headers ----------------------------------------------------- */

static const char *msg_header_get(void *carrier, const char *name) {
    const char *v = NULL;
    return natsMsgHeader_Get(carrier, name, &v) == NATS_OK ? v : NULL;
}

static int msg_header_set(void *carrier, const char *name, const char *value) {
    return natsMsgHeader_Set(carrier, name, value) == NATS_OK ? 0 : SL_ENOMEM;
}

/* Starts the PRODUCER span of a publication and writes its context into the
 * message's headers. */
static sl_span *producer_span(sf_bus *b, natsMsg *m, const char *subject, const char *msg_id,
                              const sl_span_context *parent) {
    sl_span *span = NULL;
    sl_tracer *t = sf_telemetry_tracer(b->o.telemetry);
    sl_span_options so;
    sl_span_options_init(&so);
    so.kind = SL_SPAN_KIND_PRODUCER;
    so.parent = parent;
    char name[192];
    snprintf(name, sizeof name, "%.160s publish", subject);
    sl_kv attrs[4] = {SL_KV_STR("messaging.system", "nats"),
                      SL_KV_STR("messaging.destination.name", subject),
                      SL_KV_STR("messaging.operation", "publish"),
                      SL_KV_STR("messaging.message.id", msg_id != NULL ? msg_id : "")};
    so.attrs = attrs;
    so.attr_count = msg_id != NULL ? 4 : 3;
    sl_span_start(t, name, &so, &span);
    sl_span_context ctx;
    if (span != NULL && sl_span_get_context(span, &ctx) == 0) {
        sl_propagation_inject(&ctx, msg_header_set, m);
    } else if (parent != NULL) {
        sl_propagation_inject(parent, msg_header_set, m);
    }
    return span;
}

static void end_span(sl_span *span, int rc) {
    if (span != NULL && rc != 0) {
        sl_span_record_error(span, "publish", sf_strerror(rc));
    }
    sl_span_end(span, 0);
}

/* --- connection ------------------------------------------------------------------- */

static void on_disconnected(natsConnection *nc, void *closure) {
    (void)nc;
    sf_bus *b = closure;
    if (!atomic_load(&b->closing)) {
        sf_log(SL_SEVERITY_WARN, "NATS connection to %s lost: reconnecting", b->url);
    }
}

static void on_reconnected(natsConnection *nc, void *closure) {
    (void)nc;
    sf_bus *b = closure;
    sf_log(SL_SEVERITY_INFO, "NATS connection to %s back", b->url);
}

/* The last connection callback libnats delivers (its callbacks come in
 * order on one thread): once it ran, no callback will touch b again. */
static void on_closed(natsConnection *nc, void *closure) {
    (void)nc;
    sf_bus *b = closure;
    pthread_mutex_lock(&b->closed_mu);
    b->closed = true;
    pthread_cond_broadcast(&b->closed_cv);
    pthread_mutex_unlock(&b->closed_mu);
}

static void on_connected(natsConnection *nc, void *closure) {
    (void)nc;
    sf_bus *b = closure;
    sf_log(SL_SEVERITY_INFO, "NATS connected to %s", b->url);
}

static void on_async_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    (void)js;
    sf_bus *b = closure;
    pthread_mutex_lock(&b->batch_mu);
    batch *cur = b->cur;
    for (size_t i = 0; cur != NULL && i < cur->n; i++) {
        if (cur->msgs[i] == msg) {
            cur->pubs[i].result = pa != NULL && pae == NULL ? 0 : SF_EBUS;
            cur->msgs[i] = NULL;
            cur->done++;
            break;
        }
    }
    pthread_mutex_unlock(&b->batch_mu);
    natsMsg_Destroy(msg);
}

int sf_bus_connect(const sf_bus_options *o, sf_bus **out) {
    *out = NULL;
    if (o == NULL || o->url == NULL) {
        return SL_EINVAL;
    }
    sf_bus *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return SL_ENOMEM;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->batch_serial, NULL);
    pthread_mutex_init(&b->batch_mu, NULL);
    pthread_mutex_init(&b->closed_mu, NULL);
    pthread_cond_init(&b->closed_cv, NULL);
    pthread_mutex_init(&b->retry_mu, NULL);
    pthread_cond_init(&b->retry_cv, NULL);
    b->o = *o;
    b->url = strdup(o->url);
    b->service = strdup(o->service != NULL ? o->service : "fleet");
    b->stream = strdup(o->stream != NULL ? o->stream : "EVENTS");
    b->subjects = strdup(o->subjects != NULL ? o->subjects : "events.>");
    int rc = SL_ENOMEM;
    if (b->url == NULL || b->service == NULL || b->stream == NULL || b->subjects == NULL) {
        goto fail;
    }
    if (b->o.publish_timeout_ms == 0) {
        b->o.publish_timeout_ms = 5000;
    }
    if (b->o.ack_wait_ms == 0) {
        b->o.ack_wait_ms = 30000;
    }
    b->published =
        sl_counter("bus_messages_published_total", "",
                   "Messages published (acknowledged by JetStream when published there).");
    b->pub_failed = sl_counter("bus_publish_failures_total", "",
                               "Publications that failed or were not acknowledged.");
    b->acked = sl_counter("bus_messages_consumed_total", "result=\"ack\"",
                          "Deliveries handled, by outcome.");
    b->nakked = sl_counter("bus_messages_consumed_total", "result=\"nak\"",
                           "Deliveries handled, by outcome.");
    rc = SF_EBUS;
    natsStatus s;
    if ((s = natsOptions_Create(&b->nopts)) != NATS_OK ||
        (s = natsOptions_SetURL(b->nopts, b->url)) != NATS_OK ||
        (s = natsOptions_SetName(b->nopts, b->service)) != NATS_OK ||
        (s = natsOptions_SetMaxReconnect(b->nopts, -1)) != NATS_OK ||
        (s = natsOptions_SetReconnectWait(b->nopts, 250)) != NATS_OK ||
        (s = natsOptions_SetRetryOnFailedConnect(b->nopts, true, on_connected, b)) != NATS_OK ||
        (s = natsOptions_SetDisconnectedCB(b->nopts, on_disconnected, b)) != NATS_OK ||
        (s = natsOptions_SetReconnectedCB(b->nopts, on_reconnected, b)) != NATS_OK ||
        (s = natsOptions_SetClosedCB(b->nopts, on_closed, b)) != NATS_OK) {
        sf_log(SL_SEVERITY_ERROR, "NATS options: %s", nats_err(s));
        goto fail;
    }
    s = natsConnection_Connect(&b->nc, b->nopts);
    if (s == NATS_NOT_YET_CONNECTED) {
        sf_log(SL_SEVERITY_WARN, "NATS at %s not reachable yet: retrying in the background",
               b->url);
    } else if (s != NATS_OK) {
        sf_log(SL_SEVERITY_ERROR, "cannot connect to NATS at %s: %s", b->url, nats_err(s));
        goto fail;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = b->o.publish_timeout_ms;
    jo.PublishAsync.AckHandler = on_async_ack;
    jo.PublishAsync.AckHandlerClosure = b;
    jo.PublishAsync.MaxPending = 4096;
    if ((s = natsConnection_JetStream(&b->js, b->nc, &jo)) != NATS_OK) {
        sf_log(SL_SEVERITY_ERROR, "JetStream context: %s", nats_err(s));
        goto fail;
    }
    if (s == NATS_OK && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED) {
        sf_bus_ensure_stream(b); /* failures are retried by later calls */
    }
    *out = b;
    return 0;
fail:
    sf_bus_close(b);
    return rc;
}

bool sf_bus_connected(sf_bus *b) {
    return b != NULL && b->nc != NULL && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
}

int sf_bus_ensure_stream(sf_bus *b) {
    if (atomic_load(&b->stream_ok)) {
        return 0;
    }
    if (!sf_bus_connected(b)) {
        return SF_EBUS;
    }
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, b->js, b->stream, NULL, &jerr);
    if (s == NATS_NOT_FOUND) {
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        const char *subjects[1] = {b->subjects};
        cfg.Name = b->stream;
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        cfg.Duplicates = (int64_t)120 * 1000000000;
        s = js_AddStream(&si, b->js, &cfg, NULL, &jerr);
        if (s != NATS_OK && jerr == JSStreamNameExistErr) {
            s = NATS_OK; /* another process created it first */
        } else if (s == NATS_OK) {
            sf_log(SL_SEVERITY_INFO, "created JetStream stream %s on %s", b->stream, b->subjects);
        }
    }
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK) {
        atomic_store(&b->stream_ok, true);
    } else {
        sf_log(SL_SEVERITY_WARN, "JetStream stream %s not available: %s (code %d)", b->stream,
               nats_err(s), (int)jerr);
        rc = SF_EBUS;
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int sf_bus_check(void *bus, char *err, size_t cap) {
    sf_bus *b = bus;
    if (!sf_bus_connected(b)) {
        snprintf(err, cap, "not connected to %s", b != NULL ? b->url : "NATS");
        return SF_EBUS;
    }
    if (sf_bus_ensure_stream(b) != 0) {
        snprintf(err, cap, "stream %s unavailable", b->stream);
        return SF_EBUS;
    }
    if (atomic_load(&b->pending) > 0) {
        const char *durable = "?";
        pthread_mutex_lock(&b->mu);
        for (size_t i = 0; i < b->nsubs; i++) {
            if (b->subs[i]->sub == NULL) {
                durable = b->subs[i]->durable;
                break;
            }
        }
        snprintf(err, cap, "consumer %.64s not subscribed yet", durable);
        pthread_mutex_unlock(&b->mu);
        return SF_EBUS;
    }
    return 0;
}

/* --- publishing -------------------------------------------------------------------- */

static int make_msg(const char *subject, const void *data, size_t len, const char *msg_id,
                    natsMsg **out) {
    *out = NULL;
    if (subject == NULL || len > INT32_MAX) {
        return SL_EINVAL;
    }
    natsMsg *m = NULL;
    if (natsMsg_Create(&m, subject, NULL, data, (int)len) != NATS_OK) {
        return SL_EINVAL; /* an invalid subject */
    }
    if (msg_id != NULL && natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id) != NATS_OK) {
        natsMsg_Destroy(m);
        return SL_ENOMEM;
    }
    *out = m;
    return 0;
}

int sf_bus_publish(sf_bus *b, const char *subject, const void *data, size_t len,
                   const sl_span_context *ctx) {
    natsMsg *m;
    int rc = make_msg(subject, data, len, NULL, &m);
    if (rc != 0) {
        return rc;
    }
    sl_span *span = producer_span(b, m, subject, NULL, ctx);
    natsStatus s = natsConnection_PublishMsg(b->nc, m);
    rc = s == NATS_OK ? 0 : SF_EBUS;
    natsMsg_Destroy(m);
    sl_metric_add(rc == 0 ? b->published : b->pub_failed, 1);
    end_span(span, rc);
    return rc;
}

int sf_bus_js_publish(sf_bus *b, const char *subject, const void *data, size_t len,
                      const char *msg_id, const sl_span_context *ctx) {
    sf_bus_pub p = {subject, data, len, msg_id, ctx, 0};
    int rc = sf_bus_js_publish_batch(b, &p, 1);
    return rc != 0 ? rc : p.result;
}

int sf_bus_js_publish_batch(sf_bus *b, sf_bus_pub *pubs, size_t n) {
    if (b == NULL || (pubs == NULL && n > 0)) {
        return SL_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        pubs[i].result = SF_EBUS;
    }
    if (n == 0) {
        return 0;
    }
    if (sf_bus_ensure_stream(b) != 0) {
        sl_metric_add(b->pub_failed, n);
        return SF_EBUS;
    }
    natsMsg **msgs = calloc(n, sizeof(natsMsg *));
    sl_span **spans = calloc(n, sizeof(sl_span *));
    if (msgs == NULL || spans == NULL) {
        free(msgs);
        free(spans);
        return SL_ENOMEM;
    }
    pthread_mutex_lock(&b->batch_serial);
    batch cur = {msgs, pubs, n, 0};
    pthread_mutex_lock(&b->batch_mu);
    b->cur = &cur;
    pthread_mutex_unlock(&b->batch_mu);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = b->o.publish_timeout_ms;
    for (size_t i = 0; i < n; i++) {
        natsMsg *m;
        int rc = make_msg(pubs[i].subject, pubs[i].data, pubs[i].len, pubs[i].msg_id, &m);
        if (rc != 0) {
            pthread_mutex_lock(&b->batch_mu);
            pubs[i].result = rc;
            cur.done++;
            pthread_mutex_unlock(&b->batch_mu);
            continue;
        }
        spans[i] = producer_span(b, m, pubs[i].subject, pubs[i].msg_id, pubs[i].ctx);
        /* Recorded before the call: the acknowledgement may arrive before it
         * returns, and the handler finds the message by this pointer. */
        pthread_mutex_lock(&b->batch_mu);
        msgs[i] = m;
        pthread_mutex_unlock(&b->batch_mu);
        natsMsg *owned = m;
        natsStatus s = js_PublishMsgAsync(b->js, &owned, &po);
        if (s != NATS_OK) {
            pthread_mutex_lock(&b->batch_mu);
            msgs[i] = NULL;
            pubs[i].result = SF_EBUS;
            cur.done++;
            pthread_mutex_unlock(&b->batch_mu);
            natsMsg_Destroy(owned); /* still ours when the call failed */
        }
    }
    natsStatus s = js_PublishAsyncComplete(b->js, &po);
    if (s != NATS_OK) {
        /* Take back what is still waiting for an acknowledgement: not known
         * to be stored, so it counts as failed (a retry with the same
         * Nats-Msg-Id is deduplicated by the stream). */
        natsMsgList pending = {0};
        if (js_PublishAsyncGetPendingList(&pending, b->js) == NATS_OK) {
            natsMsgList_Destroy(&pending);
        }
    }
    int first = 0;
    pthread_mutex_lock(&b->batch_mu);
    b->cur = NULL;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i] != NULL) {
            pubs[i].result = s == NATS_TIMEOUT ? SF_ETIMEOUT : SF_EBUS;
        }
    }
    pthread_mutex_unlock(&b->batch_mu);
    for (size_t i = 0; i < n; i++) {
        sl_metric_add(pubs[i].result == 0 ? b->published : b->pub_failed, 1);
        end_span(spans[i], pubs[i].result);
        if (first == 0 && pubs[i].result != 0) {
            first = pubs[i].result;
        }
    }
    pthread_mutex_unlock(&b->batch_serial);
    free(msgs);
    free(spans);
    return first;
}

/* --- consuming ---------------------------------------------------------------------- */

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)nc;
    (void)sub;
    sub_ctx *sc = closure;
    sf_bus *b = sc->bus;
    sf_bus_msg m = {msg, 0};
    if (sc->jetstream) {
        jsMsgMetaData *meta = NULL;
        if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
            m.delivery = meta->NumDelivered;
            jsMsgMetaData_Destroy(meta);
        }
    }
    const char *subject = natsMsg_GetSubject(msg);
    sl_span_context parent;
    sl_span_options so;
    sl_span_options_init(&so);
    so.kind = SL_SPAN_KIND_CONSUMER;
    if (sl_propagation_extract(msg_header_get, msg, &parent) == 0) {
        so.parent = &parent;
    } else {
        so.root = true;
    }
    char name[192];
    snprintf(name, sizeof name, "%.160s process", subject);
    const char *id = msg_header_get(msg, "Nats-Msg-Id");
    sl_kv attrs[5] = {SL_KV_STR("messaging.system", "nats"),
                      SL_KV_STR("messaging.destination.name", subject),
                      SL_KV_STR("messaging.operation", "process"),
                      SL_KV_INT("messaging.nats.delivery_count", (int64_t)m.delivery),
                      SL_KV_STR("messaging.message.id", id != NULL ? id : "")};
    so.attrs = attrs;
    so.attr_count = id != NULL ? 5 : 4;
    sl_span *span = NULL;
    sl_span_start(sf_telemetry_tracer(b->o.telemetry), name, &so, &span);
    sl_span_context ctx;
    memset(&ctx, 0, sizeof ctx);
    sl_span_get_context(span, &ctx);
    sl_context_push(&ctx);
    int hrc = sc->h(&m, sc->userdata);
    sl_context_pop();
    if (hrc != 0) {
        sl_span_set_status(span, SL_STATUS_ERROR, "handler failed: redelivery requested");
    }
    if (sc->jetstream) {
        if (hrc == 0) {
            natsMsg_Ack(msg, NULL);
        } else {
            natsMsg_Nak(msg, NULL);
        }
    }
    sl_metric_add(hrc == 0 ? b->acked : b->nakked, 1);
    sl_span_end(span, 0);
    natsMsg_Destroy(msg);
}

static void free_sub(sub_ctx *sc) {
    free(sc->subject);
    free(sc->durable);
    free(sc);
}

/* Keeps a new subscription (or a consumer still to subscribe) for
 * sf_bus_close; on failure undoes it. */
static int add_sub(sf_bus *b, sub_ctx *sc) {
    pthread_mutex_lock(&b->mu);
    int rc = sl_array_grow(&b->subs, &b->subs_cap, b->nsubs + 1, sizeof(sub_ctx *));
    if (rc == 0) {
        b->subs[b->nsubs++] = sc;
    }
    pthread_mutex_unlock(&b->mu);
    if (rc != 0) {
        if (sc->sub != NULL) {
            natsSubscription_Unsubscribe(sc->sub);
            natsSubscription_Destroy(sc->sub);
        }
        free_sub(sc);
        return SL_ENOMEM;
    }
    return 0;
}

int sf_bus_subscribe(sf_bus *b, const char *subject, const char *queue, sf_bus_handler h,
                     void *userdata) {
    if (b == NULL || subject == NULL || h == NULL) {
        return SL_EINVAL;
    }
    sub_ctx *sc = calloc(1, sizeof(*sc));
    if (sc == NULL) {
        return SL_ENOMEM;
    }
    *sc = (sub_ctx){b, h, userdata, false, NULL, NULL, NULL};
    natsStatus s = queue != NULL
                       ? natsConnection_QueueSubscribe(&sc->sub, b->nc, subject, queue, on_msg, sc)
                       : natsConnection_Subscribe(&sc->sub, b->nc, subject, on_msg, sc);
    if (s != NATS_OK) {
        sf_log(SL_SEVERITY_ERROR, "cannot subscribe to %s: %s", subject, nats_err(s));
        free_sub(sc);
        return SF_EBUS;
    }
    return add_sub(b, sc);
}

/* Creates (or binds to) the durable consumer of sc and subscribes to it. */
static natsStatus js_consume(sf_bus *b, sub_ctx *sc, natsSubscription **sub, bool quiet) {
    *sub = NULL;
    if (sf_bus_ensure_stream(b) != 0) {
        return NATS_ERR;
    }
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = b->stream;
    so.Queue = sc->durable;
    so.ManualAck = true;
    so.Config.Durable = sc->durable;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.AckWait = (int64_t)b->o.ack_wait_ms * 1000000;
    so.Config.MaxDeliver = b->o.max_deliver > 0 ? b->o.max_deliver : 10;
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Config.MaxAckPending = 4096;
    jsErrCode jerr = 0;
    natsStatus s = js_Subscribe(sub, b->js, sc->subject, on_msg, sc, NULL, &so, &jerr);
    if (s != NATS_OK) {
        if (!quiet) {
            sf_log(SL_SEVERITY_WARN, "cannot consume %s as %s yet: %s (code %d); retrying",
                   sc->subject, sc->durable, nats_err(s), (int)jerr);
        }
        *sub = NULL;
        return s;
    }
    /* Deliveries pile up in the client while a handler is slow: a generous
     * bound, the server redelivers what is dropped. */
    natsSubscription_SetPendingLimits(*sub, 65536, 256 * 1024 * 1024);
    return NATS_OK;
}

/* The retry thread: every second, while the bus is open, subscribes the
 * consumers that could not subscribe before. */
static void *retry_main(void *arg) {
    sf_bus *b = arg;
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_mutex_lock(&b->retry_mu);
        while (!atomic_load(&b->closing) &&
               pthread_cond_timedwait(&b->retry_cv, &b->retry_mu, &ts) == 0) {
        }
        pthread_mutex_unlock(&b->retry_mu);
        if (atomic_load(&b->closing)) {
            break;
        }
        if (atomic_load(&b->pending) == 0 || !sf_bus_connected(b)) {
            continue;
        }
        pthread_mutex_lock(&b->mu);
        size_t n = b->nsubs;
        pthread_mutex_unlock(&b->mu);
        for (size_t i = 0; i < n && !atomic_load(&b->closing); i++) {
            pthread_mutex_lock(&b->mu);
            sub_ctx *sc = b->subs[i];
            bool waiting = sc->sub == NULL;
            pthread_mutex_unlock(&b->mu);
            natsSubscription *sub = NULL;
            if (!waiting || js_consume(b, sc, &sub, true) != NATS_OK) {
                continue;
            }
            pthread_mutex_lock(&b->mu);
            sc->sub = sub;
            pthread_mutex_unlock(&b->mu);
            atomic_fetch_sub(&b->pending, 1);
            sf_log(SL_SEVERITY_INFO, "consuming %s as %s", sc->subject, sc->durable);
        }
    }
    return NULL;
}

int sf_bus_consume(sf_bus *b, const char *subject, const char *durable, sf_bus_handler h,
                   void *userdata) {
    if (b == NULL || subject == NULL || durable == NULL || h == NULL) {
        return SL_EINVAL;
    }
    sub_ctx *sc = calloc(1, sizeof(*sc));
    if (sc == NULL) {
        return SL_ENOMEM;
    }
    *sc = (sub_ctx){b, h, userdata, true, NULL, strdup(subject), strdup(durable)};
    if (sc->subject == NULL || sc->durable == NULL) {
        free_sub(sc);
        return SL_ENOMEM;
    }
    if (js_consume(b, sc, &sc->sub, false) == NATS_OK) {
        return add_sub(b, sc);
    }
    /* NATS or JetStream is not there yet: the retry thread subscribes it. */
    pthread_mutex_lock(&b->retry_mu);
    int rc = 0;
    if (!b->retry_started) {
        rc = pthread_create(&b->retry_thread, NULL, retry_main, b) == 0 ? 0 : SL_ENOMEM;
        b->retry_started = rc == 0;
    }
    pthread_mutex_unlock(&b->retry_mu);
    if (rc != 0) {
        free_sub(sc);
        return rc;
    }
    atomic_fetch_add(&b->pending, 1);
    if ((rc = add_sub(b, sc)) != 0) {
        atomic_fetch_sub(&b->pending, 1);
    }
    return rc;
}

const char *sf_bus_msg_subject(const sf_bus_msg *m) {
    return natsMsg_GetSubject(m->msg);
}

const void *sf_bus_msg_data(const sf_bus_msg *m, size_t *len) {
    if (len != NULL) {
        *len = (size_t)natsMsg_GetDataLength(m->msg);
    }
    return natsMsg_GetData(m->msg);
}

const char *sf_bus_msg_header(const sf_bus_msg *m, const char *name) {
    return msg_header_get(m->msg, name);
}

uint64_t sf_bus_msg_delivery(const sf_bus_msg *m) {
    return m->delivery;
}

void sf_bus_close(sf_bus *b) {
    if (b == NULL) {
        return;
    }
    atomic_store(&b->closing, true);
    if (b->retry_started) {
        pthread_mutex_lock(&b->retry_mu);
        pthread_cond_broadcast(&b->retry_cv);
        pthread_mutex_unlock(&b->retry_mu);
        pthread_join(b->retry_thread, NULL);
    }
    /* Stop deliveries and let running handlers finish, then close. */
    for (size_t i = 0; i < b->nsubs; i++) {
        if (b->subs[i]->sub == NULL) {
            continue;
        }
        if (sf_bus_connected(b) && natsSubscription_Drain(b->subs[i]->sub) == NATS_OK) {
            natsSubscription_WaitForDrainCompletion(b->subs[i]->sub, 5000);
        } else {
            natsSubscription_Unsubscribe(b->subs[i]->sub);
        }
    }
    if (b->nc != NULL) {
        natsConnection_FlushTimeout(b->nc, 1000);
        natsConnection_Close(b->nc);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        pthread_mutex_lock(&b->closed_mu);
        while (!b->closed && pthread_cond_timedwait(&b->closed_cv, &b->closed_mu, &ts) == 0) {
        }
        pthread_mutex_unlock(&b->closed_mu);
    }
    for (size_t i = 0; i < b->nsubs; i++) {
        if (b->subs[i]->sub != NULL) {
            natsSubscription_Destroy(b->subs[i]->sub);
        }
        free_sub(b->subs[i]);
    }
    free(b->subs);
    jsCtx_Destroy(b->js);
    natsConnection_Destroy(b->nc);
    natsOptions_Destroy(b->nopts);
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->batch_serial);
    pthread_mutex_destroy(&b->batch_mu);
    pthread_mutex_destroy(&b->closed_mu);
    pthread_cond_destroy(&b->closed_cv);
    pthread_mutex_destroy(&b->retry_mu);
    pthread_cond_destroy(&b->retry_cv);
    free(b->url);
    free(b->service);
    free(b->stream);
    free(b->subjects);
    free(b);
}
