/*
 * Messages of the runtime's error codes; everything else is Sightline's
 * common table (which also covers -errno). Constant data: thread-safe.
 */
#include "sf/sf_err.h"

#include "sl_err.h"

const char *sf_strerror(int err) {
    switch (err) {
#define SF_ERR_CASE(name, code, msg)                                                               \
    case code:                                                                                     \
        return msg;
        SF_ERR_MAP(SF_ERR_CASE)
#undef SF_ERR_CASE
    default:
        return sl_strerror(err);
    }
}
