/* gRPC client transport, unary calls (see grpc_client.h): asynchronous ones opened in
 * batches on the I/O thread, and blocking ones waiting for them. */
#include <semaphore.h>
#include <stdio.h>

#include "cetcd/errors.h"
#include "client/transport/transport_int.h"

static int acall_on_message(void *ctx, grpc_cstream_t *s, const uint8_t *msg, size_t len) {
  (void)s;
  acall_t *a = ctx;
  if (a->resp || a->err) return 0; /* extra messages: ignore */
  a->resp = a->gc->mem.malloc_fn(len ? len : 1);
  if (!a->resp) {
    a->err = CETCD_ENOMEM;
    return 0;
  }
  memcpy(a->resp, msg, len);
  a->resp_len = len;
  return 0;
}

/* Ends call a: runs done with the outcome, then frees a if the transport owns it. */
static void acall_complete(acall_t *a, const grpc_close_info_t *in) {
  grpc_client_t *gc = a->gc;
  grpc_close_info_t info = *in;
  if (a->err && !info.err) {
    info.err = a->err;
    info.message = cetcd_strerror(a->err);
  }
  if (!info.err && info.status == 0 && !a->resp) {
    info.err = CETCD_EGRPC;
    info.status = 13;
    info.message = "server sent no response message";
  }
  uint8_t *resp = a->resp;
  size_t rlen = a->resp_len;
  a->resp = NULL;
  if (info.err || info.status) {
    gc->mem.free_fn(resp);
    resp = NULL;
    rlen = 0;
  }
  bool heap = a->heap;
  a->done(a->ctx, &info, resp, rlen); /* a may be gone now unless heap */
  if (heap) gc->mem.free_fn(a);
}

static void acall_on_close(void *ctx, grpc_cstream_t *s, const grpc_close_info_t *info) {
  (void)s;
  acall_complete(ctx, info);
}

static const grpc_cstream_cbs_t acall_cbs = {acall_on_message, acall_on_close};

/* Opens the stream of call a (I/O thread). Returns 0, or an error (a untouched but its
 * owned request freed). */
static int acall_open_batched(grpc_client_t *gc, acall_t *a);

static int acall_open(grpc_client_t *gc, acall_t *a) {
  /* HEADERS and DATA go out in one write: defer the flush of the open until the request
   * is attached (inside a batch the batch flushes) */
  bool was = gc->batch;
  gc->batch = true;
  int rc = acall_open_batched(gc, a);
  gc->batch = was;
  if (!was) gc_flush_deferred(gc);
  return rc;
}

static int acall_open_batched(grpc_client_t *gc, acall_t *a) {
  grpc_cstream_t *s =
      gc->stopping ? NULL : grpc_cstream_open(gc, a->path, a->channel, a->timeout_ms, &acall_cbs, a);
  if (!s) {
    if (a->req_owned) gc->mem.free_fn(a->req);
    a->req = NULL;
    return gc->stopping ? CETCD_ECANCELED : CETCD_ENOMEM;
  }
  int rc = 0;
  if (a->req_owned) {
    /* hand the framed request to the stream as its output buffer: no copy */
    size_t len = a->req_len - GRPC_FRAME_PREFIX;
    uint8_t *p = a->req;
    p[0] = 0;
    p[1] = (uint8_t)(len >> 24);
    p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 8);
    p[4] = (uint8_t)len;
    gc->mem.free_fn(s->out);
    s->out = p;
    s->out_cap = s->out_len = a->req_len;
    s->out_off = 0;
    s->out_eof = true;
    a->req = NULL;
    if (s->state == ST_ACTIVE && s->tr && s->tr->session) {
      if (s->deferred) {
        s->deferred = false;
        nghttp2_session_resume_data(s->tr->session, s->id);
      }
      gc_transport_flush(s->tr);
    }
  } else {
    rc = grpc_cstream_send(s, a->req, a->req_len, true);
  }
  if (rc) grpc_cstream_cancel(s);
  return rc;
}

/* Opens every queued call, with one socket write per connection for the whole batch. */
void gc_run_calls(grpc_client_t *gc, acall_t *list) {
  if (!list) return;
  gc->batch = true;
  while (list) {
    acall_t *a = list;
    list = a->next;
    a->next = NULL;
    int rc = acall_open(gc, a);
    if (rc) {
      grpc_close_info_t info = {
          .err = rc, .status = rc == CETCD_ECANCELED ? 1 : 13, .message = cetcd_strerror(rc), .sent = false};
      acall_complete(a, &info);
    }
  }
  gc->batch = false;
  gc_flush_deferred(gc);
}

