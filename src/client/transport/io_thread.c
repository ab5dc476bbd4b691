/* gRPC client transport, the I/O thread (see grpc_client.h): its loop, the hand-off of
 * tasks and queued calls from other threads, and the client's lifecycle. */
#include <signal.h>

#include "cetcd/errors.h"
#include "client/transport/transport_int.h"

/* The client whose I/O thread this is (NULL on other threads). */
static _Thread_local grpc_client_t *tl_io_client;

static void run_tasks(grpc_client_t *gc) {
  for (;;) {
    pthread_mutex_lock(&gc->mu);
    task_t *t = gc->tasks;
    if (t) {
      gc->tasks = t->next;
      if (!gc->tasks) gc->tasks_tail = NULL;
    }
    pthread_mutex_unlock(&gc->mu);
    if (!t) return;
    t->fn(gc, t->arg);
    pthread_mutex_lock(&gc->mu);
    t->done = true;
    pthread_cond_broadcast(&gc->cond);
    pthread_mutex_unlock(&gc->mu);
  }
}

/* Flushes every transport whose flush was deferred by the batch. */
void gc_flush_deferred(grpc_client_t *gc) {
  for (size_t i = 0; i <= gc->n_eps; i++) {
    transport_t *tr = gc->channels[i].tr;
    if (tr && tr->need_flush) gc_transport_flush(tr);
  }
  for (transport_t *tr = gc->draining, *nx; tr; tr = nx) {
    nx = tr->next_draining;
    if (tr->need_flush) gc_transport_flush(tr);
  }
}

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void shutdown_all(grpc_client_t *gc) {
  gc->stopping = true;
  for (size_t i = 0; i <= gc->n_eps; i++) {
    channel_t *ch = &gc->channels[i];
    uv_timer_stop(&ch->timer);
    while (ch->pending) gc_stream_finish(ch->pending, CETCD_ECANCELED, 1, "client closed", false);
    if (ch->tr) {
      while (ch->tr->active) gc_stream_finish(ch->tr->active, CETCD_ECANCELED, 1, "client closed", true);
      gc_transport_fail(ch->tr, "client closed");
    }
  }
  while (gc->draining) {
    while (gc->draining->active)
      gc_stream_finish(gc->draining->active, CETCD_ECANCELED, 1, "client closed", true);
    gc_transport_fail(gc->draining, "client closed");
  }
  for (size_t i = 0; i <= gc->n_eps; i++) uv_close((uv_handle_t *)&gc->channels[i].timer, NULL);
  uv_close((uv_handle_t *)&gc->wake, NULL);
}

static void wake_cb(uv_async_t *a) {
  grpc_client_t *gc = a->data;
  pthread_mutex_lock(&gc->mu);
  gc->wake_pending = false;
  acall_t *calls = gc->calls;
  gc->calls = gc->calls_tail = NULL;
  pthread_mutex_unlock(&gc->mu);
  gc_run_calls(gc, calls);
  run_tasks(gc);
  pthread_mutex_lock(&gc->mu);
  bool stop = gc->closing && !gc->tasks && !gc->calls;
  pthread_mutex_unlock(&gc->mu);
  if (stop && !gc->stopping) shutdown_all(gc);
}

static void io_main(void *arg) {
  grpc_client_t *gc = arg;
  tl_io_client = gc;
  /* a write to a connection the peer closed (e.g. after refusing a TLS handshake) must
   * give EPIPE, not kill the application: SIGPIPE is thread-directed, so blocking it on
   * this thread suffices and leaves the application's own handling alone */
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
  uv_run(&gc->loop, UV_RUN_DEFAULT);
  /* anything left (should be nothing) gets closed */
  uv_walk(&gc->loop, walk_close, NULL);
  uv_run(&gc->loop, UV_RUN_DEFAULT);
}

void grpc_client_batch_begin(grpc_client_t *gc) { gc->batch = true; }

