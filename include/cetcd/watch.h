/* libcetcd watches: a stream of change events for a key or range, delivered either to a
 * callback on the client's I/O thread or to a pollable handle.
 *
 * Each watch uses its own gRPC Watch stream. When the connection drops, the watch
 * reopens on the next available connection starting at last_revision + 1 (the revision
 * after the last event delivered, or after the creation revision if none was), so no
 * event is lost or delivered twice. If that revision has been compacted meanwhile the
 * watch ends with a batch whose canceled is set, err is CETCD_ECOMPACTED and
 * compact_revision tells the oldest revision still available. A watch the server
 * cancels for another reason ends with canceled set and err CETCD_ECANCELED (or a mapped
 * error), cancel_reason telling why. After a canceled batch no more batches come. */
#ifndef CETCD_WATCH_H
#define CETCD_WATCH_H

#include "cetcd/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cetcd_event_type { CETCD_EVENT_PUT = 0, CETCD_EVENT_DELETE = 1 } cetcd_event_type_t;

/* One change. For a delete, kv holds the key and mod_revision of the deletion. */
typedef struct cetcd_watch_event {
  cetcd_event_type_t type;
  cetcd_kv_t kv;
  cetcd_kv_t *prev_kv; /* pair before the change (opts.prev_kv and it existed), else NULL */
} cetcd_watch_event_t;

/* A group of events (all events of one revision are in the same batch), a progress
 * notification (no events, not canceled), or the final cancellation. */
typedef struct cetcd_watch_event_batch {
  cetcd_header_t header;
  int64_t watch_id;
  cetcd_watch_event_t *events;
  size_t n_events;
  bool canceled;            /* the watch has ended; no further batches */
  int err;                  /* with canceled: CETCD_ECOMPACTED, CETCD_ECANCELED, ... ; else 0 */
  int64_t compact_revision; /* with CETCD_ECOMPACTED: oldest revision still available */
  char *cancel_reason;      /* server's reason, NUL-terminated ("" if none) */
} cetcd_watch_event_batch_t;

/* Options of a watch (NULL = single key, from the next revision, all event kinds). At
 * most one of range_end, prefix and from_key may be set. */
typedef struct cetcd_watch_opts {
  const void *range_end; /* borrowed */
  size_t range_end_len;
  bool prefix;
  bool from_key;
  int64_t start_revision; /* first revision to report (0 = changes after creation) */
  bool prev_kv;           /* include the previous pair in every event */
  bool no_put;            /* filter out puts */
  bool no_delete;         /* filter out deletes */
  bool progress_notify;   /* ask for periodic progress notifications when idle */
} cetcd_watch_opts_t;

/* A watch. Opaque; free with cetcd_watch_free. */
typedef struct cetcd_watch cetcd_watch_t;

/* Receives one batch on the client's I/O thread. The batch and everything in it are
 * borrowed and valid only during the call. Must not block; may call cetcd_watch_cancel
 * or cetcd_watch_free on its own watch, but no blocking client function. */
typedef void (*cetcd_watch_cb)(void *ctx, cetcd_watch_t *w, const cetcd_watch_event_batch_t *batch);

/* Starts a callback watch on key (borrowed) and returns once the server has confirmed it,
 * so every change after the return is reported. cb gets ctx (borrowed, must outlive the
 * watch). Stores the watch in *out (owned). A start_revision that is already compacted
 * is not an error here: the watch is created and its first batch is the final one, with
 * err CETCD_ECOMPACTED and compact_revision. Returns 0, CETCD_ETIMEOUT (not confirmed
 * within the request timeout, e.g. no endpoint reachable), CETCD_ENOMEM, CETCD_EINVAL,
 * CETCD_ECANCELED, a negative errno, or a server error (CETCD_EGRPC, ...) when the server
 * refuses the watch. */
CETCD_EXPORT int cetcd_watch(cetcd_client_t *client, const void *key, size_t klen,
                             const cetcd_watch_opts_t *opts, cetcd_watch_cb cb, void *ctx,
                             cetcd_watch_t **out);

/* Starts a pollable watch: like cetcd_watch but batches are queued in the handle and
 * taken with cetcd_watch_next; cetcd_watch_fd becomes readable while a batch is queued.
 * The queue is unbounded (a slow reader costs memory, never events). */
CETCD_EXPORT int cetcd_watch_open(cetcd_client_t *client, const void *key, size_t klen,
                                  const cetcd_watch_opts_t *opts, cetcd_watch_t **out);

/* Returns a file descriptor (an eventfd owned by the watch) that poll/epoll report
 * readable while cetcd_watch_next has a batch to return. Do not read or close it. Returns
 * -1 for a callback watch. */
CETCD_EXPORT int cetcd_watch_fd(const cetcd_watch_t *w);

/* Takes the next batch of a pollable watch, waiting up to timeout_ms (0 = do not wait,
 * negative = forever). On success stores the batch (owned; free with
 * cetcd_watch_batch_free) in *out. Returns 0, CETCD_ETIMEOUT (nothing within the
 * timeout), CETCD_ECANCELED (the watch has ended and its final batch was already
 * returned, or cetcd_watch_cancel was called), or CETCD_EINVAL (a callback watch). */
CETCD_EXPORT int cetcd_watch_next(cetcd_watch_t *w, int timeout_ms, cetcd_watch_event_batch_t **out);

/* Frees a batch returned by cetcd_watch_next. NULL is a no-op. */
CETCD_EXPORT void cetcd_watch_batch_free(cetcd_watch_event_batch_t *b);

/* Returns the revision after which the watch resumes if its stream is reopened: the
 * mod_revision of the last event delivered (or the creation revision). Thread-safe. */
CETCD_EXPORT int64_t cetcd_watch_last_revision(const cetcd_watch_t *w);

/* Asks the server for a progress notification (a batch with no events whose header
 * revision says every change up to it was delivered). Returns 0, CETCD_ENOMEM or
 * CETCD_ECANCELED. */
CETCD_EXPORT int cetcd_watch_request_progress(cetcd_watch_t *w);

/* Stops the watch: when it returns, no callback is running or will run for it (unless
 * called from that callback, which is allowed), and cetcd_watch_next returns
 * CETCD_ECANCELED once queued batches are drained. Idempotent. Returns 0. */
CETCD_EXPORT int cetcd_watch_cancel(cetcd_watch_t *w);

/* Cancels (if needed) and frees the watch and its queued batches. May be called from the
 * watch's own callback. NULL is a no-op. */
CETCD_EXPORT void cetcd_watch_free(cetcd_watch_t *w);

#ifdef __cplusplus
}
#endif

#endif
