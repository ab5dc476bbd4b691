/* etcdserverpb.Watch: the bidirectional Watch stream (etcd's v3rpc/watch.go).
 *
 * One stream holds many watches, each a watcher in the hub (watch/). Responses follow
 * etcd 3.4: a create is answered with created=true (before any event of that watch); a
 * failed create with created=canceled=true, watch_id -1 and the reason; a cancel with
 * canceled=true; a progress request with watch_id -1 and the current revision; a watch
 * whose start revision was compacted with compact_revision and canceled=true.
 * Half-closing the stream does not end it (etcd keeps sending until the client goes).
 *
 * Coalescing: while the call has queued bytes HTTP/2 has not taken yet (revisions applied
 * in one loop iteration, a client window or socket that is full), a watch's events are
 * not framed at once: their encoded Event fields are kept aside per watch (`held`) and
 * framed as one WatchResponse per watch when HTTP/2 asks the call for more data (the
 * refill hook), so consecutive revisions of a watch share a response, whatever the number
 * of watches on the stream. Control responses (created, canceled, progress, compaction)
 * first frame every held response, so the stream's order is kept.
 *
 * Slow consumers: when the bytes queued on the call (not yet taken by HTTP/2 flow control)
 * exceed STREAM_PAUSE_BYTES, every watcher of the stream leaves the synced set (paused:
 * nothing more is buffered for it) and resumes once the queue drains below
 * STREAM_RESUME_BYTES; the hub then catches it up from history in batches of whole
 * revisions (up to --max-request-bytes each), so a lagging consumer gets few large
 * responses, nothing is lost and at most one batch plus STREAM_PAUSE_BYTES is buffered.
 *
 * Progress requests are answered (watch_id -1, the store's revision) only while every
 * watcher of the stream is synced, as etcd 3.5 does; otherwise the answer waits until they
 * are, so it never reports a revision below an event still to be sent. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "watch/watch.h"

enum {
  STREAM_PAUSE_BYTES = 256 << 10,
  STREAM_RESUME_BYTES = 64 << 10,
  TICK_MS = 5,           /* while paused or a progress answer waits ... */
  TICK_MAX_MS = 200,     /* ... backing off to this while the client reads nothing */
  MIN_PROGRESS_MS = 100, /* etcd's minWatchProgressInterval */
  GRPC_OVERHEAD_BYTES = 512 * 1024,
};

typedef struct wstream wstream_t;

/* One watch of a stream. */
typedef struct wentry {
  int64_t id;
  watcher_t *w; /* NULL once compacted: the id stays taken until cancelled, as in etcd */
  wstream_t *ws;
  bool prev_kv, fragment, progress_notify;
  bool progress_due;        /* no events sent since the last progress tick */
  buf_t held;               /* encoded Event fields (WatchResponse.events) not framed yet */
  int64_t held_rev;         /* header revision of the held events (their last revision) */
  struct wentry *held_next; /* in the stream's held list while held.len > 0 */
} wentry_t;

struct wstream {
  grpc_call_t *call;
  api_ctx_t *ctx;                   /* the call's */
  wstream_t *prev, *next;           /* every open stream (for api_watch_stop_all) */
  wentry_t **slots;                 /* open addressing by id; NULL = empty */
  wentry_t *held_head, **held_tail; /* watches with held events, in the order they got them */
  size_t held_bytes;                /* their total */
  size_t cap, n;
  int64_t next_id;
  bool paused;           /* watchers paused for a slow consumer */
  bool progress_pending; /* a progress request waits for the watchers to be synced */
  bool finished;         /* grpc_call_finish done */
  int nprogress;         /* watches with progress_notify */
  bool progress_on, tick_init, tick_on;
  uint32_t tick_ms;    /* the tick's current interval */
  size_t tick_pending; /* queued bytes at the last tick */
  uv_timer_t progress_timer, tick_timer;
  int open_handles;
};

/* ---- the id table ---- */

/* Slot index for id. */
static size_t slot_of(const wstream_t *s, int64_t id) {
  uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;
  return (size_t)(h >> 20) & (s->cap - 1);
}

