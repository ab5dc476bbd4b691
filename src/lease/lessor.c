/* The lessor: grant, revoke, checkpoint (applied from the log), attach/detach (mvcc
 * hooks), renew and lookups (leader side), expiry decisions on an injected clock. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "lease.pb-c.h"
#include "lease/lease_int.h"
#include "mvcc/mvcc.h"

#define LEASE_BUCKET "lease"

/* ---- clock and setup ----------------------------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds. */
static uint64_t mono_ms(void *ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t lease_min_ttl(uint32_t election_ms, uint32_t heartbeat_ms) {
  if (!heartbeat_ms) return 1;
  uint64_t ticks = election_ms / heartbeat_ms;
  uint64_t ms = (3 * ticks) / 2 * heartbeat_ms;
  return (int64_t)((ms + 999) / 1000);
}

lessor_t *lease_new(const lease_opts_t *opts) {
  lessor_t *le = xcalloc(1, sizeof(*le));
  if (opts) le->opts = *opts;
  if (!le->opts.clock) le->opts.clock = mono_ms;
  if (!le->opts.retry_ms) le->opts.retry_ms = 3000;
  return le;
}

/* Frees one lease and its keys. */
static void lease_destroy(lease_t *l) {
  lease_keyset_free(&l->keys);
  free(l);
}

void lease_free(lessor_t *le) {
  if (!le) return;
  for (size_t i = 0; i < le->map.cap; i++)
    if (le->map.slots[i]) lease_destroy(le->map.slots[i]);
  lease_map_free(&le->map);
  free(le->heap.h);
  free(le);
}

void lease_set_store(lessor_t *le, mvcc_store_t *s) { le->store = s; }

uint64_t lease_now(const lessor_t *le) { return le->opts.clock(le->opts.clock_ctx); }

bool lease_is_primary(const lessor_t *le) { return le->primary; }

/* A new lease in the map (not granted: the caller sets the fields). */
static lease_t *lease_add(lessor_t *le, int64_t id) {
  lease_t *l = xcalloc(1, sizeof(*l));
  l->id = id;
  l->expiry_ms = l->heap_at = LEASE_FOREVER;
  l->heap_idx = LEASE_NO_HEAP;
  lease_map_put(&le->map, l);
  return l;
}

/* Removes l from the map and the heap and frees it. */
static void lease_remove(lessor_t *le, lease_t *l) {
  lease_heap_remove(&le->heap, l);
  lease_map_del(&le->map, l->id);
  if (!l->placeholder) le->n_granted--;
  lease_destroy(l);
}

/* etcd's RemainingTTL: the checkpointed value if set, else the TTL. */
static int64_t remaining_ttl(const lease_t *l) { return l->remaining_ttl > 0 ? l->remaining_ttl : l->ttl; }

/* Sets l's expiry to now + extend + its remaining TTL and queues it. */
static void refresh(lessor_t *le, lease_t *l, uint64_t now, uint64_t extend_ms) {
  l->expiry_ms = now + extend_ms + (uint64_t)remaining_ttl(l) * 1000;
  l->heap_at = l->expiry_ms;
  l->revoking = false;
  lease_heap_update(&le->heap, l);
}

/* The bucket key of a lease: its id as 8 big-endian bytes. */
static void id_key(int64_t id, uint8_t k[8]) {
  for (int i = 0; i < 8; i++) k[i] = (uint8_t)((uint64_t)id >> (56 - 8 * i));
}

/* Writes l's record to the store's lease bucket (no store: nothing). */
static int persist(lessor_t *le, const lease_t *l) {
  if (!le->store) return 0;
  Leasepb__Lease pb = LEASEPB__LEASE__INIT;
  pb.id = l->id;
  pb.ttl = l->ttl;
  pb.remainingttl = l->remaining_ttl;
  uint8_t buf[40], k[8];
  size_t n = leasepb__lease__pack(&pb, buf);
  id_key(l->id, k);
  return mvcc_bucket_put(le->store, LEASE_BUCKET, k, sizeof(k), buf, n);
}

/* ---- restore, promote, demote -------------------------------------------------------- */

/* Bucket visitor: one persisted lease. */
static int restore_one(void *ctx, const void *key, size_t klen, const void *val, size_t vlen) {
  lessor_t *le = ctx;
  if (klen != 8) {
    LOGE("msg=\"bad lease bucket key\" length=%zu", klen);
    return CETCD_ECORRUPT;
  }
  Leasepb__Lease *pb = leasepb__lease__unpack(NULL, vlen, val);
  if (!pb) {
    LOGE("msg=\"cannot decode a stored lease\"");
    return CETCD_ECORRUPT;
  }
  int64_t id = pb->id;
  int64_t ttl = pb->ttl < le->opts.min_ttl ? le->opts.min_ttl : pb->ttl;
  int64_t rem = pb->remainingttl;
  leasepb__lease__free_unpacked(pb, NULL);
  const uint8_t *kb = key;
  int64_t kid = 0;
  for (int i = 0; i < 8; i++) kid = (int64_t)((uint64_t)kid << 8 | kb[i]);
  if (kid != id)
    LOGW("msg=\"lease bucket key and record disagree\" key=%lld id=%lld", (long long)kid, (long long)id);
  lease_t *l = lease_map_get(&le->map, id);
  if (!l) {
    l = lease_add(le, id);
    l->placeholder = true;
  }
  if (l->placeholder) le->n_granted++;
  l->placeholder = false;
  l->ttl = ttl;
  l->remaining_ttl = rem;
  return 0;
}

int lease_restore(lessor_t *le, mvcc_store_t *s) {
  le->store = s;
  /* Mark every entry so far as a placeholder; the bucket says which are real. */
  for (size_t i = 0; i < le->map.cap; i++) {
    lease_t *l = le->map.slots[i];
    if (l && !l->placeholder) {
      l->placeholder = true;
      le->n_granted--;
    }
  }
  int rc = mvcc_bucket_foreach(s, LEASE_BUCKET, restore_one, le);
  if (rc) return rc;
  for (size_t i = 0; i < le->map.cap;) {
    lease_t *l = le->map.slots[i];
    if (l && l->placeholder) {
      LOGW("msg=\"keys attached to an unknown lease stay without it\" lease-id=%016llx keys=%zu",
           (unsigned long long)l->id, l->keys.n);
      lease_remove(le, l);
      continue; /* backward shift may have moved another entry into slot i */
    }
    i++;
  }
  if (le->n_granted) LOGI("msg=\"restored leases\" count=%zu", le->n_granted);
  return 0;
}

void lease_reset(lessor_t *le) {
  for (size_t i = 0; i < le->map.cap; i++)
    if (le->map.slots[i]) lease_destroy(le->map.slots[i]);
  lease_map_free(&le->map);
  le->heap.n = 0;
  le->n_granted = 0;
  le->store = NULL;
}

/* qsort comparator: leases by expiry time. */
static int cmp_expiry(const void *a, const void *b) {
  const lease_t *x = *(lease_t *const *)a, *y = *(lease_t *const *)b;
  return x->expiry_ms < y->expiry_ms ? -1 : x->expiry_ms > y->expiry_ms;
}

/* After a promotion with at least LEASE_REVOKE_RATE leases: pushes back expiries that pile
 * up in the same second, so at most 3/4 of the revoke rate expire per second (etcd's
 * Promote does the same; a new leader must not revoke a backlog all at once). */
static void spread_expiries(lessor_t *le, uint64_t now, uint64_t extend_ms) {
  lease_t **ls = xmalloc(le->n_granted * sizeof(*ls));
  size_t n = 0;
  for (size_t i = 0; i < le->map.cap; i++) {
    lease_t *l = le->map.slots[i];
    if (l && !l->placeholder) ls[n++] = l;
  }
  qsort(ls, n, sizeof(*ls), cmp_expiry);
  const uint64_t target = (3 * LEASE_REVOKE_RATE) / 4; /* expiries per second */
  uint64_t base = ls[0]->expiry_ms - now, next = base + 1000, expires = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t rem = ls[i]->expiry_ms - now;
    if (rem > next) {
      base = rem;
      next = base + 1000;
      expires = 1;
      continue;
    }
    if (++expires <= target) continue;
    /* leases n seconds past the window's start are pushed back n seconds less */
    int64_t delay = (int64_t)(1000 * expires / target) - (int64_t)(rem - base);
    if (delay < 0) delay = 0;
    next = base + (uint64_t)delay;
    refresh(le, ls[i], now, (uint64_t)delay + extend_ms);
  }
  free(ls);
}

