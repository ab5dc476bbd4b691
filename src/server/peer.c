/* Peer transport (see peer.h): a gRPC service for incoming raft messages and a gRPC client
 * with one dedicated connection and one long-lived client stream per peer. */

#include "server/peer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "grpc/grpc_server.h"
#include "raftpb.pb-c.h"
#include "server/urls.h"

#define PEER_SEND_PATH "/cetcdraftpb.Raft/Send"
#define PEER_LEASE_PATH "/cetcdraftpb.Raft/Lease"

/* The stream each kind of message travels on. */
static const char *const kind_paths[PEER_N_KINDS] = {PEER_SEND_PATH, PEER_LEASE_PATH};

typedef struct peer_msg {
  struct peer_msg *next;
  peer_kind_t kind;
  size_t len;
  uint8_t data[];
} peer_msg_t;

typedef struct peer {
  peer_transport_t *pt;
  uint64_t id;
  int channel;                          /* endpoint index in the client */
  pthread_mutex_t mu;                   /* guards head/tail */
  peer_msg_t *head, *tail;              /* queued by the loop thread, drained by the I/O thread */
  grpc_cstream_t *stream[PEER_N_KINDS]; /* one stream per kind; I/O thread only */
  atomic_bool broken;                   /* set by the I/O thread, consumed by the loop thread */
  char last_tls_error[160];             /* the last TLS failure logged (I/O thread) */
} peer_t;

struct peer_transport {
  uv_loop_t *loop;
  peer_cbs_t cbs;
  peer_t *peers;
  size_t n;
  grpc_client_t *gc;
  grpc_server_t *server;
  tls_ctx_t *server_tls; /* https peer listeners (owned), NULL without */
  int closes;            /* peer_free: asynchronous closes still to come */
  uv_async_t io_async;   /* on the client's I/O loop: drain queues */
  uv_async_t loop_async; /* on the server loop: report broken streams */
  atomic_bool removed;   /* a peer said this member was removed (I/O thread sets it) */
  bool freed;            /* peer_free ran: received messages are dropped */
};

/* ---- receiving (loop thread) --------------------------------------------------------- */

/* One message of a peer's stream: handed to the raft node as decoded. */
static void on_send_message(grpc_call_t *call, ProtobufCMessage *msg) {
  peer_transport_t *pt = grpc_call_ctx(call);
  if (pt->freed) return;
  int removed = pt->cbs.on_message(pt->cbs.ctx, (const Cetcdraftpb__Message *)msg);
  if (removed) grpc_call_finish(call, GRPC_FAILED_PRECONDITION, PEER_REMOVED_MESSAGE);
}

/* One lease message (a forwarded keep-alive or TimeToLive, or its answer): handed over as
 * decoded, borrowed during the callback. */
static void on_lease_message(grpc_call_t *call, ProtobufCMessage *msg) {
  peer_transport_t *pt = grpc_call_ctx(call);
  if (!pt->freed && pt->cbs.on_lease) pt->cbs.on_lease(pt->cbs.ctx, msg);
}

/* The peer closed its side: end the call. */
static void on_send_half_close(grpc_call_t *call) {
  Cetcdraftpb__Message empty = CETCDRAFTPB__MESSAGE__INIT;
  grpc_call_reply(call, &empty.base);
}

/* The peer went away: free the call. */
static void on_send_cancel(grpc_call_t *call) { grpc_call_finish(call, GRPC_CANCELLED, "peer gone"); }

static const grpc_method_t peer_methods[] = {
    {PEER_SEND_PATH, GRPC_CLIENT_STREAM, &cetcdraftpb__message__descriptor, on_send_message,
     on_send_half_close, on_send_cancel},
    {PEER_LEASE_PATH, GRPC_CLIENT_STREAM, &cetcdraftpb__lease_forward__descriptor, on_lease_message,
     on_send_half_close, on_send_cancel},
};

/* ---- sending (I/O thread) ------------------------------------------------------------ */

/* The server never answers on these streams until they end. */
static int stream_on_message(void *ctx, grpc_cstream_t *s, const uint8_t *msg, size_t len) {
  (void)ctx;
  (void)s;
  (void)msg;
  (void)len;
  return 0;
}