/* The entry for id, or NULL. */
static wentry_t *ws_find(const wstream_t *s, int64_t id) {
  if (!s->cap) return NULL;
  for (size_t i = slot_of(s, id);; i = (i + 1) & (s->cap - 1)) {
    if (!s->slots[i]) return NULL;
    if (s->slots[i]->id == id) return s->slots[i];
  }
}

/* Inserts e (its id not present). */
static void ws_insert(wstream_t *s, wentry_t *e) {
  if ((s->n + 1) * 2 > s->cap) {
    size_t oc = s->cap;
    wentry_t **old = s->slots;
    s->cap = oc ? oc * 2 : 16;
    s->slots = xcalloc(s->cap, sizeof(*s->slots));
    for (size_t i = 0; i < oc; i++)
      if (old[i]) {
        size_t j = slot_of(s, old[i]->id);
        while (s->slots[j]) j = (j + 1) & (s->cap - 1);
        s->slots[j] = old[i];
      }
    free(old);
  }
  size_t j = slot_of(s, e->id);
  while (s->slots[j]) j = (j + 1) & (s->cap - 1);
  s->slots[j] = e;
  s->n++;
}

/* Removes e (backward-shift deletion keeps probe chains intact). */
static void ws_remove(wstream_t *s, wentry_t *e) {
  size_t i = slot_of(s, e->id);
  while (s->slots[i] != e) i = (i + 1) & (s->cap - 1);
  s->slots[i] = NULL;
  s->n--;
  for (size_t j = (i + 1) & (s->cap - 1); s->slots[j]; j = (j + 1) & (s->cap - 1)) {
    size_t home = slot_of(s, s->slots[j]->id);
    /* move slots[j] into the hole if its home is not in (i, j] cyclically */
    bool in = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!in) {
      s->slots[i] = s->slots[j];
      s->slots[j] = NULL;
      i = j;
    }
  }
}

/* ---- responses ---- */

/* Fills a response header (revision rev; 0 = current) without touching the call arena. */
static void header_at(grpc_call_t *call, Etcdserverpb__ResponseHeader *h, int64_t rev) {
  etcdserverpb__response_header__init(h);
  h->revision = rev;
  api_header(call, h);
}

static void flush_held(wstream_t *s);

/* Sends a control response (no events), after every held response. */
static void send_ctl(wstream_t *s, int64_t rev, int64_t id, bool created, bool canceled, const char *reason) {
  flush_held(s);
  Etcdserverpb__ResponseHeader h;
  header_at(s->call, &h, rev);
  Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
  r.header = &h;
  r.watch_id = id;
  r.created = created;
  r.canceled = canceled;
  if (reason) r.cancel_reason = (char *)reason;
  grpc_call_send(s->call, &r.base);
}

/* Bytes a length-delimited field of n bytes adds (tag + length varint + n). */
static size_t field_size(size_t n) {
  size_t v = 1;
  for (size_t x = n; x >= 0x80; x >>= 7) v++;
  return 1 + v + n;
}

/* Sends r, split into fragments of at most max bytes when the watch asked for it (etcd's
 * sendFragments: every part but the last has fragment=true). */
static void send_fragments(grpc_call_t *call, Etcdserverpb__WatchResponse *r, size_t max) {
  if (r->n_events < 2 || protobuf_c_message_get_packed_size(&r->base) < max) {
    grpc_call_send(call, &r->base);
    return;
  }
  Mvccpb__Event **all = r->events;
  size_t n = r->n_events, idx = 0;
  r->events = NULL;
  r->n_events = 0;
  r->fragment = true;
  size_t base = protobuf_c_message_get_packed_size(&r->base);
  while (idx < n) {
    size_t start = idx, size = base;
    while (idx < n) {
      size_t es = field_size(protobuf_c_message_get_packed_size(&all[idx]->base));
      if (idx > start && size + es >= max) break;
      size += es;
      idx++;
    }
    r->events = all + start;
    r->n_events = idx - start;
    r->fragment = idx < n;
    if (grpc_call_send(call, &r->base)) break;
  }
  r->events = all;
  r->n_events = n;
}

/* True if every watcher of the stream is synced (progress may be reported). */
static bool stream_synced(const wstream_t *s) {
  if (s->paused) return false;
  for (size_t i = 0; i < s->cap; i++)
    if (s->slots[i] && s->slots[i]->w && !watch_is_synced(s->slots[i]->w)) return false;
  return true;
}