void lease_promote(lessor_t *le, uint64_t extend_ms) {
  le->primary = true;
  uint64_t now = lease_now(le);
  for (size_t i = 0; i < le->map.cap; i++) {
    lease_t *l = le->map.slots[i];
    if (l && !l->placeholder) refresh(le, l, now, extend_ms);
  }
  if (le->n_granted >= LEASE_REVOKE_RATE) spread_expiries(le, now, extend_ms);
}

void lease_demote(lessor_t *le) {
  le->primary = false;
  for (size_t i = 0; i < le->map.cap; i++) {
    lease_t *l = le->map.slots[i];
    if (!l) continue;
    l->expiry_ms = l->heap_at = LEASE_FOREVER;
    l->revoking = false;
    l->heap_idx = LEASE_NO_HEAP;
  }
  le->heap.n = 0;
}

/* ---- apply --------------------------------------------------------------------------- */

int lease_grant(lessor_t *le, int64_t id, int64_t ttl, int64_t *granted_ttl) {
  if (id == 0) return CETCD_ELEASENOTFOUND;
  if (ttl > LEASE_MAX_TTL) return CETCD_ETTLTOOLARGE;
  lease_t *l = lease_map_get(&le->map, id);
  if (l && !l->placeholder) return CETCD_ELEASEEXISTS;
  if (ttl < le->opts.min_ttl) ttl = le->opts.min_ttl;
  lease_t tmp = {.id = id, .ttl = ttl};
  int rc = persist(le, &tmp);
  if (rc) return rc;
  if (!l) l = lease_add(le, id);
  l->placeholder = false;
  l->ttl = ttl;
  l->remaining_ttl = 0;
  le->n_granted++;
  if (le->primary) refresh(le, l, lease_now(le), 0);
  if (granted_ttl) *granted_ttl = ttl;
  return 0;
}