/* The stream to a peer ended: the next message opens a new one; raft hears about it. */
static void stream_on_close(void *ctx, grpc_cstream_t *s, const grpc_close_info_t *info) {
  peer_t *p = ctx;
  for (int k = 0; k < PEER_N_KINDS; k++)
    if (p->stream[k] == s) p->stream[k] = NULL;
  if (info->err == 0 && info->status == GRPC_FAILED_PRECONDITION &&
      !strcmp(info->message, PEER_REMOVED_MESSAGE))
    atomic_store(&p->pt->removed, true);
  if (info->message && strstr(info->message, "tls") && strcmp(info->message, p->last_tls_error)) {
    /* a refused handshake: logged once per cause, as etcd's prober reports it */
    snprintf(p->last_tls_error, sizeof(p->last_tls_error), "%s", info->message);
    LOGW("msg=\"peer connection failed\" remote-peer-id=%016" PRIx64 " error=\"%s\"", p->id, info->message);
  }
  atomic_store(&p->broken, true);
  uv_async_send(&p->pt->loop_async);
}

static const grpc_cstream_cbs_t stream_cbs = {stream_on_message, stream_on_close};

/* I/O thread: ships every queued message on each peer's stream; each connection is written
 * once for all of them (the client's batch mode), not once per message. */
static void on_io_async(uv_async_t *a) {
  peer_transport_t *pt = a->data;
  grpc_client_batch_begin(pt->gc);
  for (size_t i = 0; i < pt->n; i++) {
    peer_t *p = &pt->peers[i];
    pthread_mutex_lock(&p->mu);
    peer_msg_t *m = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (m) {
      peer_msg_t *next = m->next;
      grpc_cstream_t **st = &p->stream[m->kind];
      if (!*st) *st = grpc_cstream_open(pt->gc, kind_paths[m->kind], p->channel, 0, &stream_cbs, p);
      if (*st && grpc_cstream_send(*st, m->data, m->len, false) != 0) {
        grpc_cstream_cancel(*st);
        *st = NULL;
      }
      free(m);
      m = next;
    }
  }
  grpc_client_batch_end(pt->gc);
}

/* I/O thread: registers the wake-up handle on the client's loop. */
static void init_io_async(grpc_client_t *gc, void *arg) {
  peer_transport_t *pt = arg;
  uv_async_init(grpc_client_loop(gc), &pt->io_async, on_io_async);
  pt->io_async.data = pt;
}

/* I/O thread: cancels the streams and closes the wake-up handle before the client goes. */
static void fini_io_async(grpc_client_t *gc, void *arg) {
  (void)gc;
  peer_transport_t *pt = arg;
  for (size_t i = 0; i < pt->n; i++)
    for (int k = 0; k < PEER_N_KINDS; k++)
      if (pt->peers[i].stream[k]) {
        grpc_cstream_cancel(pt->peers[i].stream[k]);
        pt->peers[i].stream[k] = NULL;
      }
  uv_close((uv_handle_t *)&pt->io_async, NULL);
}

/* Loop thread: reports broken streams to raft. */
static void on_loop_async(uv_async_t *a) {
  peer_transport_t *pt = a->data;
  for (size_t i = 0; i < pt->n; i++)
    if (atomic_exchange(&pt->peers[i].broken, false) && pt->cbs.on_unreachable)
      pt->cbs.on_unreachable(pt->cbs.ctx, pt->peers[i].id);
  if (atomic_exchange(&pt->removed, false) && pt->cbs.on_removed) pt->cbs.on_removed(pt->cbs.ctx);
}

/* malloc adapters for the client transport. */
static void *pt_malloc(size_t n) { return malloc(n); }
static void *pt_realloc(void *p, size_t n) { return realloc(p, n); }
static void pt_free(void *p) { free(p); }

/* The client context for https peer URLs (owned; peer_set_dialer_tls). */
static grpc_tls_ctx_t *dialer_tls;

void peer_set_dialer_tls(grpc_tls_ctx_t *ctx) {
  grpc_tls_ctx_free(dialer_tls);
  dialer_tls = ctx;
}

void peer_client_tls(grpc_client_config_t *cfg) {
  cfg->tls_ops = dialer_tls ? &grpc_tls_ops : NULL;
  cfg->tls_ctx = dialer_tls;
}

/* Turns "scheme://host:port[/...]" into the client's endpoint (owned): "host:port", or
 * "https://host:port" for an https URL. */
static char *url_hostport(const char *url) {
  bool tls = !strncmp(url, "https://", 8);
  const char *s = strstr(url, "://");
  s = s ? s + 3 : url;
  size_t n = strcspn(s, "/"), pre = tls ? 8 : 0;
  char *out = xmalloc(pre + n + 1);
  memcpy(out, "https://", pre);
  memcpy(out + pre, s, n);
  out[pre + n] = 0;
  return out;
}

