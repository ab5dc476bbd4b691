/* libcetcd watches: one Watch stream per watch, resumed after reconnects. */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "client/client_int.h"

#define WATCH_PATH "/etcdserverpb.Watch/Watch"

enum { RETRY_MIN_MS = 100, RETRY_MAX_MS = 2000 };

/* A batch as allocated by the library (the public struct comes first). */
typedef struct batch_node {
  cetcd_watch_event_batch_t b;
  struct batch_node *next;
  bool static_reason; /* b.cancel_reason points to a static "" */
} batch_node_t;

struct cetcd_watch {
  cetcd_client_t *c;
  /* request (immutable after creation) */
  uint8_t *key, *end;
  size_t klen, elen;
  int64_t start_rev;
  bool prev_kv, no_put, no_delete, progress_notify;
  /* I/O thread state */
  grpc_cstream_t *s;
  uv_timer_t timer; /* reopen delay */
  bool timer_inited;
  uint64_t retry_ms;
  bool created_once; /* the server confirmed the watch at least once */
  bool ended;        /* final batch delivered or user cancel: nothing more */
  bool in_cb;
  bool free_pending;
  _Atomic int64_t next_rev; /* resume revision (0 = not known yet) */
  int64_t watch_id;
  batch_node_t *final; /* preallocated final batch, so an end can always be reported */
  /* creation hand-shake and poll queue (under mu) */
  pthread_mutex_t mu;
  pthread_cond_t cond;
  bool create_done;
  int create_rc;
  int create_status;
  char create_msg[256];
  cetcd_watch_cb cb;
  void *ctx;
  int efd;
  batch_node_t *q_head, *q_tail;
  bool q_ended;
};

static void watch_open_stream(cetcd_watch_t *w);

/* ===================================================================================== */
/* Batches                                                                               */
/* ===================================================================================== */

static void batch_clear(cetcd_watch_event_batch_t *b) {
  for (size_t i = 0; b->events && i < b->n_events; i++) {
    cc_kv_clear(&b->events[i].kv);
    if (b->events[i].prev_kv) cc_kv_clear(b->events[i].prev_kv);
    cc_free(b->events[i].prev_kv);
  }
  cc_free(b->events);
  b->events = NULL;
  b->n_events = 0;
}

void cetcd_watch_batch_free(cetcd_watch_event_batch_t *b) {
  if (!b) return;
  batch_node_t *n = (batch_node_t *)b;
  batch_clear(b);
  if (!n->static_reason) cc_free(b->cancel_reason);
  cc_free(n);
}

/* Fills b's events from m->events[first..]. Returns 0 or CETCD_ENOMEM (b emptied). */
static int batch_events(cetcd_watch_event_batch_t *b, Mvccpb__Event **ev, size_t n) {
  b->events = NULL;
  b->n_events = 0;
  if (!n) return 0;
  b->events = cc_calloc(n, sizeof(cetcd_watch_event_t));
  if (!b->events) return CETCD_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    cetcd_watch_event_t *e = &b->events[i];
    b->n_events = i + 1;
    e->type = ev[i]->type == MVCCPB__EVENT__EVENT_TYPE__DELETE ? CETCD_EVENT_DELETE : CETCD_EVENT_PUT;
    if (ev[i]->kv) {
      if (cc_kv_copy(&e->kv, ev[i]->kv)) goto oom;
    } else {
      e->kv.key = cc_memdup("", 0);
      e->kv.value = cc_memdup("", 0);
      if (!e->kv.key || !e->kv.value) goto oom;
    }
    if (cc_kv_dup(&e->prev_kv, ev[i]->prev_kv)) goto oom;
  }
  return 0;
oom:
  batch_clear(b);
  return CETCD_ENOMEM;
}

/* ===================================================================================== */
/* Delivery (I/O thread)                                                                 */
/* ===================================================================================== */

static void watch_timer_closed(uv_handle_t *h);

