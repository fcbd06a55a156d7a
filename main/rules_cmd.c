/*
 * `sightline rules check FILE...`: checks rule files the way promtool's
 * `check rules` does and prints every problem with its line. Exit status 0
 * when every file is valid, 1 when one is not, 2 on bad usage.
 */
#include "rules_cmd.h"

#include "alerting.h"
#include "sl_buf.h"
#include "sl_err.h"

#include <stdio.h>
#include <string.h>

int rules_cmd(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "Usage: sightline rules check FILE...\n");
        return 2;
    }
    int status = 0;
    for (int i = 2; i < argc; i++) {
        al_ruleset rs = {0};
        sl_buf errs;
        sl_buf_init(&errs, 1u << 20);
        printf("Checking %s\n", argv[i]);
        int rc = al_rules_load_file(argv[i], &rs, &errs);
        if (rc == 0) {
            size_t n = 0;
            for (size_t g = 0; g < rs.ngroups; g++) {
                n += rs.groups[g].nrules;
            }
            printf("  SUCCESS: %zu rules found\n\n", n);
        } else {
            printf("  FAILED:\n%.*s\n", (int)errs.len, errs.len ? (const char *)errs.data : "");
            if (errs.len == 0) {
                printf("%s: %s\n\n", argv[i], sl_strerror(rc));
            }
            status = 1;
        }
        sl_buf_free(&errs);
        al_ruleset_clear(&rs);
    }
    fflush(stdout);
    return status;
}
