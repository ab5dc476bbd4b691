/* gRPC client transport, connections (see grpc_client.h): one TCP connection, its TLS
 * state and its nghttp2 session each; name resolution, dialing, reading and coalesced
 * writes. */
#include <stdio.h>
#include <stdlib.h>

#include "cetcd/errors.h"
#include "client/transport/transport_int.h"

static void transport_maybe_free(transport_t *tr) {
  if (tr->gai_pending || tr->tcp_inited) return;
  grpc_client_t *gc = tr->gc;
  if (tr->addrs) uv_freeaddrinfo(tr->addrs);
  if (tr->tls) gc->tls_ops->conn_free(tr->tls);
  gc->mem.free_fn(tr->rbuf);
  gc->mem.free_fn(tr->wbuf);
  gc->mem.free_fn(tr);
  gc->live_transports--;
}

static void tcp_closed(uv_handle_t *h) {
  transport_t *tr = h->data;
  tr->tcp_inited = false;
  transport_maybe_free(tr);
}

static void transport_connect_addr(transport_t *tr, const struct sockaddr *sa);

/* The socket of a refused connect attempt closed: dial the name's next address. */
static void tcp_closed_try_next(uv_handle_t *h) {
  transport_t *tr = h->data;
  tr->tcp_inited = false;
  tr->tcp_closing = false;
  if (tr->failed) {
    transport_maybe_free(tr);
    return;
  }
  struct addrinfo *ai = tr->next_addr;
  tr->next_addr = ai->ai_next;
  transport_connect_addr(tr, ai->ai_addr);
}

static void remove_draining(transport_t *tr) {
  for (transport_t **pp = &tr->gc->draining; *pp; pp = &(*pp)->next_draining) {
    if (*pp == tr) {
      *pp = tr->next_draining;
      break;
    }
  }
}

typedef struct write_req {
  uv_write_t req;
  grpc_client_t *gc;
  uint8_t *data;
} write_req_t;

static void write_done(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  transport_t *tr = req->handle->data;
  grpc_client_t *gc = w->gc;
  gc->mem.free_fn(w->data);
  gc->mem.free_fn(w);
  if (status < 0 && status != UV_ECANCELED && !tr->failed) gc_transport_fail(tr, uv_strerror(status));
}

/* Writes tr->wbuf[0..len) to the socket: directly when the socket takes it all (the
 * common case: no copy, no request), the rest through a uv_write of a copy. Returns false
 * when the transport failed. */
static bool socket_write(transport_t *tr, size_t len) {
  grpc_client_t *gc = tr->gc;
  uv_buf_t b = uv_buf_init((char *)tr->wbuf, (unsigned)len);
  int wn = uv_try_write((uv_stream_t *)&tr->tcp, &b, 1);
  if (wn < 0 && wn != UV_EAGAIN && wn != UV_ENOSYS) {
    gc_transport_fail(tr, uv_strerror(wn));
    return false;
  }
  size_t done = wn > 0 ? (size_t)wn : 0;
  if (done < len) {
    size_t rest = len - done;
    write_req_t *w = gc->mem.malloc_fn(sizeof(*w));
    uint8_t *buf = gc->mem.malloc_fn(rest);
    if (!w || !buf) {
      gc->mem.free_fn(w);
      gc->mem.free_fn(buf);
      gc_transport_fail(tr, "out of memory");
      return false;
    }
    memcpy(buf, tr->wbuf + done, rest);
    w->gc = gc;
    w->data = buf;
    uv_buf_t rb = uv_buf_init((char *)buf, (unsigned)rest);
    int rc = uv_write(&w->req, (uv_stream_t *)&tr->tcp, &rb, 1, write_done);
    if (rc < 0) {
      gc->mem.free_fn(buf);
      gc->mem.free_fn(w);
      gc_transport_fail(tr, uv_strerror(rc));
      return false;
    }
  }
  if (tr->wcap > 1024 * 1024) {
    gc->mem.free_fn(tr->wbuf);
    tr->wbuf = NULL;
    tr->wcap = 0;
  }
  return true;
}