/* Answers a progress request: the store's revision, under no watch id. */
static void send_progress(wstream_t *s) { send_ctl(s, mvcc_rev(s->ctx->mvcc), -1, false, false, NULL); }

static void on_tick(uv_timer_t *t);

/* Starts the stream's tick (resume poll, waiting progress answer) if it is not running. */
static void tick_start(wstream_t *s) {
  if (s->tick_on) return;
  if (!s->tick_init) {
    uv_timer_init(s->ctx->loop, &s->tick_timer);
    s->tick_timer.data = s;
    s->tick_init = true;
    s->open_handles++;
  }
  s->tick_on = true;
  s->tick_ms = TICK_MS;
  s->tick_pending = SIZE_MAX;
  uv_timer_start(&s->tick_timer, on_tick, TICK_MS, 0);
}

/* Pauses or resumes every watcher of the stream. */
static void pause_all(wstream_t *s, bool paused) {
  s->paused = paused;
  LOGD("msg=\"watch stream %s (slow consumer)\" peer=%s pending-bytes=%zu", paused ? "paused" : "resumed",
       grpc_call_peer(s->call), grpc_call_pending_bytes(s->call));
  for (size_t i = 0; i < s->cap; i++)
    if (s->slots[i] && s->slots[i]->w) watch_set_paused(s->slots[i]->w, paused);
  if (paused) tick_start(s);
}

/* Stream tick (outside any hub dispatch): resumes the watchers once the queue is short
 * again, and answers a waiting progress request once they are all synced. While the
 * client takes nothing, the interval doubles up to TICK_MAX_MS (a stuck client costs a
 * few wake-ups a second); any progress brings it back to TICK_MS. */
static void on_tick(uv_timer_t *t) {
  wstream_t *s = t->data;
  size_t pending = grpc_call_pending_bytes(s->call) + s->held_bytes;
  if (s->paused && pending <= STREAM_RESUME_BYTES) pause_all(s, false);
  if (s->progress_pending && stream_synced(s)) {
    s->progress_pending = false;
    send_progress(s);
  }
  if (!s->paused && !s->progress_pending) {
    s->tick_on = false;
    return;
  }
  if (s->paused && pending == s->tick_pending)
    s->tick_ms = s->tick_ms * 2 < TICK_MAX_MS ? s->tick_ms * 2 : TICK_MAX_MS;
  else
    s->tick_ms = TICK_MS;
  s->tick_pending = pending;
  uv_timer_start(t, on_tick, s->tick_ms, 0);
}

/* A progress request: answered now if the stream's watchers are synced, else once they are
 * (one answer for any number of requests meanwhile, as etcd's deferred progress). */
static void do_progress(wstream_t *s) {
  if (!s->progress_pending && stream_synced(s)) {
    send_progress(s);
    return;
  }
  s->progress_pending = true;
  tick_start(s);
}

/* Pauses the stream's watchers if the client is not reading fast enough. */
static void check_backpressure(wstream_t *s) {
  if (!s->paused && grpc_call_pending_bytes(s->call) + s->held_bytes > STREAM_PAUSE_BYTES) pause_all(s, true);
}

/* Frames e's held events as one response (header at held_rev) and empties its buffer. */
static void frame_held(wstream_t *s, wentry_t *e) {
  Etcdserverpb__ResponseHeader h;
  header_at(s->call, &h, e->held_rev);
  Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
  r.header = &h;
  r.watch_id = e->id;
  grpc_call_send_with_tail(s->call, &r.base, e->held.data, e->held.len);
  s->held_bytes -= e->held.len;
  if (e->held.cap > (64 << 10)) buf_free(&e->held);
  e->held.len = 0;
}

/* Frames every held response, in the order the watches first got held events. */
static void flush_held(wstream_t *s) {
  while (s->held_head) {
    wentry_t *e = s->held_head;
    s->held_head = e->held_next;
    e->held_next = NULL;
    frame_held(s, e);
  }
  s->held_tail = &s->held_head;
}

