/*
 * Reads the tenant limits file (format: limits_file.c) into a new table.
 * Returns 0, -errno or SL_EINVAL with err naming the file and line.
 */
#ifndef SL_LIMITS_FILE_H
#define SL_LIMITS_FILE_H

#include "sl_limits.h"

#include <stddef.h>

int limits_load(const char *path, sl_limits **out, char *err, size_t errcap);

#endif