/* TLS: moves the ciphertext waiting in the TLS state to the socket. Returns false when
 * the transport failed. */
static bool tls_send_pending(transport_t *tr) {
  const grpc_tls_ops_t *ops = tr->gc->tls_ops;
  size_t n = ops->pending(tr->tls);
  if (!n) return true;
  if (!grow(tr->gc, &tr->wbuf, &tr->wcap, n)) {
    gc_transport_fail(tr, "out of memory");
    return false;
  }
  return socket_write(tr, ops->take(tr->tls, tr->wbuf, n));
}

void gc_transport_flush(transport_t *tr) {
  if (tr->failed || !tr->session || tr->in_recv) return;
  grpc_client_t *gc = tr->gc;
  if (gc->batch) {
    tr->need_flush = true; /* flushed once at the end of the batch */
    return;
  }
  tr->need_flush = false;
  size_t len = 0;
  for (;;) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(tr->session, &data);
    if (n < 0) {
      gc_transport_fail(tr, nghttp2_strerror((int)n));
      return;
    }
    if (n == 0) break;
    if (!grow(gc, &tr->wbuf, &tr->wcap, len + (size_t)n)) {
      gc_transport_fail(tr, "out of memory");
      return;
    }
    memcpy(tr->wbuf + len, data, (size_t)n);
    len += (size_t)n;
  }
  if (len && tr->tls) {
    /* encrypt the whole batch, then send the records */
    if (gc->tls_ops->write(tr->tls, tr->wbuf, len) != 0) {
      gc_transport_fail(tr, "TLS write failed");
      return;
    }
    if (!tls_send_pending(tr)) return;
  } else if (len && !socket_write(tr, len)) {
    return;
  }
  /* a detached transport with nothing left to do can go */
  if (!tr->ch && !tr->active && !nghttp2_session_want_read(tr->session) &&
      !nghttp2_session_want_write(tr->session))
    gc_transport_fail(tr, "drained");
}

/* Tears the transport down: fails its streams, closes the socket, and lets the channel
 * (if still attached) fail over or report the failure. */
void gc_transport_fail(transport_t *tr, const char *why) {
  if (tr->failed) return;
  tr->failed = true;
  channel_t *ch = tr->ch;
  if (ch) {
    ch->tr = NULL;
    tr->ch = NULL;
  } else {
    remove_draining(tr);
  }
  char m[200];
  snprintf(m, sizeof m, "connection to %s lost: %s", tr->gc->eps[tr->ep].hostport, why);
  /* the channel moves on first, so streams reopened from on_close go to the next endpoint */
  if (ch) gc_channel_on_failure(ch, why);
  while (tr->active) gc_stream_finish(tr->active, CETCD_EUNAVAILABLE, 14, m, true);
  if (tr->session && !tr->in_recv) {
    nghttp2_session_del(tr->session);
    tr->session = NULL;
  }
  if (tr->gai_pending) uv_cancel((uv_req_t *)&tr->gai);
  if (tr->tcp_inited && !tr->tcp_closing) {
    tr->tcp_closing = true;
    uv_close((uv_handle_t *)&tr->tcp, tcp_closed);
  }
  transport_maybe_free(tr);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  transport_t *tr = h->data;
  b->base = (char *)tr->rbuf;
  b->len = READ_BUF;
}

/* Hands n received HTTP/2 bytes to the session. Returns false when the transport failed. */
static bool session_recv(transport_t *tr, const uint8_t *p, size_t n) {
  tr->in_recv = true;
  ssize_t rc = nghttp2_session_mem_recv(tr->session, p, n);
  tr->in_recv = false;
  if (tr->failed) {
    /* failed from inside a callback: the session could not be deleted then */
    nghttp2_session_del(tr->session);
    tr->session = NULL;
    return false;
  }
  if (rc < 0) {
    gc_transport_fail(tr, nghttp2_strerror((int)rc));
    return false;
  }
  return true;
}

