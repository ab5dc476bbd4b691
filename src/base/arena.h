/* A bump allocator for one request's lifetime. It doubles as protobuf-c's allocator, so
 * a decoded request and the response built for it are freed in one arena_destroy. */
#ifndef CETCD_BASE_ARENA_H
#define CETCD_BASE_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct arena_chunk arena_chunk_t;

typedef struct arena {
  arena_chunk_t *head;
  ProtobufCAllocator pb; /* allocator_data points back at the arena */
} arena_t;

/* Initializes an empty arena. */
void arena_init(arena_t *a);
/* Returns n bytes aligned to 16, owned by the arena. Aborts on allocation failure. */
void *arena_alloc(arena_t *a, size_t n);
/* Like arena_alloc, zeroed. */
void *arena_zalloc(arena_t *a, size_t n);
/* Copies n bytes into the arena (plus a trailing NUL). */
void *arena_memdup(arena_t *a, const void *p, size_t n);
/* Frees everything allocated from the arena; the arena may be reused after arena_init. */
void arena_destroy(arena_t *a);

#define ARENA_NEW(a, type) ((type *)arena_zalloc((a), sizeof(type)))

#endif
