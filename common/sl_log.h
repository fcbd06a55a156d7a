/*
 * Process-wide logging for the server parts (the SDK has its own callback).
 * Lines go to stderr as "ts level module: message". The level is set once at
 * start-up; sl_log itself is thread-safe (one fprintf per line).
 */
#ifndef SL_LOG_H
#define SL_LOG_H

typedef enum { SL_LOG_ERROR = 0, SL_LOG_WARN = 1, SL_LOG_INFO = 2, SL_LOG_DEBUG = 3 } sl_log_level;

void sl_log_set_level(sl_log_level level);
sl_log_level sl_log_get_level(void);
/* Parses "error", "warn", "info" or "debug". Returns 0 or SL_EINVAL. */
int sl_log_parse_level(const char *s, sl_log_level *out);
void sl_log(sl_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SL_LOG_E(mod, ...) sl_log(SL_LOG_ERROR, mod, __VA_ARGS__)
#define SL_LOG_W(mod, ...) sl_log(SL_LOG_WARN, mod, __VA_ARGS__)
#define SL_LOG_I(mod, ...) sl_log(SL_LOG_INFO, mod, __VA_ARGS__)
#define SL_LOG_D(mod, ...)                                                                         \
    do {                                                                                           \
        if (sl_log_get_level() >= SL_LOG_DEBUG) {                                                  \
            sl_log(SL_LOG_DEBUG, mod, __VA_ARGS__);                                                \
        }                                                                                          \
    } while (0)

#endif
