/*
 * stderr logger. The level is an atomic so that any thread may read it.
 */
#include "sl_log.h"

#include "sl_err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_int g_level = SL_LOG_INFO;

void sl_log_set_level(sl_log_level level) {
    atomic_store(&g_level, (int)level);
}

sl_log_level sl_log_get_level(void) {
    return (sl_log_level)atomic_load(&g_level);
}

int sl_log_parse_level(const char *s, sl_log_level *out) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (sl_log_level)i;
            return 0;
        }
    }
    return SL_EINVAL;
}

void sl_log(sl_log_level level, const char *module, const char *fmt, ...) {
    static const char *tags[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    if ((int)level > atomic_load(&g_level)) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            tags[level], module, msg);
}
