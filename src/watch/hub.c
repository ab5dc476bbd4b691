/* The watch hub: live fan-out to synced watchers, catch-up from history for unsynced ones
 * (etcd's watchableStore, single-threaded).
 *
 * A watcher is in one of three places: the synced set (it has seen every revision up to
 * the store's; live events reach it from watch_hub_notify), the unsynced set (its next
 * revision, min_rev, is in the past: a loop-idle step reads history in bounded chunks and
 * moves it to synced once it reaches the store's revision), or nowhere (paused: nothing
 * is queued for it; on resume it joins the unsynced set and catches up from history).
 *
 * Callbacks may cancel, pause or add watchers. While a dispatch runs, cancelled watchers
 * are unlinked at once but freed only when the outermost dispatch ends, so the dispatch
 * can still look at them. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "watch/watch_int.h"

enum {
  SYNC_SCAN_REVS = 100000, /* revisions scanned per catch-up step (bounds its time) */
  SYNC_RETRY_MS = 100,     /* after a failed history read */
};

struct watch_hub {
  uv_loop_t *loop;
  mvcc_store_t *store;
  wset_t synced, unsynced;
  watcher_t *all; /* every live watcher */
  size_t count;
  size_t batch_bytes; /* response size a catch-up batch stays within */
  int depth;          /* dispatches running (callbacks may nest watch calls) */
  watcher_t *zombies;
  uint64_t seq;   /* dispatch sequence, for watcher->seq */
  bool notifying; /* inside watch_hub_notify's delivery */
  int64_t notify_rev;
  watcher_t **touched; /* watchers with events in the current dispatch */
  size_t ntouched, touched_cap;
  Mvccpb__Event *stripped; /* notify: copies of the events without prev_kv */
  size_t stripped_cap;
  uv_idle_t idle; /* runs catch-up steps while unsynced watchers wait */
  uv_timer_t retry;
  bool idle_on, freeing;
  int closing;
};

/* ---- helpers ---- */

/* True if the watcher's filters drop ev. */
static inline bool filtered(const watcher_t *w, const Mvccpb__Event *ev) {
  if (!w->filters) return false;
  if (ev->type == MVCCPB__EVENT__EVENT_TYPE__PUT) return w->filters & WATCH_FILTER_NOPUT;
  return w->filters & WATCH_FILTER_NODELETE;
}

/* Appends w to the dispatch's touched list. */
static void touch(watch_hub_t *h, watcher_t *w) {
  if (h->ntouched == h->touched_cap) {
    h->touched_cap = h->touched_cap ? h->touched_cap * 2 : 64;
    h->touched = xrealloc(h->touched, h->touched_cap * sizeof(*h->touched));
  }
  h->touched[h->ntouched++] = w;
}

/* Appends ev to the watcher's batch for this dispatch, registering it as touched. */
static void gather(watch_hub_t *h, watcher_t *w, const Mvccpb__Event *ev) {
  if (w->seq != h->seq) {
    w->seq = h->seq;
    w->en = 0;
    touch(h, w);
  }
  if (w->en == w->ecap) {
    w->ecap = w->ecap ? w->ecap * 2 : 4;
    w->ebuf = xrealloc(w->ebuf, w->ecap * sizeof(*w->ebuf));
  }
  w->ebuf[w->en++] = ev;
}

/* Frees a watcher's memory. */
static void watcher_free(watcher_t *w) {
  free(w->ebuf);
  free(w);
}

/* Ends a dispatch; the outermost one frees the watchers cancelled meanwhile. */
static void dispatch_end(watch_hub_t *h) {
  if (--h->depth > 0) return;
  while (h->zombies) {
    watcher_t *w = h->zombies;
    h->zombies = w->znext;
    watcher_free(w);
  }
}

/* Unlinks w from wherever it is (sets, the all list) and marks it dead. */
static void watcher_unlink(watcher_t *w) {
  watch_hub_t *h = w->hub;
  if (w->state == WS_SYNCED)
    watch_set_del(&h->synced, w);
  else if (w->state == WS_UNSYNCED)
    watch_set_del(&h->unsynced, w);
  if (w->state == WS_DEAD) return;
  w->state = WS_DEAD;
  if (w->aprev)
    w->aprev->anext = w->anext;
  else
    h->all = w->anext;
  if (w->anext) w->anext->aprev = w->aprev;
  h->count--;
}

/* Frees w now, or after the running dispatch. */
static void watcher_release(watcher_t *w) {
  watch_hub_t *h = w->hub;
  if (h->depth > 0) {
    w->znext = h->zombies;
    h->zombies = w;
  } else {
    watcher_free(w);
  }
}

