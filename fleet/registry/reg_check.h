/*
 * The registry's active health checks: GET <address>/health for a batch of
 * instances through one libcurl multi handle, with at most max_concurrent
 * requests in flight and a per-check timeout, so that checking thousands of
 * instances costs one thread and a bounded number of sockets. A check passes
 * on any 2xx answer. Runs on the calling thread (the registry's checker
 * thread); independent calls may run on different threads.
 */
#ifndef REG_CHECK_H
#define REG_CHECK_H

#include "reg_table.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct reg_check_item {
    char id[REG_ID_LEN + 1];
    char url[REG_MAX_FIELD + 16]; /* address + "/health" */
    bool ok;                      /* set by reg_check_run */
    char output[96];              /* why it failed, "" when ok */
} reg_check_item;

/* Fills item->url from an instance address (a trailing '/' is dropped). */
void reg_check_item_init(reg_check_item *item, const char *id, const char *address);

/* Checks n items, at most max_concurrent at a time, each bounded by
 * timeout_ms. Stops early (items not run count as ok: no verdict) when *stop
 * becomes true. Returns 0, SL_ENOMEM or SL_ESHUTDOWN when stopped. */
int reg_check_run(reg_check_item *items, size_t n, int max_concurrent, long timeout_ms,
                  const atomic_bool *stop);

#endif