/* Frees the watch (I/O thread; after the user asked and nothing runs any more). */
static void watch_destroy(cetcd_watch_t *w) {
  if (w->timer_inited) {
    uv_close((uv_handle_t *)&w->timer, watch_timer_closed);
  } else {
    watch_timer_closed((uv_handle_t *)&w->timer);
  }
}

/* Hands a batch to the user. For a callback watch, b is used in place and freed here;
 * for a pollable watch it is queued. */
static void deliver(cetcd_watch_t *w, batch_node_t *n) {
  if (w->cb) {
    w->in_cb = true;
    w->cb(w->ctx, w, &n->b);
    w->in_cb = false;
    if (n != w->final) cetcd_watch_batch_free(&n->b);
    if (w->free_pending) watch_destroy(w);
    return;
  }
  pthread_mutex_lock(&w->mu);
  n->next = NULL;
  bool was_empty = !w->q_head;
  if (w->q_tail)
    w->q_tail->next = n;
  else
    w->q_head = n;
  w->q_tail = n;
  if (n->b.canceled) w->q_ended = true;
  if (was_empty) {
    uint64_t one = 1;
    ssize_t r = write(w->efd, &one, sizeof one);
    (void)r;
  }
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->mu);
  if (n == w->final) w->final = NULL; /* now owned by the queue */
}

/* Ends the watch with a final canceled batch. */
static void watch_end(cetcd_watch_t *w, int err, int64_t compact_rev, const char *reason,
                      const Etcdserverpb__ResponseHeader *hdr) {
  if (w->ended) return;
  w->ended = true;
  if (w->s) {
    grpc_cstream_cancel(w->s);
    w->s = NULL;
  }
  if (w->timer_inited) uv_timer_stop(&w->timer);
  batch_node_t *n = w->final;
  if (!n) return;
  cc_header(&n->b.header, hdr);
  n->b.watch_id = w->watch_id;
  n->b.canceled = true;
  n->b.err = err;
  n->b.compact_revision = compact_rev;
  n->b.cancel_reason = cc_memdup(reason ? reason : "", reason ? strlen(reason) : 0);
  if (!n->b.cancel_reason) {
    n->b.cancel_reason = (char *)"";
    n->static_reason = true;
  }
  bool is_cb = w->cb != NULL;
  deliver(w, n);
  if (is_cb && w->final == n) {
    /* callback watch: the final node stays ours; free it now unless the watch is gone */
    if (!n->static_reason) cc_free(n->b.cancel_reason);
    n->b.cancel_reason = NULL;
    n->static_reason = true;
  }
}

/* Signals the creator (first creation only). */
static void creation_done(cetcd_watch_t *w, int rc, int status, const char *msg) {
  pthread_mutex_lock(&w->mu);
  if (!w->create_done) {
    w->create_done = true;
    w->create_rc = rc;
    w->create_status = status;
    snprintf(w->create_msg, sizeof w->create_msg, "%s", msg ? msg : "");
    pthread_cond_broadcast(&w->cond);
  }
  pthread_mutex_unlock(&w->mu);
}