void grpc_client_batch_end(grpc_client_t *gc) {
  gc->batch = false;
  gc_flush_deferred(gc);
}

bool grpc_client_on_io_thread(const grpc_client_t *gc) { return tl_io_client == gc; }

int grpc_client_run_sync(grpc_client_t *gc, void (*fn)(grpc_client_t *gc, void *arg), void *arg) {
  if (grpc_client_on_io_thread(gc)) {
    if (gc->stopping) return CETCD_ECANCELED;
    fn(gc, arg);
    return 0;
  }
  task_t t = {.fn = fn, .arg = arg};
  pthread_mutex_lock(&gc->mu);
  if (gc->closing) {
    pthread_mutex_unlock(&gc->mu);
    return CETCD_ECANCELED;
  }
  if (gc->tasks_tail)
    gc->tasks_tail->next = &t;
  else
    gc->tasks = &t;
  gc->tasks_tail = &t;
  if (!gc->wake_pending) {
    gc->wake_pending = true;
    uv_async_send(&gc->wake); /* under mu: the handle cannot be closed meanwhile */
  }
  while (!t.done) pthread_cond_wait(&gc->cond, &gc->mu);
  pthread_mutex_unlock(&gc->mu);
  return 0;
}

static void *ng_malloc(size_t n, void *ud) { return ((grpc_client_t *)ud)->mem.malloc_fn(n); }
static void ng_free(void *p, void *ud) { ((grpc_client_t *)ud)->mem.free_fn(p); }
static void *ng_calloc(size_t a, size_t b, void *ud) {
  if (b && a > SIZE_MAX / b) return NULL;
  void *p = ((grpc_client_t *)ud)->mem.malloc_fn(a * b);
  if (p) memset(p, 0, a * b);
  return p;
}
static void *ng_realloc(void *p, size_t n, void *ud) { return ((grpc_client_t *)ud)->mem.realloc_fn(p, n); }

static void kick_primary(grpc_client_t *gc, void *arg) {
  gc->channels[0].want = arg != NULL;
  if (arg) gc_channel_kick(&gc->channels[0]);
}

int grpc_client_wait_ready(grpc_client_t *gc, int timeout_ms) {
  if (grpc_client_on_io_thread(gc)) return CETCD_EINVAL;
  uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
  int rc = grpc_client_run_sync(gc, kick_primary, gc);
  if (rc) return rc;
  pthread_mutex_lock(&gc->mu);
  while (!gc->ready && !gc->closing) {
    uint64_t now = now_ms();
    if (now >= deadline) break;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wait = deadline - now;
    ts.tv_sec += (time_t)(wait / 1000);
    ts.tv_nsec += (long)(wait % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&gc->cond, &gc->mu, &ts);
  }
  bool ok = gc->ready;
  pthread_mutex_unlock(&gc->mu);
  if (!ok) grpc_client_run_sync(gc, kick_primary, NULL); /* stop redialing on our behalf */
  return ok ? 0 : CETCD_EUNAVAILABLE;
}

