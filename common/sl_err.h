/*
 * Error codes shared by every Sightline module. Functions return int: 0 is
 * success, a negative value an error. OS errors are -errno; Sightline's own
 * codes live in a reserved band below -10000 and come from one X-macro list so
 * that names and messages never drift apart. Thread-safe (constant data).
 */
#ifndef SL_ERR_H
#define SL_ERR_H

#define SL_ERR_MAP(X)                                                                              \
    X(NOMEM, -10001, "out of memory")                                                              \
    X(TOOBIG, -10002, "input larger than the configured limit")                                    \
    X(DECODE, -10003, "input could not be decoded")                                                \
    X(INVAL, -10004, "invalid argument")                                                           \
    X(FULL, -10005, "queue full")                                                                  \
    X(NOTFOUND, -10006, "not found")                                                               \
    X(STORAGE, -10007, "storage error")                                                            \
    X(CORRUPT, -10008, "stored data is corrupt")                                                   \
    X(SHUTDOWN, -10009, "shutting down")                                                           \
    X(UNSUPPORTED, -10010, "unsupported")                                                          \
    X(MAPFULL, -10011, "storage map full")

enum {
#define SL_ERR_ENUM(name, code, msg) SL_E##name = (code),
    SL_ERR_MAP(SL_ERR_ENUM)
#undef SL_ERR_ENUM
};

/* Returns a static message for any code (ours or -errno). Never NULL. */
const char *sl_strerror(int err);

/* Returns the symbolic name ("SL_ENOMEM", "ENOENT" style for errno values is not
 * provided: "ERRNO") of a code. Never NULL. */
const char *sl_errname(int err);

#endif