static void on_idle(uv_idle_t *idle);

/* Makes sure a catch-up step runs soon. */
static void schedule_sync(watch_hub_t *h) {
  if (h->idle_on || h->freeing || !h->unsynced.nwatchers) return;
  h->idle_on = true;
  uv_idle_start(&h->idle, on_idle);
}

/* Puts a paused or new watcher whose next revision may be in the past where it belongs. */
static void place(watch_hub_t *h, watcher_t *w) {
  if (w->min_rev > mvcc_rev(h->store)) {
    w->state = WS_SYNCED;
    watch_set_add(&h->synced, w);
  } else {
    w->state = WS_UNSYNCED;
    watch_set_add(&h->unsynced, w);
    schedule_sync(h);
  }
}

/* ---- lifecycle ---- */

watch_hub_t *watch_hub_new(uv_loop_t *loop, mvcc_store_t *store) {
  watch_hub_t *h = xcalloc(1, sizeof(*h));
  h->loop = loop;
  h->store = store;
  h->batch_bytes = WATCH_BATCH_BYTES_DEFAULT;
  watch_set_init(&h->synced);
  watch_set_init(&h->unsynced);
  uv_idle_init(loop, &h->idle);
  uv_timer_init(loop, &h->retry);
  h->idle.data = h->retry.data = h;
  uv_unref((uv_handle_t *)&h->retry);
  return h;
}

/* Close callback of the hub's handles: the last one frees the hub. */
static void on_handle_closed(uv_handle_t *hd) {
  watch_hub_t *h = hd->data;
  if (--h->closing == 0) free(h);
}

void watch_hub_free(watch_hub_t *h) {
  if (!h) return;
  h->freeing = true;
  for (watcher_t *w = h->all, *next; w; w = next) {
    next = w->anext;
    watcher_free(w);
  }
  h->all = NULL;
  while (h->zombies) {
    watcher_t *w = h->zombies;
    h->zombies = w->znext;
    watcher_free(w);
  }
  watch_set_destroy(&h->synced);
  watch_set_destroy(&h->unsynced);
  free(h->touched);
  free(h->stripped);
  h->closing = 2;
  uv_close((uv_handle_t *)&h->idle, on_handle_closed);
  uv_close((uv_handle_t *)&h->retry, on_handle_closed);
}

size_t watch_count(const watch_hub_t *h) { return h->count; }

bool watch_hub_wants_prev(const watch_hub_t *h) { return h->synced.nprev > 0; }

void watch_hub_set_batch_bytes(watch_hub_t *h, size_t bytes) {
  h->batch_bytes = bytes ? bytes : WATCH_BATCH_BYTES_DEFAULT;
}

/* ---- watchers ---- */

watcher_t *watch_add(watch_hub_t *h, const watch_opts_t *o) {
  if (!o || !o->on_events || (o->key_len && !o->key) || (o->range_end_len && !o->range_end)) return NULL;
  int kind = WK_KEY;
  size_t elen = 0;
  if (o->range_end_len == 1 && o->range_end[0] == 0) {
    kind = WK_FROM;
  } else if (o->range_end_len) {
    if (watch_key_cmp(o->key, o->key_len, o->range_end, o->range_end_len) >= 0) return NULL;
    kind = WK_RANGE;
    elen = o->range_end_len;
  }
  watcher_t *w = xcalloc(1, sizeof(*w) + o->key_len + elen + 1);
  w->hub = h;
  w->key = (uint8_t *)(w + 1);
  w->end = w->key + o->key_len;
  if (o->key_len) memcpy(w->key, o->key, o->key_len);
  if (elen) memcpy(w->end, o->range_end, elen);
  w->klen = (uint32_t)o->key_len;
  w->elen = (uint32_t)elen;
  w->kind = (uint8_t)kind;
  w->filters = o->filters;
  w->prev_kv = o->prev_kv;
  w->on_events = o->on_events;
  w->on_compacted = o->on_compacted;
  w->ctx = o->ctx;
  int64_t cur = mvcc_rev(h->store);
  w->min_rev = o->start_rev > 0 ? o->start_rev : cur + 1;
  w->anext = h->all;
  if (h->all) h->all->aprev = w;
  h->all = w;
  h->count++;
  place(h, w);
  return w;
}

void watch_cancel(watcher_t *w) {
  if (!w || w->state == WS_DEAD) return;
  watcher_unlink(w);
  watcher_release(w);
}

void watch_hub_restore(watch_hub_t *h, int64_t old_rev) {
  for (watcher_t *w = h->all; w; w = w->anext) {
    if (w->state != WS_SYNCED) continue;
    if (w->min_rev < old_rev + 1) w->min_rev = old_rev + 1;
    watch_set_del(&h->synced, w);
    place(h, w);
  }
}

