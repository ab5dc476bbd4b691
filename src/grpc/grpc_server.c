/* The server: method table, listeners, the per-iteration flush, shutdown and freeing. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "grpc/grpc_int.h"

enum { DEFAULT_MAX_RECV = 4 * 1024 * 1024, LISTEN_BACKLOG = 511 };

/* ============================== methods ============================== */

/* FNV-1a hash of a path. */
static uint64_t path_hash(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
  return h;
}

/* Inserts (or replaces) a method and its context in the open-addressing table; the table
 * has room. */
static void mt_insert(grpc_server_t *s, const grpc_method_t *m, void *ctx) {
  size_t n = strlen(m->path);
  for (size_t i = path_hash(m->path, n) & (s->mt_cap - 1);; i = (i + 1) & (s->mt_cap - 1)) {
    grpc_method_slot_t *slot = &s->mt[i];
    if (slot->m && strcmp(slot->m->path, m->path)) continue; /* another path */
    if (!slot->m) s->mt_len++; /* else a later registration replaces an earlier one */
    slot->m = m;
    slot->ctx = ctx;
    return;
  }
}

void grpc_server_add_methods(grpc_server_t *s, const grpc_method_t *methods, size_t n, void *ctx) {
  if ((s->mt_len + n) * 2 > s->mt_cap) {
    grpc_method_slot_t *old = s->mt;
    size_t old_cap = s->mt_cap;
    size_t cap = 64;
    while (cap < (s->mt_len + n) * 2) cap *= 2;
    s->mt = xcalloc(cap, sizeof(*s->mt));
    s->mt_cap = cap;
    s->mt_len = 0;
    for (size_t i = 0; i < old_cap; i++)
      if (old[i].m) mt_insert(s, old[i].m, old[i].ctx);
    free(old);
  }
  for (size_t i = 0; i < n; i++) mt_insert(s, &methods[i], ctx);
}

const grpc_method_t *grpc_server_find_method(grpc_server_t *s, const char *path, size_t len, void **ctx) {
  if (!s->mt_cap) return NULL;
  for (size_t i = path_hash(path, len) & (s->mt_cap - 1);; i = (i + 1) & (s->mt_cap - 1)) {
    const grpc_method_slot_t *slot = &s->mt[i];
    if (!slot->m) return NULL;
    if (!strncmp(slot->m->path, path, len) && slot->m->path[len] == 0) {
      *ctx = slot->ctx;
      return slot->m;
    }
  }
}

void grpc_server_unknown_method_msg(grpc_server_t *s, const char *path, char *out, size_t cap) {
  const char *slash = strrchr(path, '/');
  if (path[0] != '/' || slash == path) {
    snprintf(out, cap, "malformed method name: \"%s\"", path);
    return;
  }
  int svc_len = (int)(slash - path - 1);
  bool known = false;
  for (size_t i = 0; i < s->mt_cap && !known; i++) {
    const grpc_method_t *m = s->mt[i].m;
    known = m && !strncmp(m->path, path, (size_t)svc_len + 2);
  }
  if (known)
    snprintf(out, cap, "unknown method %s for service %.*s", slash + 1, svc_len, path + 1);
  else
    snprintf(out, cap, "unknown service %.*s", svc_len, path + 1);
}

void grpc_server_http(grpc_server_t *s, grpc_http_req_t *req, const char *method, const char *path,
                      const uint8_t *body, size_t len) {
  if (s->opts.http1) {
    s->opts.http1(s->opts.http1_ctx, req, method, path, body, len);
    return;
  }
  static const uint8_t text[] = "404 page not found\n";
  grpc_http_respond(req, 404, NULL, text, sizeof(text) - 1);
}

/* ============================== lifecycle ============================== */