/* Refill hook: HTTP/2 has taken everything queued on the call and wants more. */
static void on_refill(grpc_call_t *call) {
  wstream_t *s = grpc_call_user(call);
  if (s && !s->finished) flush_held(s);
}

/* Takes e (with held events) out of the stream's held list. */
static void unlink_held(wstream_t *s, wentry_t *e) {
  wentry_t **pp = &s->held_head;
  while (*pp != e) pp = &(*pp)->held_next;
  *pp = e->held_next;
  if (!*pp) s->held_tail = pp;
  e->held_next = NULL;
}

/* Forgets e's held events (its stream ends). */
static void drop_held(wstream_t *s, wentry_t *e) {
  if (e->held.len) {
    unlink_held(s, e);
    s->held_bytes -= e->held.len;
  }
  buf_free(&e->held);
}

/* Keeps a revision's events aside for e (encoded as WatchResponse.events fields), to be
 * framed with the ones that follow when HTTP/2 asks; frames what e held first if the
 * response would pass max bytes. */
static void hold(wstream_t *s, wentry_t *e, const Mvccpb__Event *const *events, size_t n, int64_t rev,
                 size_t max) {
  size_t add = 0;
  for (size_t i = 0; i < n; i++) add += field_size(protobuf_c_message_get_packed_size(&events[i]->base));
  if (e->held.len && e->held.len + add > max) { /* full: it goes as a response of its own */
    unlink_held(s, e);
    frame_held(s, e);
  }
  if (!e->held.len) {
    e->held_next = NULL;
    *s->held_tail = e;
    s->held_tail = &e->held_next;
  }
  buf_reserve(&e->held, add);
  for (size_t i = 0; i < n; i++) {
    size_t sz = protobuf_c_message_get_packed_size(&events[i]->base);
    uint8_t *p = e->held.data + e->held.len;
    *p++ = 11 << 3 | 2; /* WatchResponse.events, length-delimited */
    for (size_t v = sz;; v >>= 7) {
      *p++ = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
      if (v < 0x80) break;
    }
    p += protobuf_c_message_pack(&events[i]->base, p);
    e->held.len = (size_t)(p - e->held.data);
  }
  e->held_rev = rev;
  s->held_bytes += add;
}

/* Hub callback: events of whole revisions for one watch. Sent at once when nothing waits
 * on the call; otherwise held and coalesced with the watch's next revisions until HTTP/2
 * asks for more (on_refill): fewer, larger responses, as a catch-up batch. */
static void on_events(void *ctx, watcher_t *w, const Mvccpb__Event *const *events, size_t n, int64_t rev) {
  (void)w;
  wentry_t *e = ctx;
  wstream_t *s = e->ws;
  size_t max = s->ctx->cfg->max_request_bytes;
  if (n && !e->fragment && (e->held.len || grpc_call_backlogged(s->call))) {
    hold(s, e, events, n, rev, max);
  } else {
    Etcdserverpb__ResponseHeader h;
    header_at(s->call, &h, rev);
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.header = &h;
    r.watch_id = e->id;
    r.events = (Mvccpb__Event **)events;
    r.n_events = n;
    if (e->fragment)
      send_fragments(s->call, &r, max + GRPC_OVERHEAD_BYTES);
    else
      grpc_call_send(s->call, &r.base);
  }
  if (n) e->progress_due = false;
  check_backpressure(s);
}

/* Hub callback: the watch's next revision was compacted (the watcher is gone). */
static void on_compacted(void *ctx, watcher_t *w, int64_t compact_rev) {
  (void)w;
  wentry_t *e = ctx;
  e->w = NULL;
  flush_held(e->ws);
  Etcdserverpb__ResponseHeader h;
  header_at(e->ws->call, &h, 0);
  h.revision = 0; /* etcd's compaction response carries no revision */
  Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
  r.header = &h;
  r.watch_id = e->id;
  r.compact_revision = compact_rev;
  r.canceled = true;
  grpc_call_send(e->ws->call, &r.base);
}

/* Progress tick: a progress notification for each progress_notify watch that got no
 * events since the last tick and is caught up (etcd's sendLoop + RequestProgress). */
