/*
 * The optional YAML configuration file of `sightline serve`: a flat mapping
 * whose keys are the flag names (dashes or underscores) and whose values are
 * scalars written as on the command line. Runs once at start-up.
 */
#ifndef SL_CONFIG_FILE_H
#define SL_CONFIG_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Called for each key/value; returns 0 to go on, anything else to stop with
 * that result (the callback has written err). Strings are borrowed. */
typedef int (*cfg_set_fn)(void *ud, const char *key, const char *value, int line, char *err,
                          size_t err_size);

/* Reads path and calls set for every pair in file order. Returns 0, or -1 with
 * a message naming the file and line in err (unreadable file, YAML syntax
 * error, anything but a flat mapping of scalars, or set's refusal). */
int cfg_load_yaml(const char *path, cfg_set_fn set, void *ud, char *err, size_t err_size);

/* "90s", "7d", ... (ns, us, ms, s, m, h, d); a bare "0" means zero.
 * Returns 0 or SL_EINVAL. (sightline.c) */
int parse_duration(const char *s, uint64_t *out);

#endif
