/* One client connection: protocol detection (h2 preface or HTTP/1.1), reading, the
 * coalesced write path and teardown. */
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "grpc/grpc_int.h"
#include "grpc/http1.h"

static const char H2_PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
enum { H2_PREFACE_LEN = 24, INFLIGHT_KEEP = 1024 * 1024 };

grpc_conn_t *grpc_conn_new(grpc_server_t *s, bool has_socket, buf_t *sink) {
  grpc_conn_t *c = xcalloc(1, sizeof(*c));
  c->srv = s;
  c->has_socket = has_socket;
  c->sink = sink;
  c->refs = 1;
  c->mode = GRPC_CONN_DETECT;
  c->tcp.data = c;
  c->wreq.data = c;
  grpc_list_init(&c->calls);
  grpc_list_init(&c->dirty);
  grpc_list_push(&s->conns, &c->link);
  s->n_conns++;
  strcpy(c->peer, "unknown");
  return c;
}

void grpc_conn_unref(grpc_conn_t *c) {
  if (--c->refs > 0) return;
  buf_free(&c->in);
  buf_free(&c->out);
  buf_free(&c->inflight);
  if (c->tls) grpc_conn_tls_free(c);
  free(c);
}

/* ============================== reading ============================== */

/* libuv: hands out the server's shared read buffer (reads are processed synchronously). */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  grpc_conn_t *c = h->data;
  b->base = (char *)c->srv->rbuf;
  b->len = GRPC_RBUF_SIZE;
}

/* libuv: bytes arrived, or EOF / an error. */
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  grpc_conn_t *c = st->data;
  if (n > 0) {
    c->srv->reads++;
    if (c->tls)
      grpc_conn_tls_read(c, (const uint8_t *)b->base, (size_t)n);
    else
      grpc_conn_feed(c, (const uint8_t *)b->base, (size_t)n);
  } else if (n == UV_EOF && c->mode == GRPC_CONN_HTTP1 && !c->hreq &&
             (c->writing || c->out.len || c->cipher.len)) {
    /* the client half-closed after its request: finish writing the answer, then close */
    uv_read_stop(st);
    c->close_after_write = true;
    grpc_conn_mark_dirty(c);
  } else if (n < 0) { /* with an HTTP/1.1 request in flight, EOF means the client left */
    if (n != UV_EOF) LOGD("grpc: read error peer=%s err=%s", c->peer, uv_strerror((int)n));
    grpc_conn_close(c);
  }
}

/* Formats the peer address of an accepted socket into c->peer. */
static void set_peer(grpc_conn_t *c) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len)) return;
  char ip[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    uv_ip4_name(a, ip, sizeof(ip));
    snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, ntohs(a->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, ip, sizeof(ip));
    snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip, ntohs(a->sin6_port));
  }
}

