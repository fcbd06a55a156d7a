/*
 * Version patterns shared by the registry's discovery filter and the
 * gateway's canary split. Pure and thread-safe.
 */
#ifndef EDGE_VERSION_H
#define EDGE_VERSION_H

#include <stdbool.h>

/* True when version matches pattern: NULL or "" matches everything; else
 * pattern must equal version or be a prefix of it ending at a dot boundary
 * ("2" and "2.0" match "2.0.1", "2." matches "2.5"; "2" does not match "20.1"). */
bool edge_version_match(const char *pattern, const char *version);

#endif
