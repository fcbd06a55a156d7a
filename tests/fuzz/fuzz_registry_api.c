/*
 * Fuzz target: the registry API as a function. The input's first byte picks
 * the method, the text up to the first newline is the path (and ?query), the
 * rest the body. One registry (no database, no checker) lives across inputs,
 * so registrations accumulate as in a real process. Nothing may crash, leak
 * or answer 5xx.
 */
#include "registry.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static reg_registry *reg;

static void cleanup(void) {
    reg_registry_destroy(reg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (reg == NULL) {
        reg_options o;
        reg_options_init(&o);
        o.check_interval_ms = 0;
        if (reg_registry_create(&o, &reg) != 0) {
            abort();
        }
        atexit(cleanup);
    }
    if (size == 0) {
        return 0;
    }
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    const char *method = methods[data[0] % 4];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const char *nl = memchr(text, '\n', len);
    size_t plen = nl != NULL ? (size_t)(nl - text) : len;
    char *target = malloc(plen + 1);
    if (target == NULL) {
        return 0;
    }
    memcpy(target, text, plen);
    target[plen] = '\0';
    if (strlen(target) != plen) { /* embedded NUL: not a request line */
        free(target);
        return 0;
    }
    char *q = strchr(target, '?');
    if (q != NULL) {
        *q++ = '\0';
    }
    const char *body = nl != NULL ? nl + 1 : "";
    size_t blen = nl != NULL ? len - plen - 1 : 0;
    reg_reply rep;
    reg_registry_handle(reg, method, target, q, body, blen, &rep);
    if (rep.status >= 500) {
        abort();
    }
    free(rep.body);
    free(target);
    return 0;
}
