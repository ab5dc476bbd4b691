/* Bump allocator with chunk list. */
#include "base/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

struct arena_chunk {
  arena_chunk_t *next;
  size_t used;
  size_t cap;
  _Alignas(16) uint8_t data[];
};

enum { ARENA_CHUNK = 8192 - sizeof(arena_chunk_t) };

/* protobuf-c allocation hook. */
static void *pb_alloc(void *data, size_t size) { return arena_alloc(data, size); }
/* protobuf-c free hook: memory goes away with the arena. */
static void pb_free(void *data, void *p) {
  (void)data;
  (void)p;
}

void arena_init(arena_t *a) {
  a->head = NULL;
  a->pb.alloc = pb_alloc;
  a->pb.free = pb_free;
  a->pb.allocator_data = a;
}

void *arena_alloc(arena_t *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  arena_chunk_t *c = a->head;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
    c = xmalloc(sizeof(*c) + cap);
    c->cap = cap;
    c->used = 0;
    if (n > ARENA_CHUNK && a->head) {
      /* big one-off allocation: keep the current chunk at the head */
      c->next = a->head->next;
      a->head->next = c;
      c->used = n;
      return c->data;
    }
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += n;
  return p;
}

void *arena_zalloc(arena_t *a, size_t n) {
  void *p = arena_alloc(a, n);
  memset(p, 0, n);
  return p;
}

void *arena_memdup(arena_t *a, const void *p, size_t n) {
  uint8_t *q = arena_alloc(a, n + 1);
  if (n) memcpy(q, p, n);
  q[n] = 0;
  return q;
}

void arena_destroy(arena_t *a) {
  arena_chunk_t *c = a->head;
  while (c) {
    arena_chunk_t *n = c->next;
    free(c);
    c = n;
  }
  a->head = NULL;
}