static void on_progress(uv_timer_t *t) {
  wstream_t *s = t->data;
  int64_t rev = mvcc_rev(s->ctx->mvcc);
  for (size_t i = 0; i < s->cap; i++) {
    wentry_t *e = s->slots[i];
    if (!e || !e->progress_notify) continue;
    if (e->progress_due && e->w && watch_is_synced(e->w)) send_ctl(s, rev, e->id, false, false, NULL);
    e->progress_due = true;
  }
}

/* Starts the stream's progress ticker (interval plus up to 10% jitter, like etcd's). */
static void start_progress(wstream_t *s) {
  if (s->progress_on) return;
  int64_t ms = s->ctx->cfg->experimental_watch_progress_notify_interval_ms;
  if (ms <= 0) ms = 10 * 60 * 1000;
  if (ms < MIN_PROGRESS_MS) ms = MIN_PROGRESS_MS;
  ms += rand() % (ms / 10 + 1);
  uv_timer_init(s->ctx->loop, &s->progress_timer);
  s->progress_timer.data = s;
  uv_timer_start(&s->progress_timer, on_progress, (uint64_t)ms, (uint64_t)ms);
  s->progress_on = true;
  s->open_handles++;
}

/* ---- requests ---- */

/* A create request: registers the watch and answers created (or why not). */
static void do_create(wstream_t *s, const Etcdserverpb__WatchCreateRequest *c) {
  int64_t wsrev = mvcc_rev(s->ctx->mvcc);
  static const uint8_t zero = 0;
  const uint8_t *key = c->key.len ? c->key.data : &zero;
  size_t klen = c->key.len ? c->key.len : 1;
  bool from_key = c->range_end.len == 1 && c->range_end.data[0] == 0;
  if (c->range_end.len && !from_key) {
    size_t m = klen < c->range_end.len ? klen : c->range_end.len;
    int cmp = memcmp(key, c->range_end.data, m);
    if (cmp > 0 || (cmp == 0 && klen >= c->range_end.len)) {
      send_ctl(s, wsrev, -1, true, true, "mvcc: watcher range is empty");
      return;
    }
  }
  /* etcd's isWatchPermitted: read access to the watched range, checked at creation. For
   * a from-key watch etcd 3.4 checks the start key alone; cetcd checks the whole range. */
  ProtobufCBinaryData wk = {klen, (uint8_t *)key};
  int arc = api_auth_range(s->call, &wk, &c->range_end);
  if (arc) {
    const char *reason =
        arc == CETCD_EAUTHBADTOKEN ? "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"
        : arc == CETCD_EAUTHOLDREV
            ? "rpc error: code = InvalidArgument desc = etcdserver: revision of auth store is old"
        : arc == CETCD_EAUTHUSEREMPTY
            ? "rpc error: code = InvalidArgument desc = etcdserver: user name is empty"
            : "rpc error: code = PermissionDenied desc = etcdserver: permission denied";
    send_ctl(s, wsrev, -1, true, true, reason);
    return;
  }
  int64_t id = c->watch_id;
  if (id == 0) { /* clientv3.AutoWatchID */
    while (ws_find(s, s->next_id)) s->next_id++;
    id = s->next_id++;
  } else if (ws_find(s, id)) {
    send_ctl(s, wsrev, -1, true, true, "mvcc: duplicate watch ID provided on the WatchStream");
    return;
  }
  wentry_t *e = xcalloc(1, sizeof(*e));
  e->id = id;
  e->ws = s;
  e->prev_kv = c->prev_kv;
  e->fragment = c->fragment;
  e->progress_notify = c->progress_notify;
  e->progress_due = true;
  int filters = 0;
  for (size_t i = 0; i < c->n_filters; i++) {
    if (c->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT)
      filters |= WATCH_FILTER_NOPUT;
    if (c->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE)
      filters |= WATCH_FILTER_NODELETE;
  }
  watch_opts_t o = {.key = key,
                    .key_len = klen,
                    .range_end = c->range_end.data,
                    .range_end_len = c->range_end.len,
                    .start_rev = c->start_revision > 0 ? c->start_revision : wsrev + 1,
                    .filters = filters,
                    .prev_kv = c->prev_kv,
                    .on_events = on_events,
                    .on_compacted = on_compacted,
                    .ctx = e};
  e->w = watch_add(s->ctx->watch, &o);
  if (!e->w) {
    free(e);
    send_ctl(s, wsrev, -1, true, true, "mvcc: watcher range is empty");
    return;
  }
  ws_insert(s, e);
  if (s->paused) watch_set_paused(e->w, true);
  if (e->progress_notify && !s->nprogress++) start_progress(s);
  send_ctl(s, wsrev, id, true, false, NULL);
}