static void transport_start_session(transport_t *tr);

/* TLS: takes n received bytes of ciphertext, advances the handshake (starting the HTTP/2
 * session when it completes) and hands the decrypted bytes to the session. Returns false
 * when the transport failed. */
/* A failed handshake: hands the alert TLS queued (e.g. "bad certificate") to the socket
 * in one try, so the server can log why, as Go's clients let it. */
static void tls_send_alert(transport_t *tr) {
  const grpc_tls_ops_t *ops = tr->gc->tls_ops;
  size_t n = ops->pending(tr->tls);
  if (!n || !grow(tr->gc, &tr->wbuf, &tr->wcap, n)) return;
  uv_buf_t b = uv_buf_init((char *)tr->wbuf, (unsigned)ops->take(tr->tls, tr->wbuf, n));
  (void)uv_try_write((uv_stream_t *)&tr->tcp, &b, 1);
}

static bool tls_recv(transport_t *tr, size_t n) {
  const grpc_tls_ops_t *ops = tr->gc->tls_ops;
  char err[300];
  if (ops->feed(tr->tls, tr->rbuf, n) != 0) {
    gc_transport_fail(tr, "out of memory");
    return false;
  }
  if (!tr->tls_done) {
    int h = ops->handshake(tr->tls, err, sizeof err);
    if (h < 0) {
      tls_send_alert(tr);
      gc_transport_fail(tr, err);
      return false;
    }
    if (!tls_send_pending(tr)) return false;
    if (h == 0) return true;
    tr->tls_done = true;
    transport_start_session(tr);
    if (tr->failed) return false;
  }
  /* decrypt into the read buffer (its ciphertext is in the TLS state now), bounded */
  for (int i = 0; i < 1024 && !tr->failed && tr->session; i++) {
    ssize_t got = ops->read(tr->tls, tr->rbuf, READ_BUF, err, sizeof err);
    if (got < 0) {
      gc_transport_fail(tr, err);
      return false;
    }
    if (got == 0) break;
    if (!session_recv(tr, tr->rbuf, (size_t)got)) return false;
  }
  return !tr->failed && tls_send_pending(tr); /* TLS may have answered (key updates) */
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
  (void)b;
  transport_t *tr = st->data;
  if (tr->failed) return;
  if (nread < 0) {
    gc_transport_fail(tr, nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
    return;
  }
  if (nread == 0) return;
  if (tr->tls ? !tls_recv(tr, (size_t)nread) : !session_recv(tr, tr->rbuf, (size_t)nread)) return;
  gc_transport_flush(tr);
}

static void on_connect(uv_connect_t *req, int status) {
  transport_t *tr = req->data;
  grpc_client_t *gc = tr->gc;
  tr->connecting = false;
  if (tr->failed) return;
  if (status < 0 && tr->next_addr) {
    /* a name resolves to several addresses (localhost: ::1 and 127.0.0.1): try them in
     * turn, as etcd's Go client does, before the endpoint counts as failed */
    tr->tcp_closing = true;
    uv_close((uv_handle_t *)&tr->tcp, tcp_closed_try_next);
    return;
  }
  if (status < 0) {
    gc_transport_fail(tr, uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&tr->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&tr->tcp, alloc_cb, read_cb);
  if (rc < 0) {
    gc_transport_fail(tr, uv_strerror(rc));
    return;
  }
  if (!gc->eps[tr->ep].tls) {
    transport_start_session(tr);
    return;
  }
  /* TLS first: the session starts once the handshake is done (within the dial timeout) */
  char err[300];
  tr->tls = gc->tls_ops->conn_new(gc->tls_ctx, gc->eps[tr->ep].host, err, sizeof err);
  if (!tr->tls) {
    gc_transport_fail(tr, err);
    return;
  }
  if (gc->tls_ops->handshake(tr->tls, err, sizeof err) < 0) {
    gc_transport_fail(tr, err);
    return;
  }
  tls_send_pending(tr);
}

/* Creates the HTTP/2 session of a connected (and, with TLS, handshaken) transport, sends
 * the client preface and settings, and reports the channel ready. */
static void transport_start_session(transport_t *tr) {
  grpc_client_t *gc = tr->gc;
  nghttp2_session *sess;
  nghttp2_option *opt = NULL;
  if (nghttp2_option_new(&opt) == 0) {
    nghttp2_option_set_no_http_messaging(opt, 0);
    nghttp2_option_set_peer_max_concurrent_streams(opt, 1000);
  }
  int rc = nghttp2_session_client_new3(&sess, gc->cbs, tr, opt, &gc->ngmem);
  if (opt) nghttp2_option_del(opt);
  if (rc != 0) {
    gc_transport_fail(tr, nghttp2_strerror(rc));
    return;
  }
  tr->session = sess;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
  };
  if (nghttp2_submit_settings(sess, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
      nghttp2_session_set_local_window_size(sess, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0) {
    gc_transport_fail(tr, "cannot start HTTP/2 session");
    return;
  }
  tr->ready = true;
  gc_transport_flush(tr);
  if (!tr->failed && tr->ch) gc_channel_on_ready(tr->ch);
}

static void transport_connect_addr(transport_t *tr, const struct sockaddr *sa) {
  int rc = uv_tcp_init(&tr->gc->loop, &tr->tcp);
  if (rc < 0) {
    gc_transport_fail(tr, uv_strerror(rc));
    return;
  }
  tr->tcp_inited = true;
  tr->tcp.data = tr;
  tr->conn_req.data = tr;
  rc = uv_tcp_connect(&tr->conn_req, &tr->tcp, sa, on_connect);
  if (rc < 0) {
    gc_transport_fail(tr, uv_strerror(rc));
    return;
  }
  tr->connecting = true;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  transport_t *tr = req->data;
  tr->gai_pending = false;
  if (tr->failed) {
    if (res) uv_freeaddrinfo(res);
    transport_maybe_free(tr);
    return;
  }
  if (status < 0 || !res) {
    if (res) uv_freeaddrinfo(res);
    gc_transport_fail(tr, status < 0 ? uv_strerror(status) : "no address");
    return;
  }
  tr->addrs = res;
  tr->next_addr = res->ai_next;
  transport_connect_addr(tr, res->ai_addr);
}

/* Starts a new connection attempt of ch to its current endpoint. */
void gc_channel_dial(channel_t *ch) {
  grpc_client_t *gc = ch->gc;
  transport_t *tr = gc->mem.malloc_fn(sizeof(*tr));
  uint8_t *rbuf = gc->mem.malloc_fn(READ_BUF);
  if (!tr || !rbuf) {
    gc->mem.free_fn(tr);
    gc->mem.free_fn(rbuf);
    /* cannot even allocate: fail what waits and retry later */
    gc_channel_on_failure(ch, "out of memory");
    return;
  }
  memset(tr, 0, sizeof(*tr));
  tr->gc = gc;
  tr->rbuf = rbuf;
  tr->ch = ch;
  tr->ep = ch->ep;
  gc->live_transports++;
  ch->tr = tr;
  endpoint_t *e = &gc->eps[ch->ep];
  struct sockaddr_storage ss;
  if (uv_ip4_addr(e->host, atoi(e->port), (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(e->host, atoi(e->port), (struct sockaddr_in6 *)&ss) == 0) {
    transport_connect_addr(tr, (struct sockaddr *)&ss);
  } else {
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    tr->gai.data = tr;
    int rc = uv_getaddrinfo(&gc->loop, &tr->gai, on_resolved, e->host, e->port, &hints);
    if (rc < 0) {
      gc_transport_fail(tr, uv_strerror(rc));
      return;
    }
    tr->gai_pending = true;
  }
}
