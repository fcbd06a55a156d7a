/*
 * libFuzzer target for what the fleet runtime parses from the network: a
 * service or user token (JWT verification with an HS256 and an Ed25519 key,
 * up to the claim checks) and request bodies (the JSON object parser and the
 * field validator). The first byte picks the parser.
 */
#include "sf/sf_json.h"
#include "sf/sf_jwt.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static sf_jwt_key *hs, *ed;
    if (hs == NULL) {
        static const uint8_t seed[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                         12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                         23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
        sf_jwt_key_hs256("fuzzing-secret-fuzzing-secret-32", 32, &hs);
        sf_jwt_key_ed25519_private(seed, &ed);
    }
    if (size == 0) {
        return 0;
    }
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    json_t *j = NULL;
    if (data[0] % 3 == 0 || data[0] % 3 == 1) {
        sf_jwt_verify_options o;
        sf_jwt_verify_options_init(&o);
        o.audience = "users";
        o.now_s = 1700000000;
        if (sf_jwt_verify(data[0] % 3 == 0 ? hs : ed, p, n, &o, &j) == 0) {
            (void)sf_claims_has_scope(j, "admin");
            (void)sf_claims_str(j, "iss");
        }
    } else {
        static const sf_json_field f[] = {{"name", SF_JSON_STRING, true, 1, 64},
                                          {"age", SF_JSON_INTEGER, false, 0, 150},
                                          {"tags", SF_JSON_ARRAY, false, 0, 8},
                                          {"ratio", SF_JSON_NUMBER, false, 0, 1}};
        char err[256];
        if (sf_json_parse_object(p, n, &j, err, sizeof err) == 0) {
            (void)sf_json_check(j, f, 4, false, err, sizeof err);
        }
    }
    json_decref(j);
    return 0;
}