/* A cancel request: answered only if the watch exists. */
static void do_cancel(wstream_t *s, int64_t id) {
  wentry_t *e = ws_find(s, id);
  if (!e) return;
  flush_held(s); /* its events before its cancellation */
  if (e->w) watch_cancel(e->w);
  ws_remove(s, e);
  if (e->progress_notify) s->nprogress--;
  free(e);
  send_ctl(s, 0, id, false, true, NULL);
}

/* Watch: one request message of the stream. */
static void watch_on_message(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__WatchRequest *req = (Etcdserverpb__WatchRequest *)m;
  wstream_t *s = grpc_call_user(call);
  if (!s) {
    api_ctx_t *ctx = api_ctx(call);
    if (ctx->watch_stopping) {
      grpc_call_finish(call, GRPC_UNAVAILABLE, "etcdserver: server stopped");
      return;
    }
    s = xcalloc(1, sizeof(*s));
    s->call = call;
    s->ctx = ctx;
    s->held_tail = &s->held_head;
    grpc_call_set_refill(call, on_refill);
    s->next = ctx->watch_streams;
    if (s->next) s->next->prev = s;
    ctx->watch_streams = s;
    grpc_call_set_user(call, s);
  }
  if (s->finished || !s->ctx->watch) return;
  switch (req->request_union_case) {
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST:
      if (req->create_request) do_create(s, req->create_request);
      break;
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST:
      if (req->cancel_request) do_cancel(s, req->cancel_request->watch_id);
      break;
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST:
      do_progress(s);
      break;
    default:
      break;
  }
}

/* Close callback of a stream timer: the last one frees the stream. */
static void on_timer_closed(uv_handle_t *h) {
  wstream_t *s = h->data;
  if (--s->open_handles == 0) free(s);
}

/* Ends a stream: cancels every watch, finishes the call, frees the stream (once its
 * timers have closed). */
static void stream_end(wstream_t *s, int status, const char *message) {
  grpc_call_t *call = s->call;
  if (s->finished) return;
  s->finished = true;
  if (s->prev)
    s->prev->next = s->next;
  else
    s->ctx->watch_streams = s->next;
  if (s->next) s->next->prev = s->prev;
  for (size_t i = 0; i < s->cap; i++) {
    wentry_t *e = s->slots[i];
    if (!e) continue;
    if (e->w) watch_cancel(e->w);
    drop_held(s, e);
    free(e);
  }
  free(s->slots);
  s->slots = NULL;
  s->cap = s->n = 0;
  grpc_call_set_user(call, NULL);
  grpc_call_set_refill(call, NULL);
  grpc_call_finish(call, status, message);
  if (s->progress_on) uv_close((uv_handle_t *)&s->progress_timer, on_timer_closed);
  if (s->tick_init) uv_close((uv_handle_t *)&s->tick_timer, on_timer_closed);
  if (!s->open_handles) free(s);
}

/* Watch: the client went away. */
static void watch_on_cancel(grpc_call_t *call) {
  wstream_t *s = grpc_call_user(call);
  if (!s)
    grpc_call_finish(call, GRPC_CANCELLED, "context canceled");
  else
    stream_end(s, GRPC_CANCELLED, "etcdserver: watch canceled");
}

void api_watch_stop_all(api_ctx_t *ctx) {
  ctx->watch_stopping = true;
  while (ctx->watch_streams) stream_end(ctx->watch_streams, GRPC_UNAVAILABLE, "etcdserver: server stopped");
}

const grpc_method_t api_watch_methods[] = {
    {"/etcdserverpb.Watch/Watch", GRPC_BIDI_STREAM, &etcdserverpb__watch_request__descriptor,
     watch_on_message, NULL, watch_on_cancel},
};
const size_t api_watch_methods_len = sizeof(api_watch_methods) / sizeof(*api_watch_methods);