static int on_watch_message(void *ctx, grpc_cstream_t *s, const uint8_t *msg, size_t len) {
  (void)s;
  cetcd_watch_t *w = ctx;
  if (w->ended) return 1;
  Etcdserverpb__WatchResponse *m = etcdserverpb__watch_response__unpack(&cc_pb_alloc, len, msg);
  if (!m) {
    bool oom = cc_pb_oom_take();
    if (!w->created_once) creation_done(w, oom ? CETCD_ENOMEM : CETCD_EGRPC, 13, "malformed watch response");
    w->s = NULL; /* returning nonzero cancels the stream */
    watch_end(w, oom ? CETCD_ENOMEM : CETCD_EGRPC, 0, "malformed watch response", NULL);
    return 1;
  }
  int64_t hdr_rev = m->header ? m->header->revision : 0;
  if (m->created) {
    w->watch_id = m->watch_id;
    w->retry_ms = 0;
    if (!atomic_load(&w->next_rev)) atomic_store(&w->next_rev, w->start_rev > 0 ? w->start_rev : hdr_rev + 1);
    if (!w->created_once) {
      w->created_once = true;
      if (m->canceled && !m->compact_revision) {
        /* refused at creation */
        int code = cc_map_status(3, m->cancel_reason);
        creation_done(w, code == CETCD_EGRPC ? CETCD_ECANCELED : code, 0,
                      m->cancel_reason && *m->cancel_reason ? m->cancel_reason : "watch refused by server");
        w->ended = true;
        protobuf_c_message_free_unpacked(&m->base, &cc_pb_alloc);
        w->s = NULL;
        return 1;
      }
      creation_done(w, 0, 0, NULL);
    }
  }
  if (m->canceled) {
    int err = m->compact_revision ? CETCD_ECOMPACTED : cc_map_status(1, m->cancel_reason);
    w->s = NULL;
    watch_end(w, err, m->compact_revision, m->cancel_reason, m->header);
    protobuf_c_message_free_unpacked(&m->base, &cc_pb_alloc);
    return 1;
  }
  if (m->created && !m->n_events) {
    protobuf_c_message_free_unpacked(&m->base, &cc_pb_alloc);
    return 0;
  }
  /* drop events already delivered before a resume */
  int64_t next = atomic_load(&w->next_rev);
  size_t first = 0;
  while (first < m->n_events && m->events[first]->kv && m->events[first]->kv->mod_revision < next) first++;
  if (m->n_events && first == m->n_events) {
    protobuf_c_message_free_unpacked(&m->base, &cc_pb_alloc);
    return 0;
  }
  batch_node_t *n = cc_calloc(1, sizeof(*n));
  int rc = n ? batch_events(&n->b, m->events + first, m->n_events - first) : CETCD_ENOMEM;
  if (!rc) {
    n->b.cancel_reason = cc_memdup("", 0);
    if (!n->b.cancel_reason) {
      batch_clear(&n->b);
      rc = CETCD_ENOMEM;
    }
  }
  if (rc) {
    cc_free(n);
    w->s = NULL;
    watch_end(w, CETCD_ENOMEM, 0, "out of memory in the client", m->header);
    protobuf_c_message_free_unpacked(&m->base, &cc_pb_alloc);
    return 1;
  }
  cc_header(&n->b.header, m->header);
  n->b.watch_id = m->watch_id;
  if (n->b.n_events) atomic_store(&w->next_rev, n->b.events[n->b.n_events - 1].kv.mod_revision + 1);
  protobuf_c_message_free_unpacked(&m->base, &cc_pb_alloc);
  deliver(w, n);
  /* the callback may have cancelled or freed the watch */
  if (w->free_pending || w->ended) return 1;
  return 0;
}

static void watch_timer_cb(uv_timer_t *t) {
  cetcd_watch_t *w = t->data;
  if (!w->ended && !w->s) watch_open_stream(w);
}

/* Whether a stream error is permanent (the watch ends) rather than worth a retry. */
static bool halt_status(int status) {
  return status == 3 || status == 7 || status == 9 || status == 11 || status == 12 || status == 16;
}

static void on_watch_close(void *ctx, grpc_cstream_t *s, const grpc_close_info_t *info) {
  (void)s;
  cetcd_watch_t *w = ctx;
  w->s = NULL;
  if (w->ended) return;
  if (info->err == CETCD_ECANCELED || info->err == CETCD_ENOMEM ||
      (!info->err && halt_status(info->status))) {
    int code = info->err ? info->err : cc_map_status(info->status, info->message);
    if (!w->created_once) {
      creation_done(w, code, info->err ? 0 : info->status, info->message);
      w->ended = true;
      return;
    }
    watch_end(w, code, 0, info->message, NULL);
    return;
  }
  /* transient: reopen from next_rev; the transport waits for a connection itself */
  uint64_t delay = 0;
  if (!(info->err == CETCD_EUNAVAILABLE)) {
    w->retry_ms = w->retry_ms ? w->retry_ms * 2 : RETRY_MIN_MS;
    if (w->retry_ms > RETRY_MAX_MS) w->retry_ms = RETRY_MAX_MS;
    delay = w->retry_ms;
  }
  if (!delay) {
    watch_open_stream(w);
  } else {
    uv_timer_start(&w->timer, watch_timer_cb, delay, 0);
  }
}

