/* watch: the watchable store. Every revision's events (from mvcc's on_events hook) fan out
 * to the watchers whose key range they touch; a watcher that starts in the past (or falls
 * behind) catches up from the MVCC history first, then joins the live stream.
 *
 * Guarantees per watcher: events in revision order, each revision's events delivered
 * together (atomic), never twice, never skipped; if its next revision has been compacted
 * away it is cancelled with the compact revision instead.
 *
 * Everything runs on the loop thread. Users: api/watch_rpc.c (the Watch gRPC stream), the Lock
 * and Election services (waiting for a key to be deleted) and the JSON gateway. */
#ifndef CETCD_WATCH_H
#define CETCD_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kv.pb-c.h"

/* Implementation: hub.c (synced/unsynced sets, live fan-out, catch-up steps on a uv_idle),
 * group.c (watchers grouped by identical range: an exact-key hash plus a list of range
 * groups), history from mvcc_events_range (mvcc/history.c). */

typedef struct mvcc_store mvcc_store_t;
typedef struct watch_hub watch_hub_t;
typedef struct watcher watcher_t;

enum watch_filter { WATCH_FILTER_NOPUT = 1, WATCH_FILTER_NODELETE = 2 };

/* Delivers events of one or more whole revisions to a watcher, in order. `events` and
 * their KeyValues are borrowed for the call. `rev` is the revision to report in the
 * response header, as etcd does: the events' revision for live events, the store's
 * revision for a catch-up batch from history (the whole revisions that fit in the hub's
 * batch size, see watch_hub_set_batch_bytes).
 * Revisions whose events are all filtered out are not delivered. A watcher's callback may
 * cancel, pause or add watchers (itself included), but must not write to the store
 * synchronously (the server's writes go through the WAL, so they never do). */
typedef void (*watch_events_fn)(void *ctx, watcher_t *w, const Mvccpb__Event *const *events, size_t n,
                                int64_t rev);
/* The watcher's next revision was compacted: it is cancelled (do not call watch_cancel;
 * the watcher is freed after the callback). */
typedef void (*watch_compacted_fn)(void *ctx, watcher_t *w, int64_t compact_rev);

typedef struct watch_opts {
  const uint8_t *key; /* copied */
  size_t key_len;
  const uint8_t *range_end; /* copied; empty = single key, "\0" = all keys >= key */
  size_t range_end_len;
  int64_t start_rev; /* <= 0: from the next revision */
  int filters;       /* WATCH_FILTER_* bits */
  bool prev_kv;      /* deliver prev_kv on events (otherwise stripped) */
  watch_events_fn on_events;
  watch_compacted_fn on_compacted;
  void *ctx;
} watch_opts_t;

/* Creates the hub over store (borrowed). The caller routes mvcc's on_events hook to
 * watch_hub_notify. */
watch_hub_t *watch_hub_new(uv_loop_t *loop, mvcc_store_t *store);
/* Default size of a catch-up batch: etcd's default --max-request-bytes. */
#define WATCH_BATCH_BYTES_DEFAULT ((size_t)1572864)
/* Sets how large (in WatchResponse bytes, prev_kv included) a catch-up batch may be: it
 * carries the whole revisions that fit, or a single larger revision alone. 0 = default. */
void watch_hub_set_batch_bytes(watch_hub_t *hub, size_t bytes);
/* Frees the hub and every watcher still registered (no callbacks). */
void watch_hub_free(watch_hub_t *hub);
/* mvcc's on_events hook: one revision's events, right after they were applied. */
void watch_hub_notify(watch_hub_t *hub, int64_t rev, const Mvccpb__Event *const *events, size_t n);

/* The store's contents were replaced (a raft snapshot was installed) after revision
 * old_rev: every caught-up watcher catches up again from old_rev + 1 out of the new
 * history (or learns that it was compacted), like etcd's watchableStore.Restore. */
void watch_hub_restore(watch_hub_t *hub, int64_t old_rev);

/* Registers a watcher. Returns NULL only if opts are invalid. Catch-up from history (for
 * a start_rev at or below the current revision) is delivered asynchronously, never from
 * inside this call. */
watcher_t *watch_add(watch_hub_t *hub, const watch_opts_t *opts);
/* Unregisters and frees a watcher; no callback runs for it afterwards. */
void watch_cancel(watcher_t *w);
/* Pauses (true) or resumes delivery to a watcher whose consumer is slow; while paused its
 * events are not queued in memory: on resume it catches up from history. Pausing from a
 * callback also holds back a batch not yet delivered in the same dispatch (it is replayed
 * after the resume, so nothing is lost or repeated). */
void watch_set_paused(watcher_t *w, bool paused);
/* The revision the watcher has seen everything up to (for progress notifications). */
int64_t watch_progress_rev(const watcher_t *w);
/* True if the watcher is caught up with the store (synced). */
bool watch_is_synced(const watcher_t *w);
/* Number of registered watchers (for metrics). */
size_t watch_count(const watch_hub_t *hub);
/* True if some synced watcher asked for prev_kv: live events then need the overwritten or
 * deleted value (watchers catching up from history read it themselves). */
bool watch_hub_wants_prev(const watch_hub_t *hub);

#endif