void watch_set_paused(watcher_t *w, bool paused) {
  watch_hub_t *h = w->hub;
  if (paused) {
    if (w->state == WS_SYNCED) {
      /* a watcher still waiting for the revision being delivered has not seen it */
      int64_t seen = (h->notifying && w->seq == h->seq) ? h->notify_rev - 1 : mvcc_rev(h->store);
      if (w->min_rev < seen + 1) w->min_rev = seen + 1;
      watch_set_del(&h->synced, w);
      w->state = WS_PAUSED;
    } else if (w->state == WS_UNSYNCED) {
      watch_set_del(&h->unsynced, w);
      w->state = WS_PAUSED;
    }
  } else if (w->state == WS_PAUSED) {
    place(h, w);
  }
}

int64_t watch_progress_rev(const watcher_t *w) {
  int64_t cur = mvcc_rev(w->hub->store);
  if (w->state == WS_SYNCED) return cur;
  return w->min_rev - 1 < cur ? w->min_rev - 1 : cur;
}

bool watch_is_synced(const watcher_t *w) { return w->state == WS_SYNCED; }

/* ---- live events ---- */

typedef struct notify_ctx {
  watch_hub_t *h;
  int64_t rev;
  const Mvccpb__Event *ev;    /* with prev_kv */
  const Mvccpb__Event *strip; /* without */
} notify_ctx_t;

/* watch_set_match callback for a live event: gathers it for the group's watchers. */
static void notify_group(void *arg, wgroup_t *g) {
  notify_ctx_t *c = arg;
  for (watcher_t *w = g->head; w; w = w->gnext) {
    if (w->min_rev > c->rev || filtered(w, c->ev)) continue;
    gather(c->h, w, w->prev_kv ? c->ev : c->strip);
  }
}

void watch_hub_notify(watch_hub_t *h, int64_t rev, const Mvccpb__Event *const *events, size_t n) {
  if (!h || !h->synced.nwatchers || !n) return;
  /* events without prev_kv for the watchers that did not ask for it */
  if (n > h->stripped_cap) {
    h->stripped_cap = n;
    h->stripped = xrealloc(h->stripped, n * sizeof(*h->stripped));
  }
  h->depth++;
  h->seq++;
  h->ntouched = 0;
  notify_ctx_t c = {h, rev, NULL, NULL};
  for (size_t i = 0; i < n; i++) {
    h->stripped[i] = *events[i];
    h->stripped[i].prev_kv = NULL;
    c.ev = events[i];
    c.strip = &h->stripped[i];
    watch_set_match(&h->synced, events[i]->kv->key.data, events[i]->kv->key.len, notify_group, &c);
  }
  h->notifying = true;
  h->notify_rev = rev;
  for (size_t i = 0; i < h->ntouched; i++) {
    watcher_t *w = h->touched[i];
    if (w->state != WS_SYNCED || w->seq != h->seq) continue; /* cancelled or paused meanwhile */
    w->seq = 0;
    w->min_rev = rev + 1;
    w->on_events(w->ctx, w, w->ebuf, w->en, rev);
  }
  h->notifying = false;
  h->ntouched = 0;
  dispatch_end(h);
}

/* ---- catch-up ---- */

/* mvcc_events_range key filter: keys some unsynced watcher covers. */
static bool sync_match(void *ctx, const uint8_t *key, size_t klen) {
  return watch_set_contains(&((watch_hub_t *)ctx)->unsynced, key, klen);
}

typedef struct sync_ctx {
  watch_hub_t *h;
  int64_t rev;
  const Mvccpb__Event *ev;
  Mvccpb__Event *strip; /* made on first need */
  arena_t *arena;
} sync_ctx_t;

/* watch_set_match callback for a history event. */
static void sync_group(void *arg, wgroup_t *g) {
  sync_ctx_t *c = arg;
  for (watcher_t *w = g->head; w; w = w->gnext) {
    if (w->min_rev > c->rev || filtered(w, c->ev)) continue;
    const Mvccpb__Event *e = c->ev;
    if (!w->prev_kv && e->prev_kv) {
      if (!c->strip) {
        c->strip = ARENA_NEW(c->arena, Mvccpb__Event);
        *c->strip = *e;
        c->strip->prev_kv = NULL;
      }
      e = c->strip;
    }
    gather(c->h, w, e);
  }
}

/* Retry timer after a failed history read. */
static void on_retry(uv_timer_t *t) { schedule_sync(t->data); }