/* qsort comparator: keys in byte order. */
static int cmp_keys(const void *a, const void *b) {
  const ProtobufCBinaryData *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = n ? memcmp(x->data, y->data, n) : 0;
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* Fills arr (n = set size) with views of the set's keys, sorted. */
static void sorted_views(const lease_keyset_t *ks, ProtobufCBinaryData *arr) {
  size_t j = 0;
  for (size_t i = 0; i < ks->cap; i++) {
    lease_key_t *k = ks->slots[i];
    if (!k) continue;
    arr[j].data = k->data;
    arr[j].len = k->len;
    j++;
  }
  qsort(arr, j, sizeof(*arr), cmp_keys);
}

int lease_revoke(lessor_t *le, int64_t id) {
  lease_t *l = lease_map_get(&le->map, id);
  if (!l || l->placeholder) return CETCD_ELEASENOTFOUND;
  /* Take the lease out first: the detach hooks the deletes trigger then find nothing. */
  lease_heap_remove(&le->heap, l);
  lease_map_del(&le->map, id);
  le->n_granted--;
  int rc = 0;
  if (le->store) {
    size_t n = l->keys.n;
    if (n) {
      ProtobufCBinaryData stackbuf[16];
      ProtobufCBinaryData *keys = n <= 16 ? stackbuf : xmalloc(n * sizeof(*keys));
      sorted_views(&l->keys, keys);
      rc = mvcc_delete_keys(le->store, keys, n, NULL);
      if (keys != stackbuf) free(keys);
    }
    uint8_t k[8];
    id_key(id, k);
    if (!rc) rc = mvcc_bucket_del(le->store, LEASE_BUCKET, k, sizeof(k));
  }
  lease_destroy(l);
  return rc;
}

int lease_checkpoint(lessor_t *le, int64_t id, int64_t remaining) {
  lease_t *l = lease_map_get(&le->map, id);
  if (l && !l->placeholder) l->remaining_ttl = remaining;
  return 0;
}

/* ---- mvcc hooks ---------------------------------------------------------------------- */

bool lease_exists(const lessor_t *le, int64_t id) {
  const lease_t *l = lease_map_get(&le->map, id);
  return l && !l->placeholder;
}

void lease_attach(lessor_t *le, int64_t id, const uint8_t *key, size_t klen) {
  lease_t *l = lease_map_get(&le->map, id);
  if (!l) {
    if (le->store) return; /* restored already: a put checks lease_exists first */
    l = lease_add(le, id);
    l->placeholder = true;
  }
  lease_keyset_add(&l->keys, key, klen);
}

void lease_detach(lessor_t *le, int64_t id, const uint8_t *key, size_t klen) {
  lease_t *l = lease_map_get(&le->map, id);
  if (l) lease_keyset_del(&l->keys, key, klen);
}

/* ---- leader side --------------------------------------------------------------------- */

int lease_renew(lessor_t *le, int64_t id, int64_t *ttl) {
  if (!le->primary) return CETCD_ENOLEADER;
  lease_t *l = lease_map_get(&le->map, id);
  if (!l || l->placeholder) return CETCD_ELEASENOTFOUND;
  uint64_t now = lease_now(le);
  if (now >= l->expiry_ms) return CETCD_ELEASENOTFOUND; /* expired: its revoke is coming */
  l->remaining_ttl = 0;
  refresh(le, l, now, 0);
  if (ttl) *ttl = l->ttl;
  return 0;
}

int lease_lookup(const lessor_t *le, int64_t id, lease_info_t *info) {
  const lease_t *l = lease_map_get(&le->map, id);
  if (!l || l->placeholder) return CETCD_ELEASENOTFOUND;
  if (l->expiry_ms == LEASE_FOREVER) {
    info->ttl_remaining = INT64_MAX / 1000000000; /* etcd: math.MaxInt64 nanoseconds */
  } else {
    int64_t ms = (int64_t)(l->expiry_ms - lease_now(le));
    info->ttl_remaining = ms / 1000; /* truncated toward zero, like int64(d.Seconds()) */
  }
  info->granted_ttl = l->ttl;
  info->n_keys = l->keys.n;
  return 0;
}

int lease_keys(const lessor_t *le, int64_t id, arena_t *a, ProtobufCBinaryData **keys, size_t *n) {
  const lease_t *l = lease_map_get(&le->map, id);
  if (!l || l->placeholder) return CETCD_ELEASENOTFOUND;
  *n = l->keys.n;
  *keys = NULL;
  if (!*n) return 0;
  ProtobufCBinaryData *arr = arena_alloc(a, *n * sizeof(*arr));
  sorted_views(&l->keys, arr);
  for (size_t i = 0; i < *n; i++) arr[i].data = arena_memdup(a, arr[i].data, arr[i].len);
  *keys = arr;
  return 0;
}

size_t lease_count(const lessor_t *le) { return le->n_granted; }

size_t lease_list(const lessor_t *le, int64_t *ids, size_t max) {
  size_t j = 0;
  for (size_t i = 0; i < le->map.cap && j < max; i++) {
    const lease_t *l = le->map.slots[i];
    if (l && !l->placeholder) ids[j++] = l->id;
  }
  return j;
}

/* ---- expiry -------------------------------------------------------------------------- */

size_t lease_find_expired(lessor_t *le, int64_t *ids, size_t max) {
  if (!le->primary) return 0;
  uint64_t now = lease_now(le);
  size_t n = 0;
  /* Each visited entry moves to now + retry_ms, so the loop ends. */
  while (n < max) {
    lease_t *l = lease_heap_top(&le->heap);
    if (!l || l->heap_at > now) break;
    l->heap_at = now + le->opts.retry_ms;
    lease_heap_update(&le->heap, l);
    if (l->revoking) continue; /* still in flight: look again after another retry period */
    l->revoking = true;
    ids[n++] = l->id;
  }
  return n;
}

void lease_revoke_failed(lessor_t *le, int64_t id) {
  lease_t *l = lease_map_get(&le->map, id);
  if (l) l->revoking = false;
}

uint64_t lease_next_expiry_in(const lessor_t *le) {
  const lease_t *l = lease_heap_top(&le->heap);
  if (!l) return UINT64_MAX;
  uint64_t now = lease_now(le);
  return l->heap_at <= now ? 0 : l->heap_at - now;
}

/* ---- ids ----------------------------------------------------------------------------- */

#define IDGEN_TS_BITS 40
#define IDGEN_CNT_BITS 8
#define IDGEN_SUFFIX_BITS (IDGEN_TS_BITS + IDGEN_CNT_BITS)

void lease_idgen_init(lease_idgen_t *g, uint64_t member_id, uint64_t unix_ms) {
  g->prefix = (member_id & 0xffff) << IDGEN_SUFFIX_BITS;
  g->suffix = (unix_ms & ((1ULL << IDGEN_TS_BITS) - 1)) << IDGEN_CNT_BITS;
}

int64_t lease_idgen_next(lease_idgen_t *g) {
  for (;;) {
    g->suffix++;
    uint64_t id = g->prefix | (g->suffix & ((1ULL << IDGEN_SUFFIX_BITS) - 1));
    id &= (1ULL << 63) - 1;
    if (id) return (int64_t)id;
  }
}