static const grpc_cstream_cbs_t watch_cbs = {on_watch_message, on_watch_close};

/* Opens (or reopens) the watch's stream and sends the create request (I/O thread). */
static void watch_open_stream(cetcd_watch_t *w) {
  grpc_client_t *gc = w->c->gc;
  Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
  Etcdserverpb__WatchCreateRequest__FilterType filters[2];
  cr.key.data = w->key;
  cr.key.len = w->klen;
  cr.range_end.data = w->end;
  cr.range_end.len = w->elen;
  int64_t next = atomic_load(&w->next_rev);
  cr.start_revision = next ? next : w->start_rev;
  cr.progress_notify = w->progress_notify;
  cr.prev_kv = w->prev_kv;
  if (w->no_put) filters[cr.n_filters++] = ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT;
  if (w->no_delete) filters[cr.n_filters++] = ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE;
  cr.filters = filters;
  Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
  wr.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
  wr.create_request = &cr;
  size_t n = etcdserverpb__watch_request__get_packed_size(&wr);
  uint8_t *buf = cc_malloc(n);
  grpc_cstream_t *s = buf ? grpc_cstream_open(gc, WATCH_PATH, -1, 0, &watch_cbs, w) : NULL;
  int rc = s ? 0 : CETCD_ENOMEM;
  if (s) {
    etcdserverpb__watch_request__pack(&wr, buf);
    rc = grpc_cstream_send(s, buf, n, false);
    if (rc) grpc_cstream_cancel(s);
  }
  cc_free(buf);
  if (rc) {
    if (!w->created_once) {
      creation_done(w, rc, 0, NULL);
      w->ended = true;
    } else {
      watch_end(w, rc, 0, "cannot reopen the watch stream", NULL);
    }
    return;
  }
  w->s = s;
}

/* ===================================================================================== */
/* Tasks run on the I/O thread                                                           */
/* ===================================================================================== */

static void task_start(grpc_client_t *gc, void *arg) {
  cetcd_watch_t *w = arg;
  uv_timer_init(grpc_client_loop(gc), &w->timer);
  w->timer.data = w;
  w->timer_inited = true;
  watch_open_stream(w);
}

static void task_cancel(grpc_client_t *gc, void *arg) {
  (void)gc;
  cetcd_watch_t *w = arg;
  w->ended = true;
  if (w->s) {
    grpc_cstream_cancel(w->s);
    w->s = NULL;
  }
  if (w->timer_inited) uv_timer_stop(&w->timer);
}

static void task_free(grpc_client_t *gc, void *arg) {
  cetcd_watch_t *w = arg;
  task_cancel(gc, w);
  if (w->in_cb)
    w->free_pending = true;
  else
    watch_destroy(w);
}

static void task_progress(grpc_client_t *gc, void *arg) {
  (void)gc;
  void **a = arg;
  cetcd_watch_t *w = a[0];
  int *rc = a[1];
  if (w->ended || !w->s) {
    *rc = w->ended ? CETCD_ECANCELED : 0;
    return;
  }
  Etcdserverpb__WatchProgressRequest pr = ETCDSERVERPB__WATCH_PROGRESS_REQUEST__INIT;
  Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
  wr.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST;
  wr.progress_request = &pr;
  uint8_t buf[16];
  size_t n = etcdserverpb__watch_request__pack(&wr, buf);
  *rc = grpc_cstream_send(w->s, buf, n, false);
}

/* ===================================================================================== */
/* Public API                                                                            */
/* ===================================================================================== */

