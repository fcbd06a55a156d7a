/*
 * Fuzz target: the gateway's route-table loader (YAML) and, when the input
 * loads, route matching and the request checks over paths cut from the
 * input. None may crash, leak or hang.
 */
#include "gw_request.h"
#include "gw_routes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gw_config cfg;
    char err[256];
    const char *text = (const char *)data;
    if (gw_config_parse(text, size, &cfg, err, sizeof(err)) == 0) {
        static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
        for (size_t i = 0; i < cfg.n_routes; i++) {
            uint32_t allowed;
            const gw_route *r = gw_config_match(&cfg, gw_method_bit(methods[i % 4]),
                                                cfg.routes[i].prefix,
                                                strlen(cfg.routes[i].prefix), &allowed);
            if (r != NULL) {
                gw_deprecation d;
                gw_route_deprecation(r, "/x/y", &d);
            }
        }
        gw_config_free(&cfg);
    }
    gw_verdict v;
    gw_check_path(text, size, 4096, &v);
    gw_check_body("application/json", text, size, 1 << 16, &v);
    return 0;
}
