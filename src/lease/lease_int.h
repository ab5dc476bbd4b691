/* Private to lease/: the lessor's structures and its containers (an id → lease hash map,
 * a per-lease key set, an expiry min-heap). */
#ifndef CETCD_LEASE_INT_H
#define CETCD_LEASE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lease/lease.h"

/* One attached key (owned by its set). */
typedef struct lease_key {
  uint64_t hash;
  size_t len;
  uint8_t data[];
} lease_key_t;

/* Open-addressing set of keys (linear probing, backward-shift deletion). */
typedef struct lease_keyset {
  lease_key_t **slots;
  size_t cap; /* 0 or a power of two */
  size_t n;
} lease_keyset_t;

#define LEASE_FOREVER UINT64_MAX
#define LEASE_NO_HEAP SIZE_MAX

/* One lease. */
typedef struct lease {
  int64_t id;
  int64_t ttl;           /* granted TTL in seconds (after the minimum) */
  int64_t remaining_ttl; /* checkpointed remaining TTL, 0 = unset */
  uint64_t expiry_ms;    /* LEASE_FOREVER while not primary */
  uint64_t heap_at;      /* heap ordering key: expiry, or the retry time while revoking */
  size_t heap_idx;       /* LEASE_NO_HEAP when not in the heap */
  bool revoking;         /* a revoke proposal is in flight */
  bool placeholder;      /* created by an open-time attach; not granted (yet) */
  lease_keyset_t keys;
} lease_t;

/* Hash map id → lease (open addressing, linear probing, backward-shift deletion). */
typedef struct lease_map {
  lease_t **slots;
  size_t cap; /* 0 or a power of two */
  size_t n;
} lease_map_t;

/* Min-heap of leases by heap_at. */
typedef struct lease_heap {
  lease_t **h;
  size_t n, cap;
} lease_heap_t;

struct lessor {
  lease_opts_t opts;
  mvcc_store_t *store;
  bool primary;
  lease_map_t map;
  lease_heap_t heap;
  size_t n_granted; /* map entries that are not placeholders */
};

/* Hash of a key's bytes. */
uint64_t lease_hash_bytes(const uint8_t *p, size_t n);

/* Finds key in set, or NULL. */
lease_key_t *lease_keyset_find(const lease_keyset_t *s, const uint8_t *key, size_t klen, uint64_t h);
/* Adds key (copied) unless present. Returns true if added. */
bool lease_keyset_add(lease_keyset_t *s, const uint8_t *key, size_t klen);
/* Removes key if present. Returns true if removed. */
bool lease_keyset_del(lease_keyset_t *s, const uint8_t *key, size_t klen);
/* Frees every key and the slots. */
void lease_keyset_free(lease_keyset_t *s);

/* Finds lease id, or NULL. */
lease_t *lease_map_get(const lease_map_t *m, int64_t id);
/* Inserts l (its id must not be present). */
void lease_map_put(lease_map_t *m, lease_t *l);
/* Removes lease id (no-op if absent). */
void lease_map_del(lease_map_t *m, int64_t id);
/* Frees the slots (not the leases). */
void lease_map_free(lease_map_t *m);

/* Inserts l or moves it to its new heap_at. */
void lease_heap_update(lease_heap_t *hp, lease_t *l);
/* Removes l if it is in the heap. */
void lease_heap_remove(lease_heap_t *hp, lease_t *l);
/* The lease with the smallest heap_at, or NULL. */
static inline lease_t *lease_heap_top(const lease_heap_t *hp) { return hp->n ? hp->h[0] : NULL; }

#endif