grpc_server_t *grpc_server_new(uv_loop_t *loop, const grpc_server_opts_t *opts) {
  if (opts && opts->max_recv_msg_bytes > UINT32_MAX) return NULL;
  grpc_server_t *s = xcalloc(1, sizeof(*s));
  s->loop = loop;
  if (opts) s->opts = *opts;
  if (!s->opts.max_recv_msg_bytes) s->opts.max_recv_msg_bytes = DEFAULT_MAX_RECV;
  grpc_list_init(&s->conns);
  grpc_list_init(&s->dirty);
  grpc_list_init(&s->locals);
  grpc_list_init(&s->held);
  uv_prepare_init(loop, &s->prepare);
  uv_timer_init(loop, &s->deadline_timer);
  uv_timer_init(loop, &s->grace_timer);
  s->prepare.data = s->deadline_timer.data = s->grace_timer.data = s;
  uv_unref((uv_handle_t *)&s->prepare);
  s->rbuf = xmalloc(GRPC_RBUF_SIZE);
  grpc_session_init_callbacks(s);
  return s;
}

void grpc_server_flush(grpc_server_t *s) {
  while (!grpc_list_empty(&s->dirty)) {
    grpc_conn_t *c = GRPC_CONTAINER(s->dirty.next, grpc_conn_t, dirty);
    grpc_list_remove(&c->dirty);
    grpc_conn_flush(c);
  }
}

const uint64_t *grpc_server_read_counter(grpc_server_t *s) { return &s->reads; }

void grpc_server_on_prepare(uv_prepare_t *p) {
  grpc_server_flush(p->data);
  uv_prepare_stop(p);
}

/* libuv: a client connected. */
static void on_connection(uv_stream_t *l, int status) {
  grpc_server_t *s = l->data;
  if (status < 0) {
    LOGW("grpc: accept failed err=%s", uv_strerror(status));
    return;
  }
  grpc_conn_t *c = grpc_conn_new(s, true, NULL);
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  tls_ctx_t *tls = NULL;
  for (size_t i = 0; i < s->n_listeners; i++)
    if ((uv_stream_t *)s->listeners[i] == l) tls = s->listener_tls[i];
  if (uv_accept(l, (uv_stream_t *)&c->tcp) || s->shutting_down || (tls && grpc_conn_start_tls(c, tls)) ||
      grpc_conn_start(c))
    grpc_conn_close(c);
}

/* libuv: frees a listener handle after uv_close. */
static void on_listener_closed(uv_handle_t *h) {
  grpc_server_t *s = h->data;
  free(h);
  if (s) {
    s->pending_closes--;
    grpc_server_conn_gone(s);
  }
}

/* Resolves host (IP literal or name) and port into ss. Returns 0 or a negative code. */
static int resolve(uv_loop_t *loop, const char *host, int port, struct sockaddr_storage *ss) {
  char h[256];
  if (!host || !*host) host = "0.0.0.0";
  if (!strcmp(host, "localhost")) host = "127.0.0.1";
  size_t n = strlen(host);
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(h)) { /* "[::1]" */
    memcpy(h, host + 1, n - 2);
    h[n - 2] = 0;
    host = h;
  }
  if (!uv_ip4_addr(host, port, (struct sockaddr_in *)ss)) return 0;
  if (!uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss)) return 0;
  uv_getaddrinfo_t req;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  int rc = uv_getaddrinfo(loop, &req, NULL, host, NULL, &hints); /* synchronous: startup only */
  if (rc) return rc;
  struct addrinfo *pick = req.addrinfo;
  for (struct addrinfo *a = req.addrinfo; a; a = a->ai_next)
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
  rc = pick ? 0 : UV_EAI_NONAME;
  if (pick) {
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    if (ss->ss_family == AF_INET)
      ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
      ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  }
  uv_freeaddrinfo(req.addrinfo);
  return rc;
}

int grpc_server_listen(grpc_server_t *s, const char *host, int port, tls_ctx_t *tls) {
  if (s->shutting_down || port < 0 || port > 65535) return UV_EINVAL;
  if (s->n_listeners == sizeof(s->listeners) / sizeof(*s->listeners)) return UV_ENOBUFS;
  struct sockaddr_storage ss;
  int rc = resolve(s->loop, host, port, &ss);
  if (rc) return rc;
  uv_tcp_t *t = xmalloc(sizeof(*t));
  uv_tcp_init(s->loop, t);
  t->data = NULL;
  rc = uv_tcp_bind(t, (struct sockaddr *)&ss, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)t, LISTEN_BACKLOG, on_connection);
  if (rc) {
    uv_close((uv_handle_t *)t, on_listener_closed);
    return rc;
  }
  t->data = s;
  s->listener_tls[s->n_listeners] = tls;
  s->listeners[s->n_listeners++] = t;
  return 0;
}

