/*
 * Error codes of the fleet runtime. Functions return int: 0 is success, a
 * negative value an error: -errno, a common Sightline code (SL_E*, band
 * -10001..), or one of the runtime's own codes below (band -30001..), listed
 * once in SF_ERR_MAP so names and messages never drift apart. Thread-safe.
 */
#ifndef SF_ERR_H
#define SF_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

#define SF_ERR_MAP(X)                                                                              \
    X(TOKEN, -30001, "malformed token")                                                            \
    X(ALG, -30002, "token algorithm not accepted")                                                 \
    X(SIGNATURE, -30003, "token signature does not verify")                                        \
    X(EXPIRED, -30004, "token expired")                                                            \
    X(NOTYET, -30005, "token not valid yet")                                                       \
    X(AUDIENCE, -30006, "token audience does not match")                                           \
    X(ISSUER, -30007, "token issuer does not match")                                               \
    X(CLAIMS, -30008, "token claims missing or malformed")                                         \
    X(OPEN, -30009, "circuit breaker open")                                                        \
    X(UPSTREAM, -30010, "upstream failed")                                                         \
    X(TIMEOUT, -30011, "timed out")                                                                \
    X(NOINSTANCE, -30012, "no instance of the service available")                                  \
    X(BUS, -30013, "message bus error")                                                            \
    X(DB, -30014, "database error")                                                                \
    X(USAGE, -30015, "bad command line or configuration")

enum {
#define SF_ERR_ENUM(name, code, msg) SF_E##name = (code),
    SF_ERR_MAP(SF_ERR_ENUM)
#undef SF_ERR_ENUM
};

/* Returns a static message for any code (the runtime's, Sightline's common
 * ones, or -errno). Never NULL. */
const char *sf_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
