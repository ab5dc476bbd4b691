/* The lessor's containers: key sets, the id → lease map and the expiry heap. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "lease/lease_int.h"

uint64_t lease_hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix */
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93ULL;
  h ^= h >> 32;
  return h;
}

/* A 64-bit mix of a lease id (splitmix64's finalizer). */
static uint64_t mix_id(int64_t id) {
  uint64_t x = (uint64_t)id;
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/* ---- key sets ------------------------------------------------------------------------ */

lease_key_t *lease_keyset_find(const lease_keyset_t *s, const uint8_t *key, size_t klen, uint64_t h) {
  if (!s->cap) return NULL;
  size_t mask = s->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    lease_key_t *k = s->slots[i];
    if (!k) return NULL;
    if (k->hash == h && k->len == klen && memcmp(k->data, key, klen) == 0) return k;
  }
}

/* Places k in the first free slot of its probe sequence. */
static void keyset_place(lease_keyset_t *s, lease_key_t *k) {
  size_t mask = s->cap - 1;
  size_t i = k->hash & mask;
  while (s->slots[i]) i = (i + 1) & mask;
  s->slots[i] = k;
}

/* Doubles the table (or creates it). */
static void keyset_grow(lease_keyset_t *s) {
  size_t oldcap = s->cap;
  lease_key_t **old = s->slots;
  s->cap = oldcap ? oldcap * 2 : 4;
  s->slots = xcalloc(s->cap, sizeof(*s->slots));
  for (size_t i = 0; i < oldcap; i++)
    if (old[i]) keyset_place(s, old[i]);
  free(old);
}

bool lease_keyset_add(lease_keyset_t *s, const uint8_t *key, size_t klen) {
  uint64_t h = lease_hash_bytes(key, klen);
  if (lease_keyset_find(s, key, klen, h)) return false;
  if ((s->n + 1) * 4 > s->cap * 3) keyset_grow(s);
  lease_key_t *k = xmalloc(sizeof(*k) + klen);
  k->hash = h;
  k->len = klen;
  if (klen) memcpy(k->data, key, klen);
  keyset_place(s, k);
  s->n++;
  return true;
}

bool lease_keyset_del(lease_keyset_t *s, const uint8_t *key, size_t klen) {
  if (!s->n) return false;
  uint64_t h = lease_hash_bytes(key, klen);
  size_t mask = s->cap - 1;
  size_t i = h & mask;
  for (;; i = (i + 1) & mask) {
    lease_key_t *k = s->slots[i];
    if (!k) return false;
    if (k->hash == h && k->len == klen && memcmp(k->data, key, klen) == 0) break;
  }
  free(s->slots[i]);
  s->slots[i] = NULL;
  s->n--;
  /* Backward shift: pull later entries of the cluster into the hole when allowed. */
  for (size_t j = (i + 1) & mask; s->slots[j]; j = (j + 1) & mask) {
    size_t home = s->slots[j]->hash & mask;
    /* Move j to i if home is not cyclically in (i, j]. */
    bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!in_range) {
      s->slots[i] = s->slots[j];
      s->slots[j] = NULL;
      i = j;
    }
  }
  return true;
}

void lease_keyset_free(lease_keyset_t *s) {
  for (size_t i = 0; i < s->cap; i++) free(s->slots[i]);
  free(s->slots);
  memset(s, 0, sizeof(*s));
}

/* ---- id → lease map ------------------------------------------------------------------ */

lease_t *lease_map_get(const lease_map_t *m, int64_t id) {
  if (!m->cap) return NULL;
  size_t mask = m->cap - 1;
  for (size_t i = mix_id(id) & mask;; i = (i + 1) & mask) {
    lease_t *l = m->slots[i];
    if (!l) return NULL;
    if (l->id == id) return l;
  }
}

/* Places l in the first free slot of its probe sequence. */
static void map_place(lease_map_t *m, lease_t *l) {
  size_t mask = m->cap - 1;
  size_t i = mix_id(l->id) & mask;
  while (m->slots[i]) i = (i + 1) & mask;
  m->slots[i] = l;
}

void lease_map_put(lease_map_t *m, lease_t *l) {
  if ((m->n + 1) * 4 > m->cap * 3) {
    size_t oldcap = m->cap;
    lease_t **old = m->slots;
    m->cap = oldcap ? oldcap * 2 : 16;
    m->slots = xcalloc(m->cap, sizeof(*m->slots));
    for (size_t i = 0; i < oldcap; i++)
      if (old[i]) map_place(m, old[i]);
    free(old);
  }
  map_place(m, l);
  m->n++;
}

void lease_map_del(lease_map_t *m, int64_t id) {
  if (!m->n) return;
  size_t mask = m->cap - 1;
  size_t i = mix_id(id) & mask;
  for (;; i = (i + 1) & mask) {
    if (!m->slots[i]) return;
    if (m->slots[i]->id == id) break;
  }
  m->slots[i] = NULL;
  m->n--;
  for (size_t j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
    size_t home = mix_id(m->slots[j]->id) & mask;
    bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!in_range) {
      m->slots[i] = m->slots[j];
      m->slots[j] = NULL;
      i = j;
    }
  }
}

void lease_map_free(lease_map_t *m) {
  free(m->slots);
  memset(m, 0, sizeof(*m));
}

/* ---- expiry heap --------------------------------------------------------------------- */

/* Stores l at index i. */
static inline void heap_set(lease_heap_t *hp, size_t i, lease_t *l) {
  hp->h[i] = l;
  l->heap_idx = i;
}

/* Moves the entry at i up while it is smaller than its parent. */
static void sift_up(lease_heap_t *hp, size_t i) {
  lease_t *l = hp->h[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (hp->h[p]->heap_at <= l->heap_at) break;
    heap_set(hp, i, hp->h[p]);
    i = p;
  }
  heap_set(hp, i, l);
}

/* Moves the entry at i down while a child is smaller. */
static void sift_down(lease_heap_t *hp, size_t i) {
  lease_t *l = hp->h[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= hp->n) break;
    if (c + 1 < hp->n && hp->h[c + 1]->heap_at < hp->h[c]->heap_at) c++;
    if (hp->h[c]->heap_at >= l->heap_at) break;
    heap_set(hp, i, hp->h[c]);
    i = c;
  }
  heap_set(hp, i, l);
}

void lease_heap_update(lease_heap_t *hp, lease_t *l) {
  if (l->heap_idx == LEASE_NO_HEAP) {
    if (hp->n == hp->cap) {
      hp->cap = hp->cap ? hp->cap * 2 : 64;
      hp->h = xrealloc(hp->h, hp->cap * sizeof(*hp->h));
    }
    heap_set(hp, hp->n++, l);
    sift_up(hp, l->heap_idx);
    return;
  }
  size_t i = l->heap_idx;
  if (i > 0 && hp->h[(i - 1) / 2]->heap_at > l->heap_at)
    sift_up(hp, i);
  else
    sift_down(hp, i);
}

void lease_heap_remove(lease_heap_t *hp, lease_t *l) {
  size_t i = l->heap_idx;
  if (i == LEASE_NO_HEAP) return;
  l->heap_idx = LEASE_NO_HEAP;
  lease_t *last = hp->h[--hp->n];
  if (i == hp->n) return;
  heap_set(hp, i, last);
  if (i > 0 && hp->h[(i - 1) / 2]->heap_at > last->heap_at)
    sift_up(hp, i);
  else
    sift_down(hp, i);
}
