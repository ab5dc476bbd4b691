/* gRPC client transport, failover (see grpc_client.h): the endpoints, and the channels
 * that keep a connection to one of them (the failover channel moves on to the next
 * endpoint, with capped exponential backoff after each full round). */
#include <stdio.h>

#include "cetcd/errors.h"
#include "client/transport/transport_int.h"

/* Parses one endpoint string into e. Returns 0, CETCD_EINVAL or CETCD_ENOMEM. */
int gc_parse_endpoint(grpc_client_t *gc, const char *s, endpoint_t *e) {
  if (!s) return CETCD_EINVAL;
  e->tls = gc->tls_default;
  if (!strncmp(s, "http://", 7)) {
    s += 7;
    e->tls = false;
  } else if (!strncmp(s, "https://", 8)) {
    s += 8;
    e->tls = true;
    if (!gc->tls_ops) return CETCD_EINVAL; /* no TLS settings given */
  } else if (strstr(s, "://")) {
    return CETCD_EINVAL; /* unix sockets are not supported */
  }
  size_t n = strlen(s);
  while (n && s[n - 1] == '/') n--;
  if (!n) return CETCD_EINVAL;
  const char *hs, *he, *colon;
  if (s[0] == '[') {
    he = memchr(s, ']', n);
    if (!he || he + 1 >= s + n || he[1] != ':') return CETCD_EINVAL;
    hs = s + 1;
    colon = he + 1;
  } else {
    colon = NULL;
    for (size_t i = 0; i < n; i++)
      if (s[i] == ':') colon = s + i;
    if (!colon) return CETCD_EINVAL;
    hs = s;
    he = colon;
  }
  const char *ps = colon + 1;
  size_t plen = (size_t)(s + n - ps);
  if (!plen || plen > 5 || he == hs) return CETCD_EINVAL;
  for (size_t i = 0; i < plen; i++)
    if (ps[i] < '0' || ps[i] > '9') return CETCD_EINVAL;
  e->hostport = gc_strndup(gc, s, n);
  e->host = gc_strndup(gc, hs, (size_t)(he - hs));
  e->port = gc_strndup(gc, ps, plen);
  if (!e->hostport || !e->host || !e->port) return CETCD_ENOMEM;
  return 0;
}

void gc_free_endpoints(grpc_client_t *gc) {
  for (size_t i = 0; gc->eps && i < gc->n_eps; i++) {
    gc->mem.free_fn(gc->eps[i].hostport);
    gc->mem.free_fn(gc->eps[i].host);
    gc->mem.free_fn(gc->eps[i].port);
  }
  gc->mem.free_fn(gc->eps);
}

static void channel_timer_cb(uv_timer_t *t) {
  channel_t *ch = t->data;
  if (ch->gc->stopping) return;
  if (ch->backing_off) {
    ch->backing_off = false;
    if (ch->pending || ch->want) gc_channel_kick(ch);
    return;
  }
  /* dial timeout */
  transport_t *tr = ch->tr;
  if (tr && !tr->ready) gc_transport_fail(tr, "dial timeout");
}

/* Ensures ch is connected or connecting if it has work. */
void gc_channel_kick(channel_t *ch) {
  grpc_client_t *gc = ch->gc;
  if (gc->stopping || ch->tr || ch->backing_off) return;
  gc_channel_dial(ch);
  if (ch->tr && !ch->tr->ready)
    uv_timer_start(&ch->timer, channel_timer_cb, (uint64_t)gc->dial_timeout_ms, 0);
}

static void set_ready(grpc_client_t *gc, bool ready) {
  pthread_mutex_lock(&gc->mu);
  gc->ready = ready;
  gc->current = gc->channels[0].ep;
  pthread_cond_broadcast(&gc->cond);
  pthread_mutex_unlock(&gc->mu);
}

void gc_channel_on_ready(channel_t *ch) {
  uv_timer_stop(&ch->timer);
  ch->fails_in_round = 0;
  ch->backoff_ms = 0;
  ch->last_error[0] = 0;
  ch->want = false;
  transport_t *tr = ch->tr;
  while (ch->pending && ch->tr == tr && !tr->failed) gc_stream_submit(tr, ch->pending);
  if (ch->tr == tr && !tr->failed) gc_transport_flush(tr);
  if (ch->fixed < 0) set_ready(ch->gc, true);
}

void gc_channel_on_failure(channel_t *ch, const char *why) {
  grpc_client_t *gc = ch->gc;
  uv_timer_stop(&ch->timer);
  snprintf(ch->last_error, sizeof ch->last_error, "%s: %s", gc->eps[ch->ep].hostport, why);
  if (gc->stopping) return;
  if (ch->fixed >= 0) {
    /* dedicated: fail waiting streams at once */
    char m[220];
    snprintf(m, sizeof m, "endpoint unavailable: %s", ch->last_error);
    while (ch->pending) gc_stream_finish(ch->pending, CETCD_EUNAVAILABLE, 14, m, false);
    return;
  }
  ch->ep = (ch->ep + 1) % gc->n_eps;
  ch->fails_in_round++;
  set_ready(gc, false);
  if (ch->fails_in_round >= gc->n_eps) {
    ch->fails_in_round = 0;
    ch->backoff_ms = ch->backoff_ms ? ch->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (ch->backoff_ms > BACKOFF_MAX_MS) ch->backoff_ms = BACKOFF_MAX_MS;
    ch->backing_off = true;
    uv_timer_start(&ch->timer, channel_timer_cb, ch->backoff_ms, 0);
    return;
  }
  if (ch->pending || ch->want) gc_channel_kick(ch);
}

void grpc_client_failover(grpc_client_t *gc) {
  channel_t *ch = &gc->channels[0];
  if (gc->n_eps < 2 || !ch->tr) return;
  gc_transport_fail(ch->tr, "server unavailable");
}

size_t grpc_client_n_endpoints(const grpc_client_t *gc) { return gc->n_eps; }

const char *grpc_client_endpoint(const grpc_client_t *gc, size_t k) { return gc->eps[k].hostport; }

size_t grpc_client_current(const grpc_client_t *gc) {
  grpc_client_t *m = (grpc_client_t *)gc;
  pthread_mutex_lock(&m->mu);
  size_t c = m->current;
  pthread_mutex_unlock(&m->mu);
  return c;
}

int grpc_client_find_endpoint(const grpc_client_t *gc, const char *s) {
  if (!s) return -1;
  if (!strncmp(s, "http://", 7))
    s += 7;
  else if (!strncmp(s, "https://", 8))
    s += 8;
  size_t n = strlen(s);
  while (n && s[n - 1] == '/') n--;
  for (size_t i = 0; i < gc->n_eps; i++)
    if (strlen(gc->eps[i].hostport) == n && !memcmp(gc->eps[i].hostport, s, n)) return (int)i;
  return -1;
}
