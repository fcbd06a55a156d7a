/*
 * An intrusive string-keyed hash map shared by the fleet's edge (the
 * registry's instance and service tables, the gateway's rate-limit buckets).
 * A node lives inside the caller's struct; the map never allocates nodes, only
 * its bucket array, which doubles when the load passes one entry per bucket so
 * that lookups stay O(1) at any size. Keys are borrowed: the node's key must
 * stay valid and unchanged while the node is in the map. Not thread-safe: the
 * owner serializes access.
 */
#ifndef EDGE_HMAP_H
#define EDGE_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct edge_hnode {
    struct edge_hnode *next;
    uint64_t hash;
    const char *key;
    size_t key_len;
} edge_hnode;

typedef struct edge_hmap {
    edge_hnode **buckets;
    size_t mask; /* bucket count - 1; buckets is NULL until the first insert */
    size_t count;
} edge_hmap;

/* The struct that holds a node: EDGE_CONTAINER(node, struct inst, hnode). */
#define EDGE_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* A 64-bit hash of len bytes (FNV-1a folded with a final mix). */
uint64_t edge_hash(const void *p, size_t len);

void edge_hmap_init(edge_hmap *m);
/* Frees the bucket array (not the nodes). NULL is fine. */
void edge_hmap_free(edge_hmap *m);

/* Returns the node whose key equals key[0..len), or NULL. */
edge_hnode *edge_hmap_get(const edge_hmap *m, const char *key, size_t len);

/* Inserts node under key (borrowed) without checking for an existing equal
 * key (callers look up first). Returns 0 or SL_ENOMEM (node not inserted). */
int edge_hmap_put(edge_hmap *m, edge_hnode *node, const char *key, size_t len);

/* Unlinks node, which must be in the map. */
void edge_hmap_del(edge_hmap *m, edge_hnode *node);

/* Iteration: for (edge_hnode *n = edge_hmap_first(m, &i); n; n = edge_hmap_next(m, n, &i)).
 * The current node may be deleted only after fetching the next one. */
edge_hnode *edge_hmap_first(const edge_hmap *m, size_t *bucket);
edge_hnode *edge_hmap_next(const edge_hmap *m, edge_hnode *node, size_t *bucket);

#endif
