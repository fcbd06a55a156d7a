/*
 * fc_password: argon2id via libsodium. See fc/fc_password.h.
 */
#include "fc/fc_password.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

int fc_password_hash(const char *pw, size_t len, char out[FC_PASSWORD_HASH_SIZE]) {
    if (len < FC_PASSWORD_MIN_LEN || len > FC_PASSWORD_MAX_LEN) {
        return SL_EINVAL;
    }
    if (fc_crypto_init() != 0) {
        return SL_EUNSUPPORTED;
    }
    if (crypto_pwhash_str_alg(out, pw, len, FC_PASSWORD_OPSLIMIT, FC_PASSWORD_MEMLIMIT,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        return SL_ENOMEM;
    }
    return 0;
}

int fc_password_verify(const char *hash, const char *pw, size_t len) {
    if (!hash || len > FC_PASSWORD_MAX_LEN || fc_crypto_init() != 0) {
        return FC_EDENIED;
    }
    /* crypto_pwhash_str_verify reads a NUL-terminated string of bounded
     * length; reject anything longer than the format allows first. */
    if (strnlen(hash, FC_PASSWORD_HASH_SIZE) >= FC_PASSWORD_HASH_SIZE) {
        return FC_EDENIED;
    }
    return crypto_pwhash_str_verify(hash, pw, len) == 0 ? 0 : FC_EDENIED;
}

static pthread_once_t fc_burn_once = PTHREAD_ONCE_INIT;
static char fc_burn_hash[FC_PASSWORD_HASH_SIZE];

static void fc_burn_init(void) {
    static const char pw[] = "no-such-user-placeholder";
    if (fc_password_hash(pw, sizeof pw - 1, fc_burn_hash) != 0) {
        fc_burn_hash[0] = '\0';
    }
}

void fc_password_burn(const char *pw, size_t len) {
    pthread_once(&fc_burn_once, fc_burn_init);
    (void)fc_password_verify(fc_burn_hash, pw, len);
}

bool fc_password_needs_rehash(const char *hash) {
    if (fc_crypto_init() != 0) {
        return false;
    }
    return crypto_pwhash_str_needs_rehash(hash, FC_PASSWORD_OPSLIMIT, FC_PASSWORD_MEMLIMIT) != 0;
}
