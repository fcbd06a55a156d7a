/*
 * sl_strerror / sl_errname over the SL_ERR_MAP list. Stateless, thread-safe.
 */
#include "sl_err.h"

#include <string.h>

const char *sl_strerror(int err) {
    switch (err) {
    case 0:
        return "success";
#define SL_ERR_MSG(name, code, msg)                                                                \
    case code:                                                                                     \
        return msg;
        SL_ERR_MAP(SL_ERR_MSG)
#undef SL_ERR_MSG
    default:
        break;
    }
    if (err < 0 && err > -10000) {
        return strerror(-err);
    }
    return "unknown error";
}

const char *sl_errname(int err) {
    switch (err) {
    case 0:
        return "OK";
#define SL_ERR_NAME(name, code, msg)                                                               \
    case code:                                                                                     \
        return "SL_E" #name;
        SL_ERR_MAP(SL_ERR_NAME)
#undef SL_ERR_NAME
    default:
        break;
    }
    return err < 0 && err > -10000 ? "ERRNO" : "UNKNOWN";
}
