/*
 * Unit tests of the fleet runtime's tokens and JSON helpers: base64url
 * strictness, the RFC 7515 HS256 and RFC 8037 Ed25519 known answers,
 * round trips, and every refusal (tampered, expired, not yet valid, wrong
 * audience or issuer, alg=none and algorithm confusion, malformed tokens).
 */
#include "../../fleet/runtime/src/jwt.c"

#include "sf/sf_json.h"
#include "sl_test.h"

static char *b64(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(rt_b64url_len(n) + 1);
    rt_b64url_encode((const uint8_t *)s, n, out);
    return out;
}

/* Builds header.payload.signature from raw JSON texts and a raw signature. */
static char *forge(const char *header, const char *payload, const char *sig_b64) {
    char *h = b64(header), *p = b64(payload);
    size_t cap = strlen(h) + strlen(p) + strlen(sig_b64) + 3;
    char *t = malloc(cap);
    snprintf(t, cap, "%s.%s.%s", h, p, sig_b64);
    free(h);
    free(p);
    return t;
}

/* Signs header.payload with the key (so only the chosen part is wrong). */
static char *forge_signed(const sf_jwt_key *k, const char *header, const char *payload) {
    char *h = b64(header), *p = b64(payload);
    size_t cap = strlen(h) + strlen(p) + 2 + 100;
    char *t = malloc(cap);
    int n = snprintf(t, cap, "%s.%s", h, p);
    uint8_t sig[SIG_MAX];
    int slen = sign_bytes(k, t, (size_t)n, sig);
    t[n] = '.';
    rt_b64url_encode(sig, (size_t)slen, t + n + 1);
    free(h);
    free(p);
    return t;
}

static sf_jwt_key *hs_key(void) {
    sf_jwt_key *k = NULL;
    sf_jwt_key_hs256("0123456789abcdef0123456789abcdef", 32, &k);
    return k;
}

static int verify_at(const sf_jwt_key *k, const char *tok, int64_t now, const char *aud,
                     json_t **claims) {
    sf_jwt_verify_options o;
    sf_jwt_verify_options_init(&o);
    o.now_s = now;
    o.audience = aud;
    return sf_jwt_verify(k, tok, strlen(tok), &o, claims);
}

static void test_b64url(void) {
    const char *cases[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *e = b64(cases[i]);
        ASSERT_STR_EQ(e, want[i]);
        uint8_t out[16];
        long n = rt_b64url_decode(e, strlen(e), out);
        ASSERT_EQ(n, (long)strlen(cases[i]));
        ASSERT_TRUE(memcmp(out, cases[i], (size_t)n) == 0);
        free(e);
    }
    uint8_t out[16];
    ASSERT_EQ(rt_b64url_decode("Zg==", 4, out), -1);  /* padding refused */
    ASSERT_EQ(rt_b64url_decode("Z+8", 3, out), -1);   /* standard alphabet refused */
    ASSERT_EQ(rt_b64url_decode("Zm9vY", 5, out), -1); /* 1 mod 4 */
    ASSERT_EQ(rt_b64url_decode("Zh", 2, out), -1);    /* non-zero trailing bits */
    ASSERT_EQ(rt_b64url_decode("_-8", 3, out), 2);
    ASSERT_EQ(out[0], 0xff);
    ASSERT_EQ(out[1], 0xef);
}