/* Creates the sending side for peers ids[i] at urls[i]: the peer table and the client with
 * its wake-up handle. Returns 0 or a negative code (logged; nothing is left allocated). */
static int start_client(peer_transport_t *pt, const uint64_t *ids, char *const *urls, size_t n) {
  pt->n = n;
  pt->peers = xcalloc(n ? n : 1, sizeof(peer_t));
  if (n == 0) return 0; /* a one-member cluster: nobody to send to, no client */
  char **eps = xcalloc(n ? n : 1, sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    eps[i] = url_hostport(urls[i]);
    peer_t *p = &pt->peers[i];
    p->pt = pt;
    p->id = ids[i];
    p->channel = (int)i;
    pthread_mutex_init(&p->mu, NULL);
    atomic_init(&p->broken, false);
  }
  grpc_client_config_t cfg = {.endpoints = (const char *const *)eps,
                              .n_endpoints = n,
                              .dial_timeout_ms = 1000,
                              .max_recv_bytes = 4u << 20,
                              .mem = {pt_malloc, pt_realloc, pt_free}};
  peer_client_tls(&cfg);
  int rc = grpc_client_new(&cfg, &pt->gc);
  for (size_t i = 0; i < n; i++) free(eps[i]);
  free(eps);
  if (rc) {
    LOGE("msg=\"cannot create the peer transport\" error=\"%s\"", cetcd_strerror(rc));
    for (size_t i = 0; i < n; i++) pthread_mutex_destroy(&pt->peers[i].mu);
    free(pt->peers);
    pt->peers = NULL;
    pt->n = 0;
    return rc;
  }
  grpc_client_run_sync(pt->gc, init_io_async, pt);
  return 0;
}

/* Frees the peer table and its queued messages. */
static void free_peers(peer_t *peers, size_t n) {
  for (size_t i = 0; i < n; i++) {
    peer_msg_t *m = peers[i].head;
    while (m) {
      peer_msg_t *next = m->next;
      free(m);
      m = next;
    }
    pthread_mutex_destroy(&peers[i].mu);
  }
  free(peers);
}

/* Stops the sending side (streams cancelled, client freed); the peer table stays. */
static void stop_client(peer_transport_t *pt) {
  if (!pt->gc) return;
  grpc_client_run_sync(pt->gc, fini_io_async, pt);
  grpc_client_free(pt->gc);
  pt->gc = NULL;
}

peer_transport_t *peer_new(uv_loop_t *loop, const uint64_t *ids, char *const *urls, size_t n,
                           const peer_cbs_t *cbs) {
  peer_transport_t *pt = xcalloc(1, sizeof(*pt));
  pt->loop = loop;
  pt->cbs = *cbs;
  atomic_init(&pt->removed, false);
  if (start_client(pt, ids, urls, n)) {
    free(pt);
    return NULL;
  }
  uv_async_init(loop, &pt->loop_async, on_loop_async);
  pt->loop_async.data = pt;
  return pt;
}

int peer_set_peers(peer_transport_t *pt, const uint64_t *ids, char *const *urls, size_t n) {
  stop_client(pt);
  free_peers(pt->peers, pt->n);
  pt->peers = NULL;
  pt->n = 0;
  return start_client(pt, ids, urls, n);
}

struct grpc_server *peer_server(peer_transport_t *pt) {
  return pt->server;
}

int peer_call(char *const *urls, size_t n, const char *path, const uint8_t *req, size_t req_len,
              uint8_t **resp, size_t *resp_len) {
  return peer_call_status(urls, n, path, req, req_len, resp, resp_len, NULL, NULL, 0);
}