/* Frees a watch that never reached the I/O thread's state (creation failed early). */
static void watch_free_mem(cetcd_watch_t *w) {
  for (batch_node_t *n = w->q_head, *nx; n; n = nx) {
    nx = n->next;
    cetcd_watch_batch_free(&n->b);
  }
  if (w->final) cetcd_watch_batch_free(&w->final->b);
  if (w->efd >= 0) close(w->efd);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cond);
  cc_free(w->key);
  cc_free(w->end);
  cc_free(w);
}

static void watch_timer_closed(uv_handle_t *h) {
  cetcd_watch_t *w = (cetcd_watch_t *)((char *)h - offsetof(cetcd_watch_t, timer));
  watch_free_mem(w);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits on w->cond until pred or the absolute monotonic deadline (0 = forever). Returns
 * false on timeout. Caller holds w->mu. */
static bool wait_until(cetcd_watch_t *w, uint64_t deadline) {
  if (!deadline) {
    pthread_cond_wait(&w->cond, &w->mu);
    return true;
  }
  uint64_t now = now_ms();
  if (now >= deadline) return false;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t d = deadline - now;
  ts.tv_sec += (time_t)(d / 1000);
  ts.tv_nsec += (long)(d % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_cond_timedwait(&w->cond, &w->mu, &ts);
  return true;
}

static int watch_create(cetcd_client_t *c, const void *key, size_t klen, const cetcd_watch_opts_t *opts,
                        cetcd_watch_cb cb, void *ctx, bool pollable, cetcd_watch_t **out) {
  if (!out) return cc_error(CETCD_EINVAL, 0, NULL);
  *out = NULL;
  if (!c || (!pollable && !cb)) return cc_error(CETCD_EINVAL, 0, NULL);
  if (grpc_client_on_io_thread(c->gc))
    return cc_error(CETCD_EINVAL, 0, "blocking call from a libcetcd callback");
  static const cetcd_watch_opts_t none;
  if (!opts) opts = &none;
  ProtobufCBinaryData k, e;
  uint8_t *eb = NULL;
  int rc =
      cc_range(key, klen, opts->range_end, opts->range_end_len, opts->prefix, opts->from_key, &k, &e, &eb);
  if (rc) return cc_error(rc, 0, NULL);
  cetcd_watch_t *w = cc_calloc(1, sizeof(*w));
  if (!w) {
    cc_free(eb);
    return cc_error(CETCD_ENOMEM, 0, NULL);
  }
  w->efd = -1;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cond, NULL);
  w->c = c;
  w->key = (uint8_t *)cc_memdup(k.data, k.len);
  w->klen = k.len;
  w->end = e.len ? (uint8_t *)cc_memdup(e.data, e.len) : NULL;
  w->elen = e.len;
  cc_free(eb);
  w->final = cc_calloc(1, sizeof(batch_node_t));
  if (!w->key || (e.len && !w->end) || !w->final) {
    watch_free_mem(w);
    return cc_error(CETCD_ENOMEM, 0, NULL);
  }
  w->start_rev = opts->start_revision > 0 ? opts->start_revision : 0;
  w->prev_kv = opts->prev_kv;
  w->no_put = opts->no_put;
  w->no_delete = opts->no_delete;
  w->progress_notify = opts->progress_notify;
  w->cb = cb;
  w->ctx = ctx;
  if (pollable) {
    w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->efd < 0) {
      int e2 = -errno;
      watch_free_mem(w);
      return cc_error(e2 == -ENOMEM ? CETCD_ENOMEM : e2, 0, "eventfd failed");
    }
  }
  rc = grpc_client_run_sync(c->gc, task_start, w);
  if (rc) {
    watch_free_mem(w);
    return cc_error(rc, 0, NULL);
  }
  uint64_t deadline = c->request_timeout_ms ? now_ms() + c->request_timeout_ms : 0;
  pthread_mutex_lock(&w->mu);
  bool timed_out = false;
  while (!w->create_done) {
    if (!wait_until(w, deadline)) {
      timed_out = true;
      break;
    }
  }
  int crc = w->create_rc;
  int cstatus = w->create_status;
  char cmsg[256];
  snprintf(cmsg, sizeof cmsg, "%s", w->create_msg);
  pthread_mutex_unlock(&w->mu);
  if (timed_out || crc) {
    grpc_client_run_sync(c->gc, task_free, w);
    if (timed_out) return cc_error(CETCD_ETIMEOUT, 0, "watch not confirmed within the request timeout");
    return cc_error(crc, cstatus, cmsg);
  }
  *out = w;
  return 0;
}

