/*
 * A bump allocator for everything that lives as long as one request or one
 * query: decode it, use it, free it all at once. Chunks grow geometrically up to
 * a hard cap (max_size) so that hostile input cannot make a request allocate
 * without bound. Not thread-safe: one arena belongs to one thread at a time.
 */
#ifndef SL_ARENA_H
#define SL_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

typedef struct sl_arena_chunk sl_arena_chunk;

/* In the header only for sl_arena_alloc's inline fast path. */
struct sl_arena_chunk {
    sl_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    size_t off;
    /* data follows, aligned to 16 */
};

#define SL_ARENA_HDR ((sizeof(sl_arena_chunk) + 15u) & ~(size_t)15u)

typedef struct sl_arena {
    sl_arena_chunk *head;  /* newest chunk first */
    sl_arena_chunk *spare; /* chunks kept by sl_arena_reset for reuse */
    size_t used;           /* bytes handed out, for accounting */
    size_t reserved;       /* bytes malloc'd for chunks */
    size_t max_size;       /* cap on reserved; 0 = unlimited */
    size_t next_chunk;     /* size of the next chunk to allocate */
    ProtobufCAllocator pb; /* protobuf-c hook over this arena; free is a no-op */
} sl_arena;

/* Prepares an arena whose chunks together may not exceed max_size bytes (0: no
 * cap). Allocates nothing until first use. */
void sl_arena_init(sl_arena *a, size_t max_size);

/* Frees every chunk. The arena may be reused after sl_arena_init. NULL is fine. */
void sl_arena_free(sl_arena *a);

/* Forgets every allocation but keeps up to 32 MiB of chunks for reuse, so
 * that a long-lived arena stops calling malloc for typical sizes. */
void sl_arena_reset(sl_arena *a);

/* sl_arena_alloc when the newest chunk has no room; size is rounded. */
void *sl_arena_alloc_slow(sl_arena *a, size_t size);

/* Returns size bytes aligned to 16, or NULL when out of memory or over the cap.
 * The memory is owned by the arena and dies with it. Inline: decoders
 * allocate many small pieces, and the common case is a bump. */
static inline void *sl_arena_alloc(sl_arena *a, size_t size) {
    if (size > SIZE_MAX - 15u) {
        return NULL;
    }
    size = size == 0 ? 16 : (size + 15u) & ~(size_t)15u;
    sl_arena_chunk *c = a->head;
    if (c != NULL && c->size - c->off >= size) {
        void *p = (char *)c + SL_ARENA_HDR + c->off;
        c->off += size;
        a->used += size;
        return p;
    }
    return sl_arena_alloc_slow(a, size);
}

/* Like sl_arena_alloc but zeroed. n * size overflow returns NULL. */
void *sl_arena_calloc(sl_arena *a, size_t n, size_t size);

/* Copies len bytes and appends a NUL. Returns NULL on failure. */
char *sl_arena_strndup(sl_arena *a, const char *s, size_t len);

/* Copies len bytes. */
void *sl_arena_memdup(sl_arena *a, const void *p, size_t len);

/* The protobuf-c allocator over this arena (borrowed; valid while the arena is). */
static inline ProtobufCAllocator *sl_arena_pb(sl_arena *a) {
    return &a->pb;
}

#endif
