/*
 * Chained hashing with a power-of-two bucket array; see edge_hmap.h.
 */
#include "edge_hmap.h"

#include "sl_err.h"

#include <stdlib.h>
#include <string.h>

uint64_t edge_hash(const void *p, size_t len) {
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    /* FNV-1a's low bits are weak for short keys that differ in their last
     * byte; a final avalanche (splitmix64's) spreads them over the mask. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

void edge_hmap_init(edge_hmap *m) {
    m->buckets = NULL;
    m->mask = 0;
    m->count = 0;
}

void edge_hmap_free(edge_hmap *m) {
    if (m == NULL) {
        return;
    }
    free(m->buckets);
    edge_hmap_init(m);
}

edge_hnode *edge_hmap_get(const edge_hmap *m, const char *key, size_t len) {
    if (m->buckets == NULL) {
        return NULL;
    }
    uint64_t h = edge_hash(key, len);
    for (edge_hnode *n = m->buckets[h & m->mask]; n != NULL; n = n->next) {
        if (n->hash == h && n->key_len == len && memcmp(n->key, key, len) == 0) {
            return n;
        }
    }
    return NULL;
}

static int hmap_grow(edge_hmap *m) {
    size_t nb = m->buckets == NULL ? 16 : (m->mask + 1) * 2;
    edge_hnode **b = calloc(nb, sizeof(*b));
    if (b == NULL) {
        return SL_ENOMEM;
    }
    if (m->buckets != NULL) {
        for (size_t i = 0; i <= m->mask; i++) {
            edge_hnode *n = m->buckets[i];
            while (n != NULL) {
                edge_hnode *next = n->next;
                size_t j = n->hash & (nb - 1);
                n->next = b[j];
                b[j] = n;
                n = next;
            }
        }
        free(m->buckets);
    }
    m->buckets = b;
    m->mask = nb - 1;
    return 0;
}

int edge_hmap_put(edge_hmap *m, edge_hnode *node, const char *key, size_t len) {
    if (m->buckets == NULL || m->count >= m->mask + 1) {
        int rc = hmap_grow(m);
        if (rc != 0 && m->buckets == NULL) {
            return rc;
        }
        /* A failed doubling leaves a longer chain, not a lost node. */
    }
    node->hash = edge_hash(key, len);
    node->key = key;
    node->key_len = len;
    size_t i = node->hash & m->mask;
    node->next = m->buckets[i];
    m->buckets[i] = node;
    m->count++;
    return 0;
}

void edge_hmap_del(edge_hmap *m, edge_hnode *node) {
    edge_hnode **pp = &m->buckets[node->hash & m->mask];
    while (*pp != NULL && *pp != node) {
        pp = &(*pp)->next;
    }
    if (*pp == node) {
        *pp = node->next;
        node->next = NULL;
        m->count--;
    }
}

edge_hnode *edge_hmap_first(const edge_hmap *m, size_t *bucket) {
    if (m->buckets == NULL) {
        return NULL;
    }
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->buckets[i] != NULL) {
            *bucket = i;
            return m->buckets[i];
        }
    }
    return NULL;
}

edge_hnode *edge_hmap_next(const edge_hmap *m, edge_hnode *node, size_t *bucket) {
    if (node->next != NULL) {
        return node->next;
    }
    for (size_t i = *bucket + 1; i <= m->mask; i++) {
        if (m->buckets[i] != NULL) {
            *bucket = i;
            return m->buckets[i];
        }
    }
    return NULL;
}
