/*
 * The message bus on NATS (libnats): core publish/subscribe with queue
 * groups, and JetStream for events that must not be lost (stream EVENTS on
 * "events.>", file storage, created by the first process that connects if
 * missing; durable queue consumers with explicit acknowledgement).
 *
 * Trace context travels in message headers (traceparent, tracestate). Every
 * publication is a PRODUCER span "<subject> publish" (child of the thread's
 * current span, or of the context given) with messaging.system=nats,
 * messaging.destination.name, messaging.operation=publish, messaging.message.id;
 * every delivery is a CONSUMER span "<subject> process", child of the
 * producer's context from the headers, current on the handler's thread (so
 * the handler's own calls, publications and logs join the trace).
 *
 * The connection reconnects forever (a NATS outage makes publications fail
 * with SF_EBUS after their timeout and /ready report "nats"; subscriptions
 * resume by themselves). Counters on /metrics: bus_messages_published_total,
 * bus_publish_failures_total, bus_messages_consumed_total{result="ack|nak"}.
 *
 * Thread-safety: every function may be called from any thread. Handlers run
 * on the subscription's own thread (one per subscription): a handler that
 * blocks delays only its subscription.
 */
#ifndef SF_BUS_H
#define SF_BUS_H

#include "sf_telemetry.h"

#include <sightline/sightline.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_bus sf_bus;
typedef struct sf_bus_msg sf_bus_msg;

typedef struct sf_bus_options {
    const char *url;             /* required: "nats://127.0.0.1:4222" */
    const char *service;         /* connection name and span attribute */
    sf_telemetry *telemetry;     /* borrowed; NULL: no spans */
    const char *stream;          /* "EVENTS" */
    const char *subjects;        /* "events.>" */
    unsigned publish_timeout_ms; /* JetStream acknowledgement wait: 5000 */
    unsigned ack_wait_ms;        /* redelivery after an unacknowledged delivery: 30000 */
    int max_deliver;             /* deliveries of one message before it is dropped: 10 */
} sf_bus_options;

void sf_bus_options_init(sf_bus_options *o);

/* Connects (if NATS is down, keeps trying in the background and returns 0:
 * the stream is created once it is reachable). The caller owns *out.
 * Errors: SL_EINVAL, SL_ENOMEM, SF_EBUS. */
int sf_bus_connect(const sf_bus_options *o, sf_bus **out);

/* True while connected. */
bool sf_bus_connected(sf_bus *b);
/* A /ready check (sf_check_fn): 0 when connected and the stream exists. */
int sf_bus_check(void *bus, char *err, size_t cap);

/* Makes sure the stream exists (created with file storage and a 2-minute
 * duplicate window when missing). Errors: SF_EBUS. */
int sf_bus_ensure_stream(sf_bus *b);

/* Core NATS publication (at most once). ctx NULL = the thread's current
 * context. Errors: SF_EBUS. */
int sf_bus_publish(sf_bus *b, const char *subject, const void *data, size_t len,
                   const sl_span_context *ctx);

/* A JetStream publication, waiting for the stream's acknowledgement. msg_id
 * (may be NULL) is sent as Nats-Msg-Id so that a retried publication within
 * the duplicate window is stored once. Errors: SF_EBUS (no acknowledgement:
 * not stored, or not known to be), SF_ETIMEOUT. */
int sf_bus_js_publish(sf_bus *b, const char *subject, const void *data, size_t len,
                      const char *msg_id, const sl_span_context *ctx);

/* Several JetStream publications in flight at once: each entry's result
 * gets 0 once acknowledged, or an error. Waits for every acknowledgement (or
 * the publish timeout). Returns 0 when all were acknowledged, else the first
 * error. */
typedef struct sf_bus_pub {
    const char *subject;
    const void *data;
    size_t len;
    const char *msg_id;
    const sl_span_context *ctx; /* parent of the PRODUCER span; NULL: current */
    int result;
} sf_bus_pub;
int sf_bus_js_publish_batch(sf_bus *b, sf_bus_pub *pubs, size_t n);

/* A delivery's handler: return 0 to acknowledge, anything else to ask for a
 * redelivery (JetStream; ignored for core NATS). */
typedef int (*sf_bus_handler)(const sf_bus_msg *m, void *userdata);

/* Core subscription; queue NULL = every subscriber gets every message, else
 * one member of the queue group gets each. */
int sf_bus_subscribe(sf_bus *b, const char *subject, const char *queue, sf_bus_handler h,
                     void *userdata);

/* JetStream durable queue consumer on the stream: processes share the
 * consumer named durable (e.g. "notifications"), each message goes to one of
 * them, explicit acknowledgement, redelivery after a nak or ack_wait_ms.
 * When NATS or JetStream is not reachable yet, the consumer is kept and a
 * background thread subscribes it as soon as it can (every second; until
 * then sf_bus_check names it, so /ready fails). Errors: SL_ENOMEM. */
int sf_bus_consume(sf_bus *b, const char *subject, const char *durable, sf_bus_handler h,
                   void *userdata);

/* In a handler: the message's subject, payload, a header (NULL when absent),
 * JetStream delivery count (1 for the first, 0 for core NATS). */
const char *sf_bus_msg_subject(const sf_bus_msg *m);
const void *sf_bus_msg_data(const sf_bus_msg *m, size_t *len);
const char *sf_bus_msg_header(const sf_bus_msg *m, const char *name);
uint64_t sf_bus_msg_delivery(const sf_bus_msg *m);

/* Drains subscriptions (in-flight handlers finish), closes. NULL harmless. */
void sf_bus_close(sf_bus *b);

#ifdef __cplusplus
}
#endif

#endif