int peer_call_status(char *const *urls, size_t n, const char *path, const uint8_t *req, size_t req_len,
                     uint8_t **resp, size_t *resp_len, int *status, char *msg, size_t msglen) {
  char **eps = xcalloc(n ? n : 1, sizeof(char *));
  for (size_t i = 0; i < n; i++) eps[i] = url_hostport(urls[i]);
  grpc_client_config_t cfg = {.endpoints = (const char *const *)eps,
                              .n_endpoints = n,
                              .dial_timeout_ms = 1000,
                              .max_recv_bytes = 4u << 20,
                              .mem = {pt_malloc, pt_realloc, pt_free}};
  peer_client_tls(&cfg);
  grpc_client_t *gc;
  int rc = grpc_client_new(&cfg, &gc);
  for (size_t i = 0; i < n; i++) free(eps[i]);
  free(eps);
  if (rc) return rc;
  rc = CETCD_EUNAVAILABLE;
  for (size_t i = 0; i < n && rc == CETCD_EUNAVAILABLE; i++) {
    grpc_unary_t u = {.path = path, .channel = (int)i, .timeout_ms = 5000, .req = req, .req_len = req_len};
    if (grpc_client_unary(gc, &u) != 0) continue; /* not reachable: try the next */
    if (u.status != 0) {
      LOGW("msg=\"peer call failed\" path=%s peer=%s error=\"%s\"", path, urls[i], u.message);
      if (status) *status = u.status;
      if (msg && msglen) snprintf(msg, msglen, "%s", u.message);
      free(u.resp);
      rc = CETCD_EGRPC;
      break;
    }
    *resp = u.resp;
    *resp_len = u.resp_len;
    rc = 0;
  }
  grpc_client_free(gc);
  return rc;
}

int peer_listen(peer_transport_t *pt, char *const *urls, size_t n, tls_ctx_t *tls) {
  pt->server_tls = tls;
  grpc_server_opts_t go = {.max_recv_msg_bytes = 64u << 20};
  pt->server = grpc_server_new(pt->loop, &go);
  grpc_server_add_methods(pt->server, peer_methods, sizeof(peer_methods) / sizeof(*peer_methods), pt);
  for (size_t i = 0; i < n; i++) {
    url_t u;
    char err[256];
    int rc = urls_parse_one(urls[i], &u, err, sizeof(err));
    if (rc) {
      LOGE("msg=\"bad listen-peer-urls\" error=\"%s\"", err);
      return rc;
    }
    rc = grpc_server_listen(pt->server, u.host, u.port, u.is_tls ? tls : NULL);
    if (rc) {
      LOGE(
          "msg=\"cannot listen for peers\" address=%s:%d error=\"%s\" fix=\"choose a free port with "
          "--listen-peer-urls\"",
          u.host, u.port, uv_strerror(rc));
      urls_free_one(&u);
      return rc;
    }
    LOGI("msg=\"serving peer traffic%s\" address=%s:%d", u.is_tls ? " securely" : "", u.host, u.port);
    urls_free_one(&u);
  }
  return 0;
}

void peer_send(peer_transport_t *pt, uint64_t to, const uint8_t *data, size_t len) {
  peer_send_kind(pt, to, PEER_RAFT, data, len);
}

void peer_send_kind(peer_transport_t *pt, uint64_t to, peer_kind_t kind, const uint8_t *data, size_t len) {
  for (size_t i = 0; i < pt->n; i++) {
    peer_t *p = &pt->peers[i];
    if (p->id != to) continue;
    peer_msg_t *m = xmalloc(sizeof(*m) + len);
    m->next = NULL;
    m->kind = kind;
    m->len = len;
    memcpy(m->data, data, len);
    pthread_mutex_lock(&p->mu);
    if (p->tail)
      p->tail->next = m;
    else
      p->head = m;
    p->tail = m;
    pthread_mutex_unlock(&p->mu);
    return;
  }
}

void peer_flush(peer_transport_t *pt) {
  if (pt->gc) uv_async_send(&pt->io_async);
}

const char *peer_address(peer_transport_t *pt, uint64_t id) {
  for (size_t i = 0; i < pt->n; i++)
    if (pt->peers[i].id == id) return grpc_client_endpoint(pt->gc, (size_t)pt->peers[i].channel);
  return NULL;
}

/* The loop handle closed: the peers go, and the transport if its server is gone too. */
static void on_loop_async_closed(uv_handle_t *h) {
  peer_transport_t *pt = h->data;
  free_peers(pt->peers, pt->n);
  pt->peers = NULL;
  pt->n = 0;
  if (--pt->closes == 0) free(pt);
}

/* The peer server's connections are gone: release it and its TLS context. */
static void peer_server_closed(void *arg) {
  peer_transport_t *pt = arg;
  grpc_server_free(pt->server);
  tls_ctx_free(pt->server_tls);
  pt->server = NULL;
  pt->server_tls = NULL;
  if (--pt->closes == 0) free(pt);
}

void peer_free(peer_transport_t *pt) {
  if (!pt) return;
  pt->freed = true;
  stop_client(pt);
  pt->closes = pt->server ? 2 : 1; /* the transport goes with the last of these */
  if (pt->server) grpc_server_shutdown(pt->server, 0, peer_server_closed, pt);
  uv_close((uv_handle_t *)&pt->loop_async, on_loop_async_closed);
}