int grpc_client_new(const grpc_client_config_t *cfg, grpc_client_t **out) {
  *out = NULL;
  if (!cfg->n_endpoints || !cfg->endpoints) return CETCD_EINVAL;
  grpc_client_t *gc = cfg->mem.malloc_fn(sizeof(*gc));
  if (!gc) return CETCD_ENOMEM;
  memset(gc, 0, sizeof(*gc));
  gc->mem = cfg->mem;
  gc->tls_ops = cfg->tls_ctx ? cfg->tls_ops : NULL;
  gc->tls_ctx = cfg->tls_ctx;
  gc->tls_default = gc->tls_ops && cfg->tls_default;
  gc->dial_timeout_ms = cfg->dial_timeout_ms > 0 ? cfg->dial_timeout_ms : 5000;
  gc->max_recv = cfg->max_recv_bytes;
  int rc = 0;
  gc->eps = gc->mem.malloc_fn(sizeof(endpoint_t) * cfg->n_endpoints);
  gc->channels = gc->mem.malloc_fn(sizeof(channel_t) * (cfg->n_endpoints + 1));
  if (!gc->eps || !gc->channels) {
    rc = CETCD_ENOMEM;
    goto fail_eps;
  }
  memset(gc->eps, 0, sizeof(endpoint_t) * cfg->n_endpoints);
  memset(gc->channels, 0, sizeof(channel_t) * (cfg->n_endpoints + 1));
  gc->n_eps = cfg->n_endpoints;
  for (size_t i = 0; i < gc->n_eps; i++) {
    rc = gc_parse_endpoint(gc, cfg->endpoints[i], &gc->eps[i]);
    if (rc) goto fail_eps;
  }
  gc->ngmem = (nghttp2_mem){gc, ng_malloc, ng_free, ng_calloc, ng_realloc};
  rc = gc_stream_callbacks_new(&gc->cbs);
  if (rc) goto fail_eps;
  pthread_mutex_init(&gc->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_cond_init(&gc->cond, &ca);
  pthread_condattr_destroy(&ca);
  rc = uv_loop_init(&gc->loop);
  if (rc < 0) goto fail_sync;
  rc = uv_async_init(&gc->loop, &gc->wake, wake_cb);
  if (rc < 0) goto fail_loop;
  gc->wake.data = gc;
  for (size_t i = 0; i <= gc->n_eps; i++) {
    channel_t *ch = &gc->channels[i];
    ch->gc = gc;
    ch->fixed = (int)i - 1;
    ch->ep = i ? i - 1 : 0;
    uv_timer_init(&gc->loop, &ch->timer);
    ch->timer.data = ch;
    ch->timer_inited = true;
  }
  rc = uv_thread_create(&gc->thread, io_main, gc);
  if (rc < 0) goto fail_handles;
  *out = gc;
  return 0;

fail_handles:
  uv_walk(&gc->loop, walk_close, NULL);
  uv_run(&gc->loop, UV_RUN_DEFAULT);
fail_loop:
  uv_loop_close(&gc->loop);
fail_sync:
  pthread_mutex_destroy(&gc->mu);
  pthread_cond_destroy(&gc->cond);
  nghttp2_session_callbacks_del(gc->cbs);
fail_eps:
  gc_free_endpoints(gc);
  gc->mem.free_fn(gc->channels);
  gc->mem.free_fn(gc);
  return rc;
}

void grpc_client_free(grpc_client_t *gc) {
  if (!gc) return;
  pthread_mutex_lock(&gc->mu);
  gc->closing = true;
  pthread_cond_broadcast(&gc->cond);
  uv_async_send(&gc->wake);
  pthread_mutex_unlock(&gc->mu);
  uv_thread_join(&gc->thread);
  uv_loop_close(&gc->loop);
  pthread_mutex_destroy(&gc->mu);
  pthread_cond_destroy(&gc->cond);
  nghttp2_session_callbacks_del(gc->cbs);
  gc_free_endpoints(gc);
  gc->mem.free_fn(gc->channels);
  gc->mem.free_fn(gc->token);
  gc->mem.free_fn(gc);
}

/* Token hand-over to the I/O thread: the new copy in, the old one out. */
typedef struct token_swap {
  char *token;
} token_swap_t;

/* Installs a new token on the I/O thread. */
static void token_install(grpc_client_t *gc, void *arg) {
  token_swap_t *t = arg;
  char *old = gc->token;
  gc->token = t->token;
  t->token = old;
}

int grpc_client_set_token(grpc_client_t *gc, const char *token) {
  token_swap_t t = {NULL};
  if (token && !(t.token = gc_strndup(gc, token, strlen(token)))) return CETCD_ENOMEM;
  int rc = grpc_client_run_sync(gc, token_install, &t);
  gc->mem.free_fn(t.token); /* the old token, or ours when not installed */
  return rc;
}

struct uv_loop_s *grpc_client_loop(grpc_client_t *gc) {
  return &gc->loop;
}