/* Queues call a for the I/O thread (any thread but the I/O thread). Returns 0 or
 * CETCD_ECANCELED. */
static int acall_enqueue(grpc_client_t *gc, acall_t *a) {
  a->next = NULL;
  pthread_mutex_lock(&gc->mu);
  if (gc->closing) {
    pthread_mutex_unlock(&gc->mu);
    return CETCD_ECANCELED;
  }
  if (gc->calls_tail)
    gc->calls_tail->next = a;
  else
    gc->calls = a;
  gc->calls_tail = a;
  if (!gc->wake_pending) {
    gc->wake_pending = true;
    uv_async_send(&gc->wake); /* under mu: the handle cannot be closed meanwhile */
  }
  pthread_mutex_unlock(&gc->mu);
  return 0;
}

int grpc_client_unary_async(grpc_client_t *gc, const char *path, int channel, uint64_t timeout_ms,
                            uint8_t *framed, size_t framed_len, grpc_unary_done_fn done, void *ctx) {
  if (!framed || framed_len < GRPC_FRAME_PREFIX || framed_len - GRPC_FRAME_PREFIX > UINT32_MAX || !done ||
      !path || channel < -1 || channel >= (int)gc->n_eps) {
    gc->mem.free_fn(framed);
    return CETCD_EINVAL;
  }
  acall_t *a = gc->mem.malloc_fn(sizeof(*a));
  if (!a) {
    gc->mem.free_fn(framed);
    return CETCD_ENOMEM;
  }
  *a = (acall_t){.gc = gc,
                 .path = path,
                 .channel = channel,
                 .timeout_ms = timeout_ms,
                 .req = framed,
                 .req_len = framed_len,
                 .req_owned = true,
                 .heap = true,
                 .done = done,
                 .ctx = ctx};
  int rc;
  if (grpc_client_on_io_thread(gc)) {
    rc = acall_open(gc, a); /* the write is flushed after the current callback's batch */
  } else {
    rc = acall_enqueue(gc, a);
    if (rc) gc->mem.free_fn(a->req);
  }
  if (rc) gc->mem.free_fn(a);
  return rc;
}

/* ---- blocking unary calls --------------------------------------------------------------- */

typedef struct unary_ctx {
  acall_t a;
  grpc_unary_t *u;
  sem_t done; /* posted once by the completion: wakes only this caller, takes no lock */
} unary_ctx_t;

static void unary_done(void *ctx, const grpc_close_info_t *info, uint8_t *resp, size_t resp_len) {
  unary_ctx_t *c = ctx;
  grpc_unary_t *u = c->u;
  u->err = info->err;
  u->status = info->status;
  u->sent = info->sent;
  snprintf(u->message, sizeof u->message, "%s", info->message);
  u->resp = resp;
  u->resp_len = resp_len;
  /* glibc's sem_post touches nothing after the post that a waiter returning and
   * destroying the semaphore could invalidate (the waiter's stack frame goes with it) */
  sem_post(&c->done);
}

int grpc_client_unary(grpc_client_t *gc, grpc_unary_t *u) {
  u->resp = NULL;
  u->resp_len = 0;
  u->err = 0;
  u->status = 0;
  u->sent = false;
  u->message[0] = 0;
  if (grpc_client_on_io_thread(gc)) {
    u->err = CETCD_EINVAL;
    snprintf(u->message, sizeof u->message, "blocking call from a libcetcd callback");
    return u->err;
  }
  unary_ctx_t c = {.u = u};
  c.a = (acall_t){.gc = gc,
                  .path = u->path,
                  .channel = u->channel,
                  .timeout_ms = u->timeout_ms,
                  .req = (uint8_t *)u->req,
                  .req_len = u->req_len,
                  .done = unary_done,
                  .ctx = &c};
  sem_init(&c.done, 0, 0);
  int rc = acall_enqueue(gc, &c.a);
  if (rc) {
    sem_destroy(&c.done);
    u->err = rc;
    snprintf(u->message, sizeof u->message, "%s", cetcd_strerror(rc));
    return rc;
  }
  while (sem_wait(&c.done) != 0) {
  } /* EINTR only: a signal handler ran */
  sem_destroy(&c.done);
  return u->err;
}
