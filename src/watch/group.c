/* Watcher sets: watchers grouped by identical range, a hash table over the groups, and a
 * list of the range groups (see watch_int.h). */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "watch/watch_int.h"

int watch_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n ? memcmp(a, b, n) : 0;
  if (c) return c;
  return alen < blen ? -1 : alen > blen;
}

/* 64-bit hash of a byte string (FNV-1a over 8-byte words, then a final mix). */
static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n) {
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  while (n--) h = (h ^ *p++) * 0x100000001b3ULL;
  return h;
}

/* Hash of a group's identity (kind, key, end). */
static uint64_t group_hash(int kind, const uint8_t *key, size_t klen, const uint8_t *end, size_t elen) {
  uint64_t h = hash_bytes(0xcbf29ce484222325ULL ^ (uint64_t)kind, key, klen);
  if (kind == WK_RANGE) h = hash_bytes(h ^ 0x9e3779b97f4a7c15ULL, end, elen);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

void watch_set_init(wset_t *s) { memset(s, 0, sizeof(*s)); }

void watch_set_destroy(wset_t *s) {
  for (wgroup_t *g = s->all, *next; g; g = next) {
    next = g->lnext;
    free(g);
  }
  free(s->buckets);
  memset(s, 0, sizeof(*s));
}

/* Doubles the bucket array (or creates it). */
static void rehash(wset_t *s) {
  size_t nb = s->nbuckets ? s->nbuckets * 2 : 64;
  wgroup_t **b = xcalloc(nb, sizeof(*b));
  for (wgroup_t *g = s->all; g; g = g->lnext) {
    size_t i = g->hash & (nb - 1);
    g->hnext = b[i];
    b[i] = g;
  }
  free(s->buckets);
  s->buckets = b;
  s->nbuckets = nb;
}

/* Finds the group with this identity, or NULL. */
static wgroup_t *group_find(const wset_t *s, uint64_t h, int kind, const uint8_t *key, size_t klen,
                            const uint8_t *end, size_t elen) {
  if (!s->nbuckets) return NULL;
  for (wgroup_t *g = s->buckets[h & (s->nbuckets - 1)]; g; g = g->hnext) {
    if (g->hash != h || g->kind != kind || g->klen != klen) continue;
    if (klen && memcmp(g->key, key, klen)) continue;
    if (kind == WK_RANGE && (g->elen != elen || memcmp(g->end, end, elen))) continue;
    return g;
  }
  return NULL;
}

void watch_set_add(wset_t *s, watcher_t *w) {
  uint64_t h = group_hash(w->kind, w->key, w->klen, w->end, w->elen);
  wgroup_t *g = group_find(s, h, w->kind, w->key, w->klen, w->end, w->elen);
  if (!g) {
    if (s->ngroups + 1 > s->nbuckets) rehash(s);
    g = xcalloc(1, sizeof(*g) + w->klen + w->elen + 1);
    g->key = (uint8_t *)(g + 1);
    g->end = g->key + w->klen;
    if (w->klen) memcpy(g->key, w->key, w->klen);
    if (w->elen) memcpy(g->end, w->end, w->elen);
    g->klen = w->klen;
    g->elen = w->elen;
    g->kind = w->kind;
    g->hash = h;
    size_t i = h & (s->nbuckets - 1);
    g->hnext = s->buckets[i];
    s->buckets[i] = g;
    g->lnext = s->all;
    if (s->all) s->all->lprev = g;
    s->all = g;
    if (g->kind != WK_KEY) {
      g->rnext = s->ranges;
      if (s->ranges) s->ranges->rprev = g;
      s->ranges = g;
    }
    s->ngroups++;
  }
  w->g = g;
  w->gprev = NULL;
  w->gnext = g->head;
  if (g->head) g->head->gprev = w;
  g->head = w;
  g->n++;
  s->nwatchers++;
  if (w->prev_kv) s->nprev++;
}

void watch_set_del(wset_t *s, watcher_t *w) {
  wgroup_t *g = w->g;
  if (w->gprev)
    w->gprev->gnext = w->gnext;
  else
    g->head = w->gnext;
  if (w->gnext) w->gnext->gprev = w->gprev;
  w->g = NULL;
  w->gprev = w->gnext = NULL;
  s->nwatchers--;
  if (w->prev_kv) s->nprev--;
  if (--g->n) return;
  /* the group is empty: unlink it everywhere */
  wgroup_t **pp = &s->buckets[g->hash & (s->nbuckets - 1)];
  while (*pp != g) pp = &(*pp)->hnext;
  *pp = g->hnext;
  if (g->lprev)
    g->lprev->lnext = g->lnext;
  else
    s->all = g->lnext;
  if (g->lnext) g->lnext->lprev = g->lprev;
  if (g->kind != WK_KEY) {
    if (g->rprev)
      g->rprev->rnext = g->rnext;
    else
      s->ranges = g->rnext;
    if (g->rnext) g->rnext->rprev = g->rprev;
  }
  s->ngroups--;
  free(g);
}

/* True if key lies in the range group g. */
static bool range_has(const wgroup_t *g, const uint8_t *key, size_t klen) {
  if (watch_key_cmp(key, klen, g->key, g->klen) < 0) return false;
  return g->kind == WK_FROM || watch_key_cmp(key, klen, g->end, g->elen) < 0;
}

void watch_set_match(wset_t *s, const uint8_t *key, size_t klen, void (*fn)(void *, wgroup_t *), void *ctx) {
  if (!s->nwatchers) return;
  wgroup_t *g = group_find(s, group_hash(WK_KEY, key, klen, NULL, 0), WK_KEY, key, klen, NULL, 0);
  if (g) fn(ctx, g);
  for (g = s->ranges; g; g = g->rnext)
    if (range_has(g, key, klen)) fn(ctx, g);
}

bool watch_set_contains(wset_t *s, const uint8_t *key, size_t klen) {
  if (!s->nwatchers) return false;
  if (group_find(s, group_hash(WK_KEY, key, klen, NULL, 0), WK_KEY, key, klen, NULL, 0)) return true;
  for (wgroup_t *g = s->ranges; g; g = g->rnext)
    if (range_has(g, key, klen)) return true;
  return false;
}
