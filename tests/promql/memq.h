/*
 * An in-memory querier for the PromQL engine: series added by hand or read
 * from OpenMetrics text, selected with Prometheus's matcher semantics. Used by
 * the engine's unit tests and by the differential-test driver.
 * Not thread-safe while series are being added; select is reentrant.
 */
#ifndef SL_TEST_MEMQ_H
#define SL_TEST_MEMQ_H

#include "promql.h"

#include <stddef.h>

typedef struct memq memq;

memq *memq_create(void);
void memq_destroy(memq *q);

/* Adds a sample to the series with labels "a=b,c=d" (__name__ included as a
 * label). Samples of a series must come in time order. Returns 0 or -1. */
int memq_add(memq *q, const char *labels, int64_t t_ms, double v);

/* Reads OpenMetrics / Prometheus text exposition with timestamps (seconds):
 * comment lines are skipped. Returns the number of samples or -1 with a
 * message on stderr. */
long memq_load_openmetrics(memq *q, const char *path);

/* The querier over q (valid while q lives). */
pq_querier memq_querier(memq *q);

#endif