static void test_rfc7515_hs256(void) {
    /* RFC 7515 appendix A.1: its key, token and claims. */
    static const char key_b64[] =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    static const char tok[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
        "cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    uint8_t secret[64];
    long n = rt_b64url_decode(key_b64, strlen(key_b64), secret);
    ASSERT_EQ(n, 64);
    sf_jwt_key *k;
    ASSERT_EQ(sf_jwt_key_hs256(secret, (size_t)n, &k), 0);
    json_t *c = NULL;
    ASSERT_EQ(verify_at(k, tok, 1300819000, NULL, &c), 0);
    ASSERT_STR_EQ(sf_claims_str(c, "iss"), "joe");
    int64_t exp = 0;
    ASSERT_EQ(sf_claims_int(c, "exp", &exp), 0);
    ASSERT_EQ(exp, 1300819380);
    json_decref(c);
    ASSERT_EQ(verify_at(k, tok, 1300819380 + 5, NULL, &c), SF_EEXPIRED);
    ASSERT_TRUE(c == NULL);
    ASSERT_EQ(verify_at(k, tok, 1300819380 + 4, NULL, &c), 0); /* within the leeway */
    json_decref(c);
    sf_jwt_key_destroy(k);
}

static void test_rfc8037_ed25519(void) {
    /* RFC 8037 appendix A.4: a deterministic Ed25519 signature. */
    static const char seed_b64[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    static const char pub_b64[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    static const char input[] = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    static const char sig_b64[] =
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    uint8_t seed[33], pub[33], want_pub[32];
    ASSERT_EQ(rt_b64url_decode(seed_b64, strlen(seed_b64), seed), 32);
    ASSERT_EQ(rt_b64url_decode(pub_b64, strlen(pub_b64), pub), 32);
    sf_jwt_key *k, *vk;
    ASSERT_EQ(sf_jwt_key_ed25519_private(seed, &k), 0);
    ASSERT_EQ(sf_jwt_key_ed25519_public_raw(k, want_pub), 0);
    ASSERT_TRUE(memcmp(want_pub, pub, 32) == 0);
    uint8_t sig[SIG_MAX];
    ASSERT_EQ(sign_bytes(k, input, strlen(input), sig), 64);
    char enc[100];
    rt_b64url_encode(sig, 64, enc);
    ASSERT_STR_EQ(enc, sig_b64);
    ASSERT_EQ(sf_jwt_key_ed25519_public(pub, &vk), 0);
    ASSERT_TRUE(verify_bytes(vk, input, strlen(input), sig, 64));
    sig[10] ^= 1;
    ASSERT_TRUE(!verify_bytes(vk, input, strlen(input), sig, 64));
    sf_jwt_key_destroy(k);
    sf_jwt_key_destroy(vk);
}

static void test_roundtrip_and_claims(void) {
    sf_jwt_key *k = hs_key();
    char *tok = NULL;
    ASSERT_EQ(sf_service_token(k, "gateway", "users", "users.read users.write", 60, &tok), 0);
    json_t *c = NULL;
    ASSERT_EQ(verify_at(k, tok, 0, "users", &c), 0);
    ASSERT_STR_EQ(sf_claims_str(c, "iss"), "gateway");
    ASSERT_TRUE(sf_claims_has_scope(c, "users.write"));
    ASSERT_TRUE(sf_claims_has_scope(c, "users.read"));
    ASSERT_TRUE(!sf_claims_has_scope(c, "users"));
    ASSERT_TRUE(!sf_claims_has_scope(c, "admin"));
    json_decref(c);
    ASSERT_EQ(verify_at(k, tok, 0, "auth", &c), SF_EAUDIENCE);
    sf_jwt_verify_options o;
    sf_jwt_verify_options_init(&o);
    o.issuer = "tenants";
    ASSERT_EQ(sf_jwt_verify(k, tok, strlen(tok), &o, &c), SF_EISSUER);
    o.issuer = "gateway";
    ASSERT_EQ(sf_jwt_verify(k, tok, strlen(tok), &o, &c), 0);
    json_decref(c);
    free(tok);

    /* EdDSA round trip; the public half verifies and cannot sign. */
    sf_jwt_key *ek, *pk;
    uint8_t pub[32];
    ASSERT_EQ(sf_jwt_key_ed25519_generate(&ek), 0);
    ASSERT_EQ(sf_jwt_key_ed25519_public_raw(ek, pub), 0);
    ASSERT_EQ(sf_jwt_key_ed25519_public(pub, &pk), 0);
    json_t *claims = sf_claims_new("auth", "gateway", "user-1", 0, 900, NULL);
    json_object_set_new(claims, "aud", json_pack("[ss]", "gateway", "users"));
    ASSERT_EQ(sf_jwt_sign(ek, claims, &tok), 0);
    ASSERT_EQ(verify_at(pk, tok, 0, "users", &c), 0);
    ASSERT_STR_EQ(sf_claims_str(c, "sub"), "user-1");
    json_decref(c);
    char *none = NULL;
    ASSERT_EQ(sf_jwt_sign(pk, claims, &none), SL_EINVAL);
    /* Algorithm confusion: an EdDSA token against an HS256 key and back. */
    ASSERT_EQ(verify_at(k, tok, 0, NULL, &c), SF_EALG);
    free(tok);
    ASSERT_EQ(sf_jwt_sign(k, claims, &tok), 0);
    ASSERT_EQ(verify_at(pk, tok, 0, NULL, &c), SF_EALG);
    free(tok);
    json_decref(claims);
    sf_jwt_key_destroy(ek);
    sf_jwt_key_destroy(pk);
    sf_jwt_key_destroy(k);
}

static void test_refusals(void) {
    sf_jwt_key *k = hs_key();
    sf_jwt_key *other = NULL;
    sf_jwt_key_hs256("another-secret-of-32-bytes-long!", 32, &other);
    json_t *c = NULL;
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    int64_t now = 1700000000;

    /* alg=none with and without a signature. */
    char *t = forge("{\"alg\":\"none\"}", "{\"iss\":\"x\",\"exp\":9999999999}", "");
    ASSERT_EQ(verify_at(k, t, now, NULL, &c), SF_EALG);
    free(t);
    t = forge("{\"alg\":\"HS256\"}", "{\"iss\":\"x\",\"exp\":9999999999}", "");
    ASSERT_EQ(verify_at(k, t, now, NULL, &c), SF_ESIGNATURE);
    free(t);
    /* Lower-case alg, a crit header, a non-JWT typ. */
    t = forge_signed(k, "{\"alg\":\"hs256\"}", "{\"exp\":9999999999}");
    ASSERT_EQ(verify_at(k, t, now, NULL, &c), SF_EALG);
    free(t);
    t = forge_signed(k, "{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", "{\"exp\":9999999999}");
    ASSERT_EQ(verify_at(k, t, now, NULL, &c), SF_EALG);
    free(t);
    t = forge_signed(k, "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", "{\"exp\":9999999999}");
    ASSERT_EQ(verify_at(k, t, now, NULL, &c), SF_ETOKEN);
    free(t);

    /* Tampered payload (re-encoded, old signature kept) and wrong key. */
    char *good =
        forge_signed(k, hdr, "{\"iss\":\"gateway\",\"scope\":\"read\",\"exp\":1700000060}");
    ASSERT_EQ(verify_at(k, good, now, NULL, &c), 0);
    json_decref(c);
    ASSERT_EQ(verify_at(other, good, now, NULL, &c), SF_ESIGNATURE);
    char *evil = forge(hdr, "{\"iss\":\"gateway\",\"scope\":\"admin\",\"exp\":1700000060}",
                       strrchr(good, '.') + 1);
    ASSERT_EQ(verify_at(k, evil, now, NULL, &c), SF_ESIGNATURE);
    free(evil);
    /* One flipped signature character. */
    char *flip = strdup(good);
    char *last = flip + strlen(flip) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    ASSERT_EQ(verify_at(k, flip, now, NULL, &c), SF_ESIGNATURE);
    free(flip);
    /* Expired, and not yet valid (iat, nbf in the future). */
    ASSERT_EQ(verify_at(k, good, 1700000065, NULL, &c), SF_EEXPIRED);
    free(good);
    t = forge_signed(k, hdr, "{\"iat\":1700000100,\"exp\":1700000200}");
    ASSERT_EQ(verify_at(k, t, now, NULL, &c), SF_ENOTYET);
    free(t);
    t = forge_signed(k, hdr, "{\"nbf\":1700000100,\"exp\":1700000200}");
    ASSERT_EQ(verify_at(k, t, now, NULL, &c), SF_ENOTYET);
    free(t);
    /* exp missing, exp not a number; wrong audience (string and array). */
    t = forge_signed(k, hdr, "{\"iss\":\"x\"}");
    ASSERT_EQ(verify_at(k, t, now, NULL, &c), SF_ECLAIMS);
    free(t);
    t = forge_signed(k, hdr, "{\"exp\":\"tomorrow\"}");
    ASSERT_EQ(verify_at(k, t, now, NULL, &c), SF_ECLAIMS);
    free(t);
    t = forge_signed(k, hdr, "{\"aud\":\"auth\",\"exp\":1700000060}");
    ASSERT_EQ(verify_at(k, t, now, "users", &c), SF_EAUDIENCE);
    free(t);
    t = forge_signed(k, hdr, "{\"aud\":[\"auth\",1],\"exp\":1700000060}");
    ASSERT_EQ(verify_at(k, t, now, "users", &c), SF_EAUDIENCE);
    free(t);
    t = forge_signed(k, hdr, "{\"exp\":1700000060}");
    ASSERT_EQ(verify_at(k, t, now, "users", &c), SF_EAUDIENCE);
    free(t);

    /* Malformed shapes. */
    const char *bad[] = {"",   "abc",     "a.b",     "a.b.c.d",
                         "..", "!!.e30.", "e30.e30", "W10.e30.AAAA" /* header is an array */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = verify_at(k, bad[i], now, NULL, &c);
        if (rc != SF_ETOKEN) {
            SL_FAIL_AT("token %s: %d", bad[i], rc);
            return;
        }
    }
    t = forge("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}", "");
    ASSERT_EQ(verify_at(k, t, now, NULL, &c), SF_ETOKEN); /* duplicate keys */
    free(t);
    char *huge = malloc(SF_JWT_MAX_LEN + 2);
    memset(huge, 'a', SF_JWT_MAX_LEN + 1);
    huge[10] = huge[20] = '.';
    huge[SF_JWT_MAX_LEN + 1] = '\0';
    ASSERT_EQ(verify_at(k, huge, now, NULL, &c), SF_ETOKEN);
    free(huge);
    ASSERT_TRUE(c == NULL);
    sf_jwt_key *tiny;
    ASSERT_EQ(sf_jwt_key_hs256("short", 5, &tiny), SL_EINVAL);
    ASSERT_TRUE(tiny == NULL);
    sf_jwt_key_destroy(other);
    sf_jwt_key_destroy(k);
}

static void test_json_check(void) {
    static const sf_json_field f[] = {
        {"name", SF_JSON_STRING, true, 1, 8},
        {"age", SF_JSON_INTEGER, false, 0, 150},
        {"tags", SF_JSON_ARRAY, false, 0, 2},
    };
    char err[128];
    json_t *j = NULL;
    const char *ok = "{\"name\":\"ada\",\"age\":36,\"tags\":[\"a\"]}";
    ASSERT_EQ(sf_json_parse_object(ok, strlen(ok), &j, err, sizeof err), 0);
    ASSERT_EQ(sf_json_check(j, f, 3, false, err, sizeof err), 0);
    ASSERT_EQ(sf_json_int(j, "age", 0), 36);
    ASSERT_STR_EQ(sf_json_str(j, "name", NULL), "ada");
    ASSERT_STR_EQ(sf_json_str(j, "nope", "dflt"), "dflt");
    json_decref(j);
    struct {
        const char *body;
        int rc;
        const char *msg;
    } cases[] = {
        {"{\"age\":3}", SL_EINVAL, "field \"name\" is required"},
        {"{\"name\":7}", SL_EINVAL, "field \"name\" must be a string"},
        {"{\"name\":\"\"}", SL_EINVAL, "field \"name\": length must be between 1 and 8"},
        {"{\"name\":\"a\",\"age\":151}", SL_EINVAL,
         "field \"age\": value must be between 0 and 150"},
        {"{\"name\":\"a\",\"age\":1.5}", SL_EINVAL, "field \"age\" must be an integer"},
        {"{\"name\":\"a\",\"tags\":[1,2,3]}", SL_EINVAL,
         "field \"tags\": element count must be between 0 and 2"},
        {"{\"name\":\"a\",\"extra\":1}", SL_EINVAL, "unknown field \"extra\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ASSERT_EQ(sf_json_parse_object(cases[i].body, strlen(cases[i].body), &j, err, sizeof err),
                  0);
        ASSERT_EQ(sf_json_check(j, f, 3, false, err, sizeof err), cases[i].rc);
        ASSERT_STR_EQ(err, cases[i].msg);
        json_decref(j);
    }
    ASSERT_EQ(sf_json_parse_object("[1]", 3, &j, err, sizeof err), SL_EDECODE);
    ASSERT_EQ(sf_json_parse_object("{\"a\":1,\"a\":2}", 13, &j, err, sizeof err), SL_EDECODE);
    ASSERT_EQ(sf_json_parse_object("{\"a\":", 5, &j, err, sizeof err), SL_EDECODE);
    ASSERT_TRUE(strstr(err, "invalid JSON at line 1") != NULL);
}

static void test_word_in(void) {
    ASSERT_TRUE(rt_word_in("gateway tenants", "tenants", 7));
    ASSERT_TRUE(rt_word_in("a,b", "b", 1));
    ASSERT_TRUE(!rt_word_in("gateway tenants", "gate", 4));
    ASSERT_TRUE(!rt_word_in("", "x", 1));
    ASSERT_TRUE(!rt_word_in("x", "", 0));
}

int main(void) {
    RUN(test_b64url);
    RUN(test_rfc7515_hs256);
    RUN(test_rfc8037_ed25519);
    RUN(test_roundtrip_and_claims);
    RUN(test_refusals);
    RUN(test_json_check);
    RUN(test_word_in);
    return SL_TEST_RESULT();
}
