/*
 * Version pattern matching; see edge_version.h.
 */
#include "edge_version.h"

#include <string.h>

bool edge_version_match(const char *pattern, const char *version) {
    if (pattern == NULL || *pattern == '\0') {
        return true;
    }
    if (version == NULL) {
        return false;
    }
    size_t n = strlen(pattern);
    if (strncmp(pattern, version, n) != 0) {
        return false;
    }
    return version[n] == '\0' || version[n] == '.' || pattern[n - 1] == '.';
}
