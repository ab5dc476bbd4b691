/* libcetcd leases: unary lease calls and automatic keep-alive over one shared stream. */
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "client/client_int.h"

#define LEASE_PATH(m) "/etcdserverpb.Lease/" m

enum {
  KA_TICK_MS = 100,
  KA_MIN_INTERVAL_MS = 500,
  KA_REOPEN_DELAY_MS = 200,
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ===================================================================================== */
/* Unary calls                                                                           */
/* ===================================================================================== */

int cetcd_lease_grant(cetcd_client_t *c, int64_t ttl, int64_t id, int64_t *id_out, int64_t *ttl_out) {
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__LeaseGrantRequest r = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
  r.ttl = ttl;
  r.id = id;
  ProtobufCMessage *m;
  int rc = cc_unary(c, LEASE_PATH("LeaseGrant"), -1, &r.base, &etcdserverpb__lease_grant_response__descriptor,
                    false, 0, &m);
  if (rc) return rc;
  Etcdserverpb__LeaseGrantResponse *g = (Etcdserverpb__LeaseGrantResponse *)m;
  if (g->error && *g->error) {
    rc = cc_error(CETCD_EGRPC, 0, g->error);
  } else {
    if (id_out) *id_out = g->id;
    if (ttl_out) *ttl_out = g->ttl;
  }
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return rc;
}

int cetcd_lease_revoke(cetcd_client_t *c, int64_t id) {
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__LeaseRevokeRequest r = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
  r.id = id;
  ProtobufCMessage *m;
  int rc = cc_unary(c, LEASE_PATH("LeaseRevoke"), -1, &r.base,
                    &etcdserverpb__lease_revoke_response__descriptor, false, 0, &m);
  if (rc) return rc;
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return 0;
}

void cetcd_lease_ttl_free(cetcd_lease_ttl_t *r) {
  if (!r) return;
  for (size_t i = 0; r->keys && i < r->n_keys; i++) cc_free(r->keys[i]);
  cc_free(r->keys);
  cc_free(r->key_lens);
  cc_free(r);
}

int cetcd_lease_timetolive(cetcd_client_t *c, int64_t id, bool with_keys, cetcd_lease_ttl_t **out) {
  if (!out) return cc_error(CETCD_EINVAL, 0, NULL);
  *out = NULL;
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__LeaseTimeToLiveRequest r = ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
  r.id = id;
  r.keys = with_keys;
  ProtobufCMessage *m;
  int rc = cc_unary(c, LEASE_PATH("LeaseTimeToLive"), -1, &r.base,
                    &etcdserverpb__lease_time_to_live_response__descriptor, true, 0, &m);
  if (rc) return rc;
  Etcdserverpb__LeaseTimeToLiveResponse *t = (Etcdserverpb__LeaseTimeToLiveResponse *)m;
  cetcd_lease_ttl_t *o = cc_calloc(1, sizeof(*o));
  if (!o) goto oom;
  cc_header(&o->header, t->header);
  o->id = t->id;
  o->ttl = t->ttl;
  o->granted_ttl = t->grantedttl;
  if (t->n_keys) {
    o->keys = cc_calloc(t->n_keys, sizeof(char *));
    o->key_lens = cc_calloc(t->n_keys, sizeof(size_t));
    if (!o->keys || !o->key_lens) goto oom;
    for (size_t i = 0; i < t->n_keys; i++) {
      o->keys[i] = cc_memdup(t->keys[i].data, t->keys[i].len);
      if (!o->keys[i]) goto oom;
      o->key_lens[i] = t->keys[i].len;
      o->n_keys = i + 1;
    }
  }
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  *out = o;
  return 0;
oom:
  if (o) o->n_keys = t->n_keys; /* keys[] is zeroed past the filled part */
  cetcd_lease_ttl_free(o);
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return cc_error(CETCD_ENOMEM, 0, NULL);
}

int cetcd_lease_leases(cetcd_client_t *c, int64_t **ids, size_t *n) {
  if (!ids || !n) return cc_error(CETCD_EINVAL, 0, NULL);
  *ids = NULL;
  *n = 0;
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__LeaseLeasesRequest r = ETCDSERVERPB__LEASE_LEASES_REQUEST__INIT;
  ProtobufCMessage *m;
  int rc = cc_unary(c, LEASE_PATH("LeaseLeases"), -1, &r.base,
                    &etcdserverpb__lease_leases_response__descriptor, true, 0, &m);
  if (rc) return rc;
  Etcdserverpb__LeaseLeasesResponse *l = (Etcdserverpb__LeaseLeasesResponse *)m;
  if (l->n_leases) {
    int64_t *a = cc_malloc(l->n_leases * sizeof(int64_t));
    if (!a) {
      protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
      return cc_error(CETCD_ENOMEM, 0, NULL);
    }
    for (size_t i = 0; i < l->n_leases; i++) a[i] = l->leases[i]->id;
    *ids = a;
    *n = l->n_leases;
  }
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return 0;
}

int cetcd_lease_keepalive_once(cetcd_client_t *c, int64_t id, int64_t *ttl_out) {
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  /* one request on a half-closed LeaseKeepAlive stream: the server answers, then ends */
  Etcdserverpb__LeaseKeepAliveRequest r = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
  r.id = id;
  ProtobufCMessage *m;
  int rc = cc_unary(c, LEASE_PATH("LeaseKeepAlive"), -1, &r.base,
                    &etcdserverpb__lease_keep_alive_response__descriptor, true, 0, &m);
  if (rc) return rc;
  int64_t ttl = ((Etcdserverpb__LeaseKeepAliveResponse *)m)->ttl;
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  if (ttl <= 0) return cc_error(CETCD_ELEASENOTFOUND, 0, "etcdserver: requested lease not found");
  if (ttl_out) *ttl_out = ttl;
  return 0;
}

/* ===================================================================================== */
/* Automatic keep-alive                                                                  */
/* ===================================================================================== */

struct cetcd_keepalive {
  cetcd_client_t *c;
  int64_t id;
  cetcd_keepalive_lost_cb on_lost;
  void *ctx;
  _Atomic int64_t ttl;
  _Atomic bool lost;
  /* I/O thread */
  bool listed;
  uint64_t next_send;
  uint64_t expires_at; /* 0 = unknown (before the first answer) */
  struct cetcd_keepalive *prev, *next;
  /* first answer hand-shake (under c->ka_mu) */
  pthread_cond_t cond;
  bool first_done;
  int first_rc;
};

struct ka_mgr {
  cetcd_client_t *c;
  grpc_cstream_t *s;
  uv_timer_t timer;
  bool timer_on;
  uint64_t reopen_at;
  cetcd_keepalive_t *list;
};

/* Completes the start hand-shake with rc; returns true if this call completed it. */
static bool ka_first(cetcd_keepalive_t *ka, int rc) {
  bool first = false;
  pthread_mutex_lock(&ka->c->ka_mu);
  if (!ka->first_done) {
    ka->first_done = true;
    ka->first_rc = rc;
    first = true;
    pthread_cond_broadcast(&ka->cond);
  }
  pthread_mutex_unlock(&ka->c->ka_mu);
  return first;
}

static void ka_unlist(ka_mgr_t *m, cetcd_keepalive_t *ka) {
  if (!ka->listed) return;
  if (ka->prev)
    ka->prev->next = ka->next;
  else
    m->list = ka->next;
  if (ka->next) ka->next->prev = ka->prev;
  ka->prev = ka->next = NULL;
  ka->listed = false;
  if (!m->list && m->timer_on) {
    uv_timer_stop(&m->timer);
    m->timer_on = false;
  }
}

/* Reports the loss of ka (once) and stops renewing it. */
static void ka_lose(ka_mgr_t *m, cetcd_keepalive_t *ka, int err) {
  ka_unlist(m, ka);
  atomic_store(&ka->ttl, 0);
  atomic_store(&ka->lost, true);
  /* a lease lost before start returned is reported by start itself */
  if (!ka_first(ka, err) && ka->on_lost) ka->on_lost(ka->ctx, ka->id, err);
}

static int ka_on_message(void *ctx, grpc_cstream_t *s, const uint8_t *msg, size_t len) {
  (void)s;
  ka_mgr_t *m = ctx;
  Etcdserverpb__LeaseKeepAliveResponse *r =
      etcdserverpb__lease_keep_alive_response__unpack(&cc_pb_alloc, len, msg);
  if (!r) return 0; /* ignore a bad answer; expiry tracking covers it */
  uint64_t now = now_ms();
  for (cetcd_keepalive_t *ka = m->list, *nx; ka; ka = nx) {
    nx = ka->next;
    if (ka->id != r->id) continue;
    if (r->ttl <= 0) {
      ka_lose(m, ka, CETCD_ELEASENOTFOUND);
      continue;
    }
    atomic_store(&ka->ttl, r->ttl);
    ka->expires_at = now + (uint64_t)r->ttl * 1000u;
    uint64_t iv = (uint64_t)r->ttl * 1000u / 3;
    ka->next_send = now + (iv < KA_MIN_INTERVAL_MS ? KA_MIN_INTERVAL_MS : iv);
    ka_first(ka, 0);
  }
  protobuf_c_message_free_unpacked(&r->base, &cc_pb_alloc);
  return 0;
}

static void ka_on_close(void *ctx, grpc_cstream_t *s, const grpc_close_info_t *info) {
  (void)s, (void)info;
  ka_mgr_t *m = ctx;
  m->s = NULL;
  /* requests in flight may be lost: resend everything once the stream is back */
  uint64_t now = now_ms();
  m->reopen_at = now + KA_REOPEN_DELAY_MS;
  for (cetcd_keepalive_t *ka = m->list; ka; ka = ka->next) ka->next_send = m->reopen_at;
}

static const grpc_cstream_cbs_t ka_cbs = {ka_on_message, ka_on_close};

/* Sends due renewals and detects expiry (I/O thread). */
static void ka_tick(ka_mgr_t *m) {
  uint64_t now = now_ms();
  for (cetcd_keepalive_t *ka = m->list, *nx; ka; ka = nx) {
    nx = ka->next;
    if (ka->expires_at && now >= ka->expires_at) ka_lose(m, ka, CETCD_ETIMEOUT);
  }
  if (!m->list) return;
  if (!m->s) {
    if (now < m->reopen_at) return;
    m->s = grpc_cstream_open(m->c->gc, LEASE_PATH("LeaseKeepAlive"), -1, 0, &ka_cbs, m);
    if (!m->s) {
      m->reopen_at = now + KA_REOPEN_DELAY_MS;
      return;
    }
  }
  for (cetcd_keepalive_t *ka = m->list; ka && m->s; ka = ka->next) {
    if (now < ka->next_send) continue;
    Etcdserverpb__LeaseKeepAliveRequest r = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    r.id = ka->id;
    uint8_t buf[16];
    size_t n = etcdserverpb__lease_keep_alive_request__pack(&r, buf);
    if (grpc_cstream_send(m->s, buf, n, false) != 0) break; /* retried next tick */
    /* if no answer comes, retry after a while (the expiry check bounds it) */
    ka->next_send = now + KA_MIN_INTERVAL_MS * 2;
  }
}

static void ka_timer_cb(uv_timer_t *t) { ka_tick(t->data); }

typedef struct ka_task {
  cetcd_client_t *c;
  cetcd_keepalive_t *ka;
  ka_mgr_t *fresh; /* a manager to install if none yet */
} ka_task_t;

static void task_add(grpc_client_t *gc, void *arg) {
  ka_task_t *t = arg;
  cetcd_client_t *c = t->c;
  if (!c->ka) {
    ka_mgr_t *m = t->fresh;
    t->fresh = NULL;
    m->c = c;
    uv_timer_init(grpc_client_loop(gc), &m->timer);
    m->timer.data = m;
    pthread_mutex_lock(&c->ka_mu);
    c->ka = m;
    pthread_mutex_unlock(&c->ka_mu);
  }
  ka_mgr_t *m = c->ka;
  cetcd_keepalive_t *ka = t->ka;
  ka->next = m->list;
  if (m->list) m->list->prev = ka;
  m->list = ka;
  ka->listed = true;
  ka->next_send = 0;
  if (!m->timer_on) {
    uv_timer_start(&m->timer, ka_timer_cb, KA_TICK_MS, KA_TICK_MS);
    m->timer_on = true;
  }
  ka_tick(m);
}

static void task_remove(grpc_client_t *gc, void *arg) {
  (void)gc;
  cetcd_keepalive_t *ka = arg;
  if (ka->c->ka) ka_unlist(ka->c->ka, ka);
}

int cetcd_lease_keepalive_start(cetcd_client_t *c, int64_t id, cetcd_keepalive_lost_cb on_lost, void *ctx,
                                cetcd_keepalive_t **out) {
  if (!out) return cc_error(CETCD_EINVAL, 0, NULL);
  *out = NULL;
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  if (grpc_client_on_io_thread(c->gc))
    return cc_error(CETCD_EINVAL, 0, "blocking call from a libcetcd callback");
  cetcd_keepalive_t *ka = cc_calloc(1, sizeof(*ka));
  if (!ka) return cc_error(CETCD_ENOMEM, 0, NULL);
  ka_task_t t = {.c = c, .ka = ka};
  pthread_mutex_lock(&c->ka_mu);
  bool need_mgr = c->ka == NULL;
  pthread_mutex_unlock(&c->ka_mu);
  if (need_mgr) {
    t.fresh = cc_calloc(1, sizeof(ka_mgr_t));
    if (!t.fresh) {
      cc_free(ka);
      return cc_error(CETCD_ENOMEM, 0, NULL);
    }
  }
  ka->c = c;
  ka->id = id;
  ka->on_lost = on_lost;
  ka->ctx = ctx;
  pthread_cond_init(&ka->cond, NULL);
  int rc = grpc_client_run_sync(c->gc, task_add, &t);
  cc_free(t.fresh); /* unused when another thread installed a manager first */
  if (rc) {
    pthread_cond_destroy(&ka->cond);
    cc_free(ka);
    return cc_error(rc, 0, NULL);
  }
  uint64_t deadline = c->request_timeout_ms ? now_ms() + c->request_timeout_ms : 0;
  pthread_mutex_lock(&c->ka_mu);
  while (!ka->first_done) {
    uint64_t now = now_ms();
    if (deadline && now >= deadline) break;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t d = deadline ? deadline - now : 1000;
    ts.tv_sec += (time_t)(d / 1000);
    ts.tv_nsec += (long)(d % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&ka->cond, &c->ka_mu, &ts);
  }
  bool done = ka->first_done;
  rc = done ? ka->first_rc : CETCD_ETIMEOUT;
  pthread_mutex_unlock(&c->ka_mu);
  if (rc) {
    grpc_client_run_sync(c->gc, task_remove, ka);
    pthread_cond_destroy(&ka->cond);
    cc_free(ka);
    return cc_error(rc, 0, rc == CETCD_ELEASENOTFOUND ? "etcdserver: requested lease not found" : NULL);
  }
  *out = ka;
  return 0;
}

int64_t cetcd_lease_keepalive_ttl(const cetcd_keepalive_t *ka) {
  return atomic_load(&((cetcd_keepalive_t *)ka)->ttl);
}

bool cetcd_lease_keepalive_lost(const cetcd_keepalive_t *ka) {
  return atomic_load(&((cetcd_keepalive_t *)ka)->lost);
}

void cetcd_lease_keepalive_stop(cetcd_keepalive_t *ka) {
  if (!ka) return;
  grpc_client_run_sync(ka->c->gc, task_remove, ka);
  pthread_cond_destroy(&ka->cond);
  cc_free(ka);
}

static void mgr_closed(uv_handle_t *h) {
  ka_mgr_t *m = (ka_mgr_t *)((char *)h - offsetof(ka_mgr_t, timer));
  cc_free(m);
}

static void task_shutdown(grpc_client_t *gc, void *arg) {
  (void)gc;
  cetcd_client_t *c = arg;
  ka_mgr_t *m = c->ka;
  if (!m) return;
  pthread_mutex_lock(&c->ka_mu);
  c->ka = NULL;
  pthread_mutex_unlock(&c->ka_mu);
  while (m->list) ka_unlist(m, m->list);
  if (m->s) grpc_cstream_cancel(m->s);
  m->s = NULL;
  uv_close((uv_handle_t *)&m->timer, mgr_closed);
}

void cc_ka_shutdown(cetcd_client_t *c) { grpc_client_run_sync(c->gc, task_shutdown, c); }