int cetcd_watch(cetcd_client_t *c, const void *key, size_t klen, const cetcd_watch_opts_t *opts,
                cetcd_watch_cb cb, void *ctx, cetcd_watch_t **out) {
  return watch_create(c, key, klen, opts, cb, ctx, false, out);
}

int cetcd_watch_open(cetcd_client_t *c, const void *key, size_t klen, const cetcd_watch_opts_t *opts,
                     cetcd_watch_t **out) {
  return watch_create(c, key, klen, opts, NULL, NULL, true, out);
}

int cetcd_watch_fd(const cetcd_watch_t *w) { return w && !w->cb ? w->efd : -1; }

int cetcd_watch_next(cetcd_watch_t *w, int timeout_ms, cetcd_watch_event_batch_t **out) {
  if (!out) return cc_error(CETCD_EINVAL, 0, NULL);
  *out = NULL;
  if (!w || w->cb) return cc_error(CETCD_EINVAL, 0, NULL);
  uint64_t deadline = timeout_ms > 0 ? now_ms() + (uint64_t)timeout_ms : 0;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    if (w->q_head) break;
    if (w->q_ended) {
      pthread_mutex_unlock(&w->mu);
      return cc_error(CETCD_ECANCELED, 0, "watch ended");
    }
    if (timeout_ms == 0 || (timeout_ms > 0 && !wait_until(w, deadline))) {
      pthread_mutex_unlock(&w->mu);
      return cc_error(CETCD_ETIMEOUT, 0, "no watch event within the timeout");
    }
    if (timeout_ms < 0) pthread_cond_wait(&w->cond, &w->mu);
  }
  batch_node_t *n = w->q_head;
  w->q_head = n->next;
  if (!w->q_head) {
    w->q_tail = NULL;
    if (!w->q_ended) {
      uint64_t v;
      ssize_t r = read(w->efd, &v, sizeof v); /* not readable while empty */
      (void)r;
    }
  }
  pthread_mutex_unlock(&w->mu);
  n->next = NULL;
  *out = &n->b;
  return 0;
}

int64_t cetcd_watch_last_revision(const cetcd_watch_t *w) {
  int64_t n = atomic_load(&((cetcd_watch_t *)w)->next_rev);
  return n > 0 ? n - 1 : 0;
}

int cetcd_watch_request_progress(cetcd_watch_t *w) {
  if (!w) return cc_error(CETCD_EINVAL, 0, NULL);
  int rc = 0;
  void *a[2] = {w, &rc};
  int r = grpc_client_run_sync(w->c->gc, task_progress, a);
  if (r) return cc_error(r, 0, NULL);
  return rc ? cc_error(rc, 0, NULL) : 0;
}

int cetcd_watch_cancel(cetcd_watch_t *w) {
  if (!w) return 0;
  grpc_client_run_sync(w->c->gc, task_cancel, w);
  if (!w->cb) {
    pthread_mutex_lock(&w->mu);
    if (!w->q_ended) {
      w->q_ended = true;
      if (!w->q_head) {
        uint64_t one = 1;
        ssize_t r = write(w->efd, &one, sizeof one); /* wake pollers: next() says ECANCELED */
        (void)r;
      }
    }
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
  }
  return 0;
}

void cetcd_watch_free(cetcd_watch_t *w) {
  if (!w) return;
  if (grpc_client_run_sync(w->c->gc, task_free, w) != 0) {
    /* the client is shutting down: its loop no longer runs tasks */
    watch_free_mem(w);
  }
}
