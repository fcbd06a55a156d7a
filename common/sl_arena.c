/*
 * Arena allocator. Invariant: head points at the chunk currently being carved;
 * older chunks are full (or nearly). Allocations larger than half a chunk get a
 * chunk of their own so that big blobs do not waste the current chunk.
 */
#include "sl_arena.h"

#include <stdlib.h>
#include <string.h>

#define SL_ARENA_FIRST 4096u
#define SL_ARENA_MAXCHUNK (1u << 20)
#define SL_ARENA_RETAIN (32u << 20) /* largest chunk sl_arena_reset keeps */

static void *pb_alloc(void *ud, size_t size) {
    return sl_arena_alloc(ud, size);
}

static void pb_free(void *ud, void *p) {
    (void)ud;
    (void)p;
}

void sl_arena_init(sl_arena *a, size_t max_size) {
    memset(a, 0, sizeof(*a));
    a->max_size = max_size;
    a->next_chunk = SL_ARENA_FIRST;
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
}

void sl_arena_free(sl_arena *a) {
    if (a == NULL) {
        return;
    }
    sl_arena_chunk *c = a->head;
    while (c != NULL) {
        sl_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    c = a->spare;
    while (c != NULL) {
        sl_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->spare = NULL;
    a->used = 0;
    a->reserved = 0;
    a->next_chunk = SL_ARENA_FIRST;
}

void sl_arena_reset(sl_arena *a) {
    /* Move chunks to the spare list (up to SL_ARENA_RETAIN bytes in all) so
     * that a reused arena serves typical requests from memory that is already
     * paged in, while one huge request does not pin its memory forever. */
    size_t kept = 0;
    for (sl_arena_chunk *c = a->spare; c != NULL; c = c->next) {
        kept += c->size;
    }
    sl_arena_chunk *c = a->head;
    while (c != NULL) {
        sl_arena_chunk *n = c->next;
        if (kept + c->size <= SL_ARENA_RETAIN) {
            kept += c->size;
            c->off = 0;
            c->next = a->spare;
            a->spare = c;
        } else {
            free(c);
        }
        c = n;
    }
    a->head = NULL;
    a->used = 0;
    a->reserved = 0;
}

void *sl_arena_alloc_slow(sl_arena *a, size_t size) {
    sl_arena_chunk *c = a->head;
    /* A spare chunk from before the last reset that is big enough. */
    for (sl_arena_chunk **sp = &a->spare; *sp != NULL; sp = &(*sp)->next) {
        sl_arena_chunk *n = *sp;
        if (n->size >= size &&
            (a->max_size == 0 || a->reserved + n->size + SL_ARENA_HDR <= a->max_size)) {
            *sp = n->next;
            n->off = size;
            n->next = c;
            a->head = n;
            a->reserved += SL_ARENA_HDR + n->size;
            a->used += size;
            return (char *)n + SL_ARENA_HDR;
        }
    }
    size_t csize = a->next_chunk;
    if (size > csize / 2) {
        csize = size;
    } else if (a->next_chunk < SL_ARENA_MAXCHUNK) {
        a->next_chunk *= 2;
    }
    if (csize > SIZE_MAX - SL_ARENA_HDR) {
        return NULL;
    }
    if (a->max_size != 0 && a->reserved + csize + SL_ARENA_HDR > a->max_size) {
        return NULL;
    }
    sl_arena_chunk *n = malloc(SL_ARENA_HDR + csize);
    if (n == NULL) {
        return NULL;
    }
    n->size = csize;
    n->off = size;
    a->reserved += SL_ARENA_HDR + csize;
    a->used += size;
    if (size == csize && c != NULL) {
        /* A dedicated chunk: link it behind the current one so the current
         * chunk keeps serving small allocations. */
        n->next = c->next;
        c->next = n;
    } else {
        n->next = c;
        a->head = n;
    }
    return (char *)n + SL_ARENA_HDR;
}

void *sl_arena_calloc(sl_arena *a, size_t n, size_t size) {
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    void *p = sl_arena_alloc(a, n * size);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

char *sl_arena_strndup(sl_arena *a, const char *s, size_t len) {
    char *p = sl_arena_alloc(a, len + 1);
    if (p != NULL) {
        if (len > 0) {
            memcpy(p, s, len);
        }
        p[len] = '\0';
    }
    return p;
}

void *sl_arena_memdup(sl_arena *a, const void *p, size_t len) {
    void *q = sl_arena_alloc(a, len);
    if (q != NULL && len > 0) {
        memcpy(q, p, len);
    }
    return q;
}
