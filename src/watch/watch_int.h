/* Private to src/watch: the watcher struct and watcher sets (etcd's watcherGroup).
 *
 * A set groups its watchers by identical (key, range_end): one group per distinct range,
 * found through a hash table, so many watchers on one key or prefix cost one lookup or
 * one range comparison per event, however many there are. Single-key groups are found by
 * hashing the event's key; range groups are additionally kept in a list that each event
 * is compared against (one comparison per distinct range). */
#ifndef CETCD_WATCH_INT_H
#define CETCD_WATCH_INT_H

#include "watch/watch.h"

enum wkind { WK_KEY = 0, WK_RANGE = 1, WK_FROM = 2 /* every key >= key */ };
enum wstate { WS_SYNCED = 0, WS_UNSYNCED = 1, WS_PAUSED = 2, WS_DEAD = 3 };

typedef struct wgroup wgroup_t;

struct watcher {
  watch_hub_t *hub;
  wgroup_t *g;              /* group in the synced or unsynced set; NULL when paused */
  watcher_t *gprev, *gnext; /* within the group */
  watcher_t *aprev, *anext; /* every live watcher of the hub */
  watcher_t *znext;         /* cancelled during a dispatch, freed after it */
  int state;                /* enum wstate */
  int64_t min_rev;          /* next revision to deliver */
  int64_t prev_min;         /* min_rev before the running catch-up step */
  int filters;
  bool prev_kv;
  watch_events_fn on_events;
  watch_compacted_fn on_compacted;
  void *ctx;
  /* dispatch scratch: the events gathered for this watcher in the current dispatch */
  uint64_t seq;
  const Mvccpb__Event **ebuf;
  size_t en, ecap;
  uint8_t kind; /* enum wkind */
  uint32_t klen, elen;
  uint8_t *key, *end; /* one allocation after the struct */
};

struct wgroup {
  wgroup_t *hnext;         /* hash chain */
  wgroup_t *rprev, *rnext; /* range groups only */
  wgroup_t *lprev, *lnext; /* every group of the set */
  watcher_t *head;
  size_t n;
  uint64_t hash;
  uint8_t kind;
  uint32_t klen, elen;
  uint8_t *key, *end; /* copies, in the same allocation as the group */
};

typedef struct wset {
  wgroup_t **buckets;
  size_t nbuckets, ngroups, nwatchers;
  wgroup_t *ranges; /* range and from-key groups */
  wgroup_t *all;    /* every group */
  size_t nprev;     /* watchers wanting prev_kv */
} wset_t;

/* Initializes an empty set. */
void watch_set_init(wset_t *s);
/* Frees the set's groups (not the watchers). */
void watch_set_destroy(wset_t *s);
/* Adds w (not in any set) to s. */
void watch_set_add(wset_t *s, watcher_t *w);
/* Removes w from s (it must be in it). */
void watch_set_del(wset_t *s, watcher_t *w);
/* Calls fn(ctx, group) for every group holding key (exact-key group, then ranges). */
void watch_set_match(wset_t *s, const uint8_t *key, size_t klen, void (*fn)(void *, wgroup_t *), void *ctx);
/* True if some watcher of s covers key. */
bool watch_set_contains(wset_t *s, const uint8_t *key, size_t klen);
/* memcmp order of byte strings, a prefix first. */
int watch_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