int grpc_conn_start(grpc_conn_t *c) {
  uv_tcp_nodelay(&c->tcp, 1);
  set_peer(c);
  return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Hands each complete buffered HTTP/1.1 request to the HTTP handler, one at a time: the
 * next is parsed once the previous one is answered (keep-alive, pipelining). A bad request
 * is answered with its error status and the connection closes after writing. */
static void http1_process(grpc_conn_t *c) {
  grpc_server_t *s = c->srv;
  c->refs++; /* the handler may not close us, but be safe */
  while (!c->hreq && !c->closing && !c->close_after_write && c->in.len) {
    grpc_http1_req_t req;
    ssize_t r = grpc_http1_parse(c->in.data, c->in.len, s->opts.max_recv_msg_bytes, &req);
    if (r == 0) break;
    if (r < 0) {
      int status = (int)-r;
      buf_t body = {0};
      buf_printf(&body, "%s\n", grpc_http1_reason(status));
      grpc_http1_response(&c->out, status, NULL, body.data, body.len, false);
      buf_free(&body);
      buf_free(&c->in);
      c->close_after_write = true;
      grpc_conn_mark_dirty(c);
      break;
    }
    grpc_http_req_t *hr = grpc_http_req_new_h1(c, &req);
    grpc_server_http(s, hr, hr->method, hr->path, req.body, req.body_len); /* may answer at once */
    buf_consume(&c->in, (size_t)r);
  }
  if (c->in.len == 0 && c->in.cap > GRPC_HTTP1_MAX_HEAD) buf_free(&c->in);
  grpc_conn_unref(c);
}

/* Switches a connection to HTTP/2 and replays the buffered preface. */
static int start_h2(grpc_conn_t *c) {
  c->mode = GRPC_CONN_H2;
  int rv = grpc_session_start(c);
  if (!rv) {
    ssize_t n = nghttp2_session_mem_recv(c->h2, c->in.data, c->in.len);
    if (n < 0) rv = (int)n;
  }
  buf_free(&c->in);
  if (rv) {
    LOGD("grpc: h2 start failed peer=%s: %s", c->peer, nghttp2_strerror(rv));
    grpc_conn_close(c);
    return -1;
  }
  if (c->want_goaway) grpc_conn_mark_dirty(c);
  return 0;
}

int grpc_conn_feed(grpc_conn_t *c, const uint8_t *p, size_t n) {
  if (c->closing) return -1;
  if (c->mode == GRPC_CONN_DETECT) {
    size_t have = c->in.len;
    size_t take = H2_PREFACE_LEN - have < n ? H2_PREFACE_LEN - have : n;
    if (memcmp(p, H2_PREFACE + have, take) != 0) {
      c->mode = GRPC_CONN_HTTP1;
    } else {
      buf_append(&c->in, p, take);
      p += take;
      n -= take;
      if (c->in.len < H2_PREFACE_LEN) return 0;
      if (start_h2(c)) return -1;
    }
  }
  if (c->mode == GRPC_CONN_HTTP1) {
    if (c->close_after_write) return 0; /* answered and closing: ignore the rest */
    if (c->in.len + n > GRPC_HTTP1_MAX_HEAD + c->srv->opts.max_recv_msg_bytes) {
      grpc_conn_close(c);
      return -1;
    }
    buf_append(&c->in, p, n);
    if (!c->hreq) http1_process(c); /* else parsed once the request in flight is answered */
    return 0;
  }
  if (n == 0) {
    grpc_conn_mark_dirty(c);
    return 0;
  }
  ssize_t rv = nghttp2_session_mem_recv(c->h2, p, n);
  if (rv < 0) {
    LOGD("grpc: bad http2 input peer=%s: %s", c->peer, nghttp2_strerror((int)rv));
    /* let nghttp2 send its GOAWAY if it queued one, then close */
    c->refs++;
    grpc_conn_flush(c);
    grpc_conn_close(c);
    grpc_conn_unref(c);
    return -1;
  }
  grpc_conn_mark_dirty(c);
  return 0;
}

/* ============================== writing ============================== */

void grpc_conn_mark_dirty(grpc_conn_t *c) {
  if (c->closing || !grpc_list_empty(&c->dirty)) return;
  grpc_server_t *s = c->srv;
  if (grpc_list_empty(&s->dirty)) uv_prepare_start(&s->prepare, grpc_server_on_prepare);
  grpc_list_push(&s->dirty, &c->dirty);
}

/* libuv: a socket write finished. */
static void on_write(uv_write_t *req, int status) {
  grpc_conn_t *c = req->data;
  c->writing = false;
  c->inflight.len = 0;
  if (c->inflight.cap > INFLIGHT_KEEP) buf_free(&c->inflight);
  if (c->closing) return;
  if (status < 0) {
    LOGD("grpc: write error peer=%s err=%s", c->peer, uv_strerror(status));
    grpc_conn_close(c);
    return;
  }
  if (c->read_paused) {
    c->read_paused = false;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
  grpc_conn_mark_dirty(c);
}

/* Writes the wire bytes (c->out, or c->cipher with TLS) straight to the socket when it takes all of it (the
 * common case: a reply fits the socket buffer), which skips uv_write's request, its callback on the next loop
 * iteration and the epoll re-arm that comes with it. Keeps what was not written at the
 * front of wire; returns true when nothing is left. */
static bool try_write_now(grpc_conn_t *c, buf_t *wire) {
  uv_buf_t b = uv_buf_init((char *)wire->data, (unsigned)wire->len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n <= 0) return false; /* EAGAIN or an error: uv_write queues it or reports it */
  if ((size_t)n == wire->len) {
    wire->len = 0;
    if (wire->cap > INFLIGHT_KEEP) buf_free(wire);
    return true;
  }
  memmove(wire->data, wire->data + n, wire->len - (size_t)n);
  wire->len -= (size_t)n;
  return false;
}

/* Sends GOAWAY (shutdown) once the session exists; an HTTP/1.1 connection closes after
 * the answer to its request in flight (now if idle); an undetected one closes now. */
static bool do_goaway(grpc_conn_t *c) {
  if (c->goaway_sent) return true;
  if (c->mode == GRPC_CONN_HTTP1 && (c->hreq || c->writing || c->out.len || c->cipher.len)) {
    c->goaway_sent = c->close_after_write = !c->hreq;
    if (c->hreq) c->hreq->keep_alive = false; /* h1_done then sets close_after_write */
    return true;
  }
  if (c->mode != GRPC_CONN_H2) {
    grpc_conn_close(c);
    return false;
  }
  if (c->h2)
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
  c->goaway_sent = true;
  return true;
}

void grpc_conn_flush(grpc_conn_t *c) {
  if (c->closing) return;
  if (c->http1_resume) { /* keep-alive: the previous request was answered */
    c->http1_resume = false;
    if (!c->want_goaway) http1_process(c);
    if (c->closing) return;
  }
  if (c->want_goaway && !do_goaway(c)) return;
  if (c->h2) {
    int rv = nghttp2_session_send(c->h2);
    if (rv) {
      LOGD("grpc: http2 send failed peer=%s: %s", c->peer, nghttp2_strerror(rv));
      grpc_conn_close(c);
      return;
    }
  }
  buf_t *wire = &c->out;
  if (c->tls) {
    if (grpc_conn_tls_seal(c)) return;
    wire = &c->cipher;
  }
  if (wire->len && !c->writing) {
    if (!c->has_socket) {
      if (c->sink) buf_append(c->sink, wire->data, wire->len);
      wire->len = 0;
    } else if (!try_write_now(c, wire)) {
      buf_t t = c->inflight;
      c->inflight = *wire;
      *wire = t;
      uv_buf_t b = uv_buf_init((char *)c->inflight.data, (unsigned)c->inflight.len);
      int rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
      if (rv) {
        LOGD("grpc: write failed peer=%s err=%s", c->peer, uv_strerror(rv));
        grpc_conn_close(c);
        return;
      }
      c->writing = true;
    }
  }
  if (c->writing && wire->len >= GRPC_OUT_HIGH_WATER && !c->read_paused && c->has_socket) {
    c->read_paused = true; /* the peer does not read: stop taking new requests */
    uv_read_stop((uv_stream_t *)&c->tcp);
  }
  if (c->writing || wire->len) return;
  if (c->close_after_write ||
      (c->h2 && !nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)))
    grpc_conn_close(c);
}

/* ============================== teardown ============================== */

/* libuv: the socket is closed; release the socket's reference. */
static void on_close(uv_handle_t *h) {
  grpc_conn_t *c = h->data;
  grpc_server_t *s = c->srv;
  s->n_conns--;
  grpc_conn_unref(c);
  grpc_server_conn_gone(s);
}

void grpc_conn_close(grpc_conn_t *c) {
  if (c->closing) return;
  c->closing = true;
  if (c->tls) grpc_conn_tls_closing(c);
  grpc_http_req_t *hreq = c->hreq; /* holds a reference: c outlives the hook below */
  c->hreq = NULL;
  grpc_list_remove(&c->dirty);
  grpc_list_remove(&c->link);
  while (!grpc_list_empty(&c->calls)) {
    grpc_call_t *call = GRPC_CONTAINER(c->calls.next, grpc_call_t, link);
    if (c->h2) nghttp2_session_set_stream_user_data(c->h2, call->stream_id, NULL);
    grpc_call_stream_closed(call); /* unlinks it */
  }
  if (c->h2) {
    nghttp2_session_del(c->h2);
    c->h2 = NULL;
  }
  if (c->has_socket) {
    uv_close((uv_handle_t *)&c->tcp, on_close);
  } else {
    grpc_server_t *s = c->srv;
    s->n_conns--;
    grpc_conn_unref(c);
    grpc_server_conn_gone(s);
  }
  if (hreq) grpc_http_req_client_gone(hreq); /* may answer, and so free, it (and c) */
}