/* One catch-up step: compacted watchers are told so; the others get the events of the
 * whole revisions from the earliest one needed that fit in batch_bytes (at most
 * SYNC_SCAN_REVS scanned), one callback each; those that reach the store's revision move
 * to the synced set. Returns the number of unsynced watchers left. */
static size_t sync_step(watch_hub_t *h) {
  int64_t cur = mvcc_rev(h->store), compact = mvcc_compact_rev(h->store);
  h->depth++;
  /* compacted watchers leave; those with nothing left to read are synced (no callbacks
   * run while the set is walked) */
  h->ntouched = 0;
  for (wgroup_t *g = h->unsynced.all, *gn; g; g = gn) {
    gn = g->lnext;
    for (watcher_t *w = g->head, *wn; w; w = wn) {
      wn = w->gnext;
      if (w->min_rev < compact) {
        watcher_unlink(w);
        touch(h, w);
      } else if (w->min_rev > cur) {
        watch_set_del(&h->unsynced, w);
        w->state = WS_SYNCED;
        watch_set_add(&h->synced, w);
      }
    }
  }
  for (size_t i = 0; i < h->ntouched; i++) {
    watcher_t *w = h->touched[i];
    if (w->on_compacted) w->on_compacted(w->ctx, w, compact);
    watcher_release(w);
  }
  h->ntouched = 0;
  int64_t min = INT64_MAX;
  for (wgroup_t *g = h->unsynced.all; g; g = g->lnext)
    for (watcher_t *w = g->head; w; w = w->gnext)
      if (w->min_rev < min) min = w->min_rev;
  if (min == INT64_MAX || min < compact || min > cur) {
    dispatch_end(h);
    return h->unsynced.nwatchers;
  }
  arena_t arena;
  arena_init(&arena);
  mvcc_events_query_t q = {.from_rev = min,
                           .to_rev = cur,
                           .max_revs = SYNC_SCAN_REVS,
                           .max_bytes = h->batch_bytes,
                           .prev_kv = h->unsynced.nprev > 0,
                           .match = sync_match,
                           .match_ctx = h};
  mvcc_events_t evs;
  int rc = mvcc_events_range(h->store, &q, &arena, &evs);
  if (rc) {
    LOGE("msg=\"watch: cannot read history\" from=%lld error=\"%s\"", (long long)min, cetcd_strerror(rc));
    arena_destroy(&arena);
    dispatch_end(h);
    uv_timer_start(&h->retry, on_retry, SYNC_RETRY_MS, 0);
    return 0; /* the retry timer takes over */
  }
  int64_t hi = evs.next_rev - 1;
  h->seq++;
  sync_ctx_t c = {h, 0, NULL, NULL, &arena};
  for (size_t i = 0; i < evs.n; i++) {
    c.ev = evs.evs[i];
    c.rev = c.ev->kv->mod_revision;
    c.strip = NULL;
    watch_set_match(&h->unsynced, c.ev->kv->key.data, c.ev->kv->key.len, sync_group, &c);
  }
  /* every watcher that wanted revisions <= hi has now got them: advance it */
  for (wgroup_t *g = h->unsynced.all, *gn; g; g = gn) {
    gn = g->lnext;
    for (watcher_t *w = g->head, *wn; w; w = wn) {
      wn = w->gnext;
      if (w->min_rev > hi) continue;
      w->prev_min = w->min_rev;
      w->min_rev = hi + 1;
      if (hi >= cur) {
        watch_set_del(&h->unsynced, w);
        w->state = WS_SYNCED;
        watch_set_add(&h->synced, w);
      }
    }
  }
  for (size_t i = 0; i < h->ntouched; i++) {
    watcher_t *w = h->touched[i];
    if (w->state == WS_DEAD || w->seq != h->seq) continue;
    w->seq = 0;
    if (w->state == WS_PAUSED) {
      w->min_rev = w->prev_min; /* paused by an earlier callback: not delivered */
      continue;
    }
    w->on_events(w->ctx, w, w->ebuf, w->en, cur);
  }
  h->ntouched = 0;
  mvcc_events_free(&evs);
  arena_destroy(&arena);
  dispatch_end(h);
  return h->unsynced.nwatchers;
}

/* Loop idle: one catch-up step per loop iteration while watchers are unsynced. */
static void on_idle(uv_idle_t *idle) {
  watch_hub_t *h = idle->data;
  if (sync_step(h) == 0 || uv_is_active((uv_handle_t *)&h->retry)) {
    uv_idle_stop(idle);
    h->idle_on = false;
    schedule_sync(h); /* a callback may have added one after the step's count */
  }
}
