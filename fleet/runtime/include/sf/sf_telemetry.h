/*
 * A fleet process's telemetry: one sdk-c provider configured by the standard
 * OTEL_* variables (service.name defaults to the service's name, and the
 * instance's version becomes service.version), with the tracer, logger and
 * meter the runtime's parts share. With no OTEL_EXPORTER_OTLP_ENDPOINT (nor a
 * per-signal endpoint) export is off: spans are not recorded but trace
 * context still propagates, and the service works as usual.
 *
 * sf_log* write a line to stderr (at or above the process's level) and emit
 * a log record correlated with the calling thread's current span. The first
 * telemetry created becomes the process's default for sf_log*; all functions
 * are thread-safe.
 */
#ifndef SF_TELEMETRY_H
#define SF_TELEMETRY_H

#include <sightline/sightline.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_telemetry sf_telemetry;

/* Creates the provider. service and version are copied. The caller owns *out.
 * Errors: the SDK's (SL_OTEL_E*), SL_ENOMEM. */
int sf_telemetry_create(const char *service, const char *version, sf_telemetry **out);

/* Borrowed handles, valid until sf_telemetry_destroy. */
sl_tracer *sf_telemetry_tracer(const sf_telemetry *t);
sl_logger *sf_telemetry_logger(const sf_telemetry *t);
sl_meter *sf_telemetry_meter(const sf_telemetry *t);
sl_provider *sf_telemetry_provider(const sf_telemetry *t);
const char *sf_telemetry_service(const sf_telemetry *t);
bool sf_telemetry_exporting(const sf_telemetry *t);

/* Flushes and stops export within timeout_ms (the last metric collection
 * runs the observable callbacks: the objects they read must still exist).
 * Later spans and logs are dropped. Idempotent. */
void sf_telemetry_shutdown(sf_telemetry *t, unsigned timeout_ms);

/* Shuts down (if needed) and frees. NULL harmless. */
void sf_telemetry_destroy(sf_telemetry *t, unsigned timeout_ms);

/* Minimum severity printed on stderr (SL_SEVERITY_INFO by default);
 * "debug", "info", "warn", "error". Returns 0 or SL_EINVAL. */
int sf_log_set_level(const char *level);

/* Logs through the process's default telemetry (see above). */
void sf_log(sl_severity sev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same with attributes on the log record. */
void sf_log_attrs(sl_severity sev, const sl_kv *attrs, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#ifdef __cplusplus
}
#endif

#endif