int grpc_server_port(grpc_server_t *s) {
  if (!s->n_listeners) return -1;
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getsockname(s->listeners[0], (struct sockaddr *)&ss, &len)) return -1;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* ============================== shutdown ============================== */

/* libuv: one of the server's own handles closed; the last completes shutdown. */
static void on_handle_closed(uv_handle_t *h) {
  grpc_server_t *s = h->data;
  if (--s->pending_closes > 0) return;
  s->shutdown_complete = true;
  void (*done)(void *) = s->done;
  void *arg = s->done_arg;
  if (s->free_requested) grpc_server_maybe_release(s);
  if (done) done(arg); /* may call grpc_server_free */
}

void grpc_server_conn_gone(grpc_server_t *s) {
  if (!s->shutting_down || s->handles_closing || s->n_conns > 0 || s->pending_closes > 0 ||
      !grpc_list_empty(&s->locals))
    return;
  s->handles_closing = true;
  uv_handle_t *hs[] = {(uv_handle_t *)&s->prepare, (uv_handle_t *)&s->deadline_timer,
                       (uv_handle_t *)&s->grace_timer};
  for (size_t i = 0; i < 3; i++) {
    s->pending_closes++;
    uv_close(hs[i], on_handle_closed);
  }
}

/* Timer: the grace period is over; cancel the local calls and close what is left. */
static void on_grace(uv_timer_t *t) {
  grpc_server_t *s = t->data;
  grpc_local_cancel_all(s);
  while (!grpc_list_empty(&s->conns)) grpc_conn_close(GRPC_CONTAINER(s->conns.next, grpc_conn_t, link));
}

void grpc_server_shutdown(grpc_server_t *s, unsigned grace_ms, void (*done)(void *), void *arg) {
  if (s->shutting_down) return;
  s->shutting_down = true;
  s->done = done;
  s->done_arg = arg;
  for (size_t i = 0; i < s->n_listeners; i++) {
    s->pending_closes++;
    uv_close((uv_handle_t *)s->listeners[i], on_listener_closed);
  }
  s->n_listeners = 0;
  for (grpc_list_t *l = s->conns.next; l != &s->conns; l = l->next) {
    grpc_conn_t *c = GRPC_CONTAINER(l, grpc_conn_t, link);
    c->want_goaway = true;
    grpc_conn_mark_dirty(c);
  }
  uv_timer_start(&s->grace_timer, on_grace, grace_ms, 0);
  grpc_server_conn_gone(s);
}

void grpc_server_abort_calls(grpc_server_t *s, bool (*match)(grpc_call_t *call, void *arg), void *arg,
                             int status, const char *message) {
  grpc_call_t **sel = NULL; /* chosen first: aborting runs handlers that may end calls */
  size_t n = 0, cap = 0;
  for (grpc_list_t *l = s->conns.next; l != &s->conns; l = l->next) {
    grpc_conn_t *c = GRPC_CONTAINER(l, grpc_conn_t, link);
    for (grpc_list_t *k = c->calls.next; k != &c->calls; k = k->next) {
      grpc_call_t *call = GRPC_CONTAINER(k, grpc_call_t, link);
      if (call->cancelled || call->wire_finished || !call->method || !match(call, arg)) continue;
      if (n == cap) {
        cap = cap ? 2 * cap : 16;
        sel = xrealloc(sel, cap * sizeof(*sel));
      }
      sel[n++] = call;
    }
  }
  for (size_t i = 0; i < n; i++) grpc_call_abort(sel[i], status, message);
  free(sel);
}

void grpc_server_maybe_release(grpc_server_t *s) {
  if (!s->free_requested || !s->shutdown_complete || s->live_calls > 0 || s->live_reqs > 0) return;
  grpc_call_pool_drain(s);
  free(s->mt);
  free(s->heap);
  free(s->rbuf);
  nghttp2_session_callbacks_del(s->cbs);
  nghttp2_option_del(s->h2opt);
  free(s);
}

void grpc_server_free(grpc_server_t *s) {
  if (!s) return;
  if (!s->shutting_down) grpc_server_shutdown(s, 0, NULL, NULL);
  s->free_requested = true;
  grpc_server_maybe_release(s);
}
