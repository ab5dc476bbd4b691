/* Per-call state: response queueing, finishing, cancellation and freeing, and local
 * (in-process) calls.
 *
 * A call ends when two things have happened: the handler is done with it (it called
 * grpc_call_finish, or it never saw the call) and nghttp2 has closed the stream (or the
 * connection went away). Whichever comes second frees it — unless we are still running
 * handler code on the call (nest > 0), in which case the outermost caller frees it. A
 * local call has no stream: it counts as closed from the start. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "grpc/grpc_int.h"
#include "grpc/grpc_status.h"

enum { POOL_MAX = 256, OUT_KEEP = 64 * 1024 };

#define NV_STATIC(n, v)                                              \
  {                                                                  \
    (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1,    \
        NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE \
  }

/* ============================== lifecycle ============================== */

/* Takes a zeroed call from the pool (or the heap) and counts it as live. */
static grpc_call_t *call_alloc(grpc_server_t *s) {
  grpc_call_t *c = s->free_calls;
  if (c) {
    s->free_calls = c->next_free;
    s->n_free_calls--;
    buf_t keep = c->out;
    memset(c, 0, sizeof(*c));
    c->out = keep;
    c->out.len = 0;
  } else {
    c = xcalloc(1, sizeof(*c));
  }
  arena_init(&c->arena);
  arena_init(&c->scratch);
  grpc_deframer_init(&c->in, s->opts.max_recv_msg_bytes);
  c->srv = s;
  c->heap_idx = SIZE_MAX;
  grpc_list_init(&c->link);
  grpc_list_init(&c->held_link);
  s->live_calls++;
  return c;
}

grpc_call_t *grpc_call_new(grpc_conn_t *conn, int32_t stream_id) {
  grpc_call_t *c = call_alloc(conn->srv);
  c->conn = conn;
  c->stream_id = stream_id;
  grpc_list_push(&conn->calls, &c->link);
  conn->refs++;
  return c;
}

/* Releases everything the call owns and returns it to the pool. */
static void call_free(grpc_call_t *c) {
  grpc_conn_t *conn = c->conn;
  grpc_server_t *s = c->srv;
  grpc_deadline_remove(s, c);
  grpc_list_remove(&c->link);
  grpc_hold_drop(c);
  buf_free(&c->held_in);
  arena_destroy(&c->arena);
  arena_destroy(&c->scratch);
  grpc_deframer_reset(&c->in);
  if (c->out.cap > OUT_KEEP) buf_free(&c->out);
  s->live_calls--;
  if (s->n_free_calls < POOL_MAX && !s->free_requested) {
    c->next_free = s->free_calls;
    s->free_calls = c;
    s->n_free_calls++;
  } else {
    buf_free(&c->out);
    free(c);
  }
  if (conn) grpc_conn_unref(conn);
  if (s->free_requested) grpc_server_maybe_release(s);
}

void grpc_call_maybe_free(grpc_call_t *c) {
  if (c->handler_done && c->stream_closed && c->nest == 0) call_free(c);
}

void grpc_call_pool_drain(grpc_server_t *s) {
  while (s->free_calls) {
    grpc_call_t *c = s->free_calls;
    s->free_calls = c->next_free;
    buf_free(&c->out);
    free(c);
  }
  s->n_free_calls = 0;
}

/* ============================== output ============================== */

/* Submits the response HEADERS with our data provider. */
static void submit_headers(grpc_call_t *c) {
  static const nghttp2_nv nva[] = {NV_STATIC(":status", "200"),
                                   NV_STATIC("content-type", "application/grpc")};
  nghttp2_data_provider prd = {.source.ptr = c, .read_callback = grpc_call_data_read};
  int rv = nghttp2_submit_response(c->conn->h2, c->stream_id, nva, 2, &prd);
  if (rv) LOGD("grpc: submit_response stream=%d failed: %s", c->stream_id, nghttp2_strerror(rv));
  c->headers_submitted = true;
}

/* Fills nva[] with grpc-status and grpc-message; returns the count. */
static size_t status_nv(grpc_call_t *c, nghttp2_nv *nva, char *code) {
  static const char *codes[] = {"0", "1",  "2",  "3",  "4",  "5",  "6",  "7", "8",
                                "9", "10", "11", "12", "13", "14", "15", "16"};
  const char *v = code;
  if (c->status >= 0 && c->status <= 16)
    v = codes[c->status];
  else
    snprintf(code, 8, "%d", c->status);
  size_t n = 0;
  nva[n++] =
      (nghttp2_nv){(uint8_t *)"grpc-status", (uint8_t *)v, 11, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME};
  if (c->status_msg)
    nva[n++] = (nghttp2_nv){(uint8_t *)"grpc-message", (uint8_t *)c->status_msg, 12, strlen(c->status_msg),
                            NGHTTP2_NV_FLAG_NO_COPY_NAME};
  return n;
}

/* Submits the trailers that end a response that had HEADERS. */
static void submit_trailers(grpc_call_t *c) {
  nghttp2_nv nva[2];
  char code[8];
  size_t n = status_nv(c, nva, code);
  int rv = nghttp2_submit_trailer(c->conn->h2, c->stream_id, nva, n);
  if (rv) LOGD("grpc: submit_trailer stream=%d failed: %s", c->stream_id, nghttp2_strerror(rv));
}

/* Submits a trailers-only response (one HEADERS frame with END_STREAM). */
static void submit_trailers_only(grpc_call_t *c) {
  nghttp2_nv nva[4] = {NV_STATIC(":status", "200"), NV_STATIC("content-type", "application/grpc")};
  char code[8];
  size_t n = 2 + status_nv(c, nva + 2, code);
  int rv = nghttp2_submit_response(c->conn->h2, c->stream_id, nva, n, NULL);
  if (rv) LOGD("grpc: submit_response stream=%d failed: %s", c->stream_id, nghttp2_strerror(rv));
  c->headers_submitted = true;
}

/* Wakes our data provider if it returned NGHTTP2_ERR_DEFERRED. */
static void resume(grpc_call_t *c) {
  if (c->deferred) {
    c->deferred = false;
    nghttp2_session_resume_data(c->conn->h2, c->stream_id);
  }
  grpc_conn_mark_dirty(c->conn);
}

ssize_t grpc_call_data_read(nghttp2_session *h2, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                            nghttp2_data_source *src, void *user) {
  (void)h2, (void)sid, (void)buf, (void)user;
  grpc_call_t *c = src->ptr;
  size_t avail = c->out.len - c->out_off;
  while (avail < len && c->refill && !c->wire_finished && !c->cancelled && !c->handler_done) {
    c->refill(c); /* the handler's coalesced messages, now that HTTP/2 wants them */
    size_t now = c->out.len - c->out_off;
    if (now == avail) break;
    avail = now;
  }
  if (avail == 0 && !c->wire_finished) {
    c->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  size_t n = avail < len ? avail : len;
  if (n) *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  c->out_committed = n;
  if (n == avail && c->wire_finished) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!c->http_resp) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      submit_trailers(c);
    }
  }
  return (ssize_t)n;
}

int grpc_call_data_send(nghttp2_session *h2, nghttp2_frame *frame, const uint8_t *framehd, size_t len,
                        nghttp2_data_source *src, void *user) {
  (void)h2;
  grpc_conn_t *conn = user;
  grpc_call_t *c = src->ptr;
  if (conn->writing && conn->out.len >= GRPC_OUT_HIGH_WATER) return NGHTTP2_ERR_WOULDBLOCK;
  size_t pad = frame->data.padlen;
  buf_reserve(&conn->out, 9 + pad + len);
  buf_append(&conn->out, framehd, 9);
  if (pad > 0) {
    uint8_t b = (uint8_t)(pad - 1);
    buf_append(&conn->out, &b, 1);
  }
  buf_append(&conn->out, c->out.data + c->out_off, len);
  if (pad > 1) {
    memset(conn->out.data + conn->out.len, 0, pad - 1);
    conn->out.len += pad - 1;
  }
  c->out_off += len;
  c->out_committed = 0;
  if (c->out_off == c->out.len) c->out.len = c->out_off = 0;
  return 0;
}

/* Moves the unsent bytes of c->out to its front once half of it was sent. */
static void out_reclaim(grpc_call_t *c) {
  if (c->out_off == 0 || c->out_off < c->out.len / 2) return;
  memmove(c->out.data, c->out.data + c->out_off, c->out.len - c->out_off);
  c->out.len -= c->out_off;
  c->out_off = 0;
}

bool grpc_call_backlogged(grpc_call_t *c) { return !c->local && c->out.len > c->out_off; }

void grpc_call_set_refill(grpc_call_t *c, void (*fn)(grpc_call_t *)) { c->refill = fn; }

/* Queues one framed message: msg's fields then tail. */
static int send_framed(grpc_call_t *c, const ProtobufCMessage *msg, const uint8_t *tail, size_t tail_len) {
  if (c->cancelled || c->wire_finished || c->stream_closed || c->handler_done) return CETCD_ECANCELED;
  size_t sz = protobuf_c_message_get_packed_size(msg);
  if (sz + tail_len > UINT32_MAX) return CETCD_ETOOLARGE;
  out_reclaim(c);
  buf_reserve(&c->out, GRPC_FRAME_PREFIX + sz + tail_len);
  uint8_t *p = c->out.data + c->out.len;
  grpc_frame_prefix(p, (uint32_t)(sz + tail_len));
  protobuf_c_message_pack(msg, p + GRPC_FRAME_PREFIX);
  if (tail_len) memcpy(p + GRPC_FRAME_PREFIX + sz, tail, tail_len);
  c->out.len += GRPC_FRAME_PREFIX + sz + tail_len;
  if (!c->headers_submitted) {
    submit_headers(c);
    grpc_conn_mark_dirty(c->conn);
  } else {
    resume(c);
  }
  return 0;
}

int grpc_call_send_with_tail(grpc_call_t *c, const ProtobufCMessage *msg, const uint8_t *tail,
                             size_t tail_len) {
  if (c->local) return CETCD_EINVAL;
  return send_framed(c, msg, tail, tail_len);
}

int grpc_call_send(grpc_call_t *c, const ProtobufCMessage *msg) {
  if (c->local) {
    if (c->cancelled || c->handler_done) return CETCD_ECANCELED;
    if (c->lops && c->lops->on_send) c->lops->on_send(c->lctx, msg);
    return 0;
  }
  return send_framed(c, msg, NULL, 0);
}

int grpc_call_reply(grpc_call_t *c, const ProtobufCMessage *msg) {
  int rc = grpc_call_send(c, msg);
  grpc_call_finish(c, GRPC_OK, NULL);
  return rc;
}

size_t grpc_call_pending_bytes(grpc_call_t *c) {
  if (c->local) return c->lops && c->lops->pending_bytes ? c->lops->pending_bytes(c->lctx) : 0;
  return c->out.len - c->out_off;
}

/* ============================== ending ============================== */

void grpc_call_wire_finish(grpc_call_t *c, int status, const char *msg) {
  if (c->wire_finished) return;
  c->wire_finished = true;
  grpc_deadline_remove(c->srv, c);
  if (c->stream_closed) return;
  c->status = status;
  if (msg && *msg) {
    buf_t e = {0};
    grpc_percent_encode(&e, msg, strlen(msg));
    c->status_msg = arena_memdup(&c->arena, e.data, e.len);
    buf_free(&e);
  }
  if (!c->headers_submitted)
    submit_trailers_only(c);
  else
    c->deferred = true; /* resume even if nghttp2 has not asked yet: harmless */
  resume(c);
}

static grpc_call_observer_fn call_observer;

void grpc_set_call_observer(grpc_call_observer_fn fn) { call_observer = fn; }

/* Reports a finished call to the observer with the status the client sees. */
static void observe_finish(grpc_call_t *c, int status) {
  if (!call_observer || !c->method) return;
  if (!c->dispatched) call_observer(c->method, -1);
  int code = status;
  if (c->cancelled) code = c->wire_finished && c->status != GRPC_OK ? c->status : GRPC_CANCELLED;
  call_observer(c->method, code);
}

void grpc_call_finish(grpc_call_t *c, int status, const char *message) {
  if (c->handler_done) {
    LOGE("grpc: grpc_call_finish called twice on stream %d", c->stream_id);
    return;
  }
  observe_finish(c, status);
  c->handler_done = true;
  c->dispatched = true;
  if (c->local) {
    grpc_server_t *s = c->srv;
    grpc_list_remove(&c->link); /* shutdown no longer waits for it */
    if (c->lops && c->lops->on_finish) c->lops->on_finish(c->lctx, status, message);
    grpc_server_conn_gone(s);
    grpc_call_maybe_free(c);
    return;
  }
  if (!c->cancelled) grpc_call_wire_finish(c, status, message);
  grpc_call_maybe_free(c);
}

void grpc_call_abort(grpc_call_t *c, int status, const char *msg) {
  if (c->cancelled || c->wire_finished) return;
  grpc_call_wire_finish(c, status, msg);
  c->cancelled = true;
  grpc_deframer_reset(&c->in);
  if (!c->dispatched) {
    c->handler_done = true; /* no handler owns it; the stream close frees it */
    return;
  }
  if (!c->handler_done && c->method->on_cancel) c->method->on_cancel(c);
}

/* Runs the server's gate on a call no handler has seen yet (msg: its first message, or
 * NULL); true if it ended the call. */
static bool gate_refused(grpc_call_t *c, const ProtobufCMessage *msg) {
  const char *message = NULL;
  int status = c->srv->opts.gate ? c->srv->opts.gate(c, msg, &message) : GRPC_OK;
  if (status == GRPC_OK) return false;
  grpc_call_finish(c, status, message);
  return true;
}

void grpc_call_dispatch(grpc_call_t *c, ProtobufCMessage *msg) {
  if (c->cancelled || c->wire_finished || c->handler_done) return;
  if (!c->dispatched && gate_refused(c, msg)) return;
  if (!c->dispatched && call_observer && c->method) call_observer(c->method, -1);
  c->dispatched = true;
  if (msg)
    c->method->on_message(c, msg);
  else if (c->method->on_half_close)
    c->method->on_half_close(c);
}

void grpc_call_stream_closed(grpc_call_t *c) {
  if (c->stream_closed) return;
  c->stream_closed = true;
  grpc_list_remove(&c->link);
  grpc_deadline_remove(c->srv, c);
  c->out.len = c->out_off = 0;
  if (!c->wire_finished && !c->cancelled) {
    c->cancelled = true;
    if (c->dispatched && !c->handler_done) {
      /* either may finish/answer, and so free, the call */
      if (c->hreq)
        grpc_http_req_client_gone(c->hreq);
      else if (c->method && c->method->on_cancel)
        c->method->on_cancel(c);
      return;
    }
    c->handler_done = true;
  }
  grpc_call_maybe_free(c);
}

/* Submits the response HEADERS of a plain HTTP answer, with our data provider if
 * with_data. */
static void submit_http_headers(grpc_call_t *c, int status, const char *content_type, bool with_data) {
  char code[8];
  snprintf(code, sizeof(code), "%d", status);
  if (!content_type) content_type = "text/plain; charset=utf-8";
  nghttp2_nv nva[2] = {{(uint8_t *)":status", (uint8_t *)code, 7, strlen(code), NGHTTP2_NV_FLAG_NO_COPY_NAME},
                       {(uint8_t *)"content-type", (uint8_t *)content_type, 12, strlen(content_type),
                        NGHTTP2_NV_FLAG_NO_COPY_NAME}};
  nghttp2_data_provider prd = {.source.ptr = c, .read_callback = grpc_call_data_read};
  int rv = nghttp2_submit_response(c->conn->h2, c->stream_id, nva, 2, with_data ? &prd : NULL);
  if (rv) LOGD("grpc: submit_response stream=%d failed: %s", c->stream_id, nghttp2_strerror(rv));
  c->headers_submitted = c->http_resp = true;
  grpc_conn_mark_dirty(c->conn);
}

void grpc_call_http_respond(grpc_call_t *c, int status, const char *content_type, const uint8_t *body,
                            size_t len) {
  c->wire_finished = c->handler_done = c->http_resp = true;
  grpc_deadline_remove(c->srv, c);
  if (!c->stream_closed) {
    c->out.len = c->out_off = 0;
    buf_append(&c->out, body, len);
    submit_http_headers(c, status, content_type, len > 0);
  }
  grpc_call_maybe_free(c);
}

void grpc_call_http_chunk(grpc_call_t *c, const uint8_t *data, size_t len) {
  if (c->stream_closed || c->wire_finished) return;
  out_reclaim(c);
  buf_append(&c->out, data, len);
  if (!c->headers_submitted)
    submit_http_headers(c, 200, "application/json", true);
  else
    resume(c);
}

void grpc_call_http_end(grpc_call_t *c) {
  bool open = !c->stream_closed && !c->wire_finished;
  c->wire_finished = c->handler_done = true;
  if (open) {
    c->deferred = true; /* EOF is reported even if nghttp2 has not asked again yet */
    resume(c);
  }
  grpc_call_maybe_free(c);
}

/* ============================== local calls ============================== */

grpc_call_t *grpc_local_call_new(grpc_server_t *s, const char *path, const grpc_local_ops_t *ops, void *ctx) {
  size_t n = strlen(path);
  void *mctx = NULL;
  const grpc_method_t *m = grpc_server_find_method(s, path, n, &mctx);
  if (!m) return NULL;
  grpc_call_t *c = call_alloc(s);
  c->local = true;
  c->method = m;
  c->method_ctx = mctx;
  c->lops = ops;
  c->lctx = ctx;
  c->stream_closed = c->remote_closed = true; /* there is no stream to wait for */
  c->path = arena_memdup(&c->arena, path, n);
  return c;
}

void grpc_local_call_set_metadata(grpc_call_t *c, const char *name, const char *value) {
  size_t n = strlen(name);
  char *low = arena_memdup(&c->arena, name, n);
  for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)low[i]);
  grpc_call_md_add(c, (const uint8_t *)low, n, (const uint8_t *)value, strlen(value));
}

static void local_run(grpc_call_t *c, ProtobufCMessage *msg);

void grpc_local_call_start(grpc_call_t *c, ProtobufCMessage *msg) {
  if (c->dispatched) {
    LOGE("grpc: local call %s started twice", c->path);
    return;
  }
  if (call_observer) call_observer(c->method, -1);
  c->dispatched = true;
  if (!c->cancelled && c->srv->opts.hold && c->srv->opts.hold(c)) {
    c->held_msg = msg;
    grpc_list_push(&c->srv->locals, &c->link); /* shutdown waits for it, or cancels it */
    grpc_hold_add(c);
    return;
  }
  local_run(c, msg);
}

void grpc_call_local_release(grpc_call_t *c) { local_run(c, c->held_msg); }

/* Runs a started local call's handler: the gate first, then on_message (and the
 * half-close of a client or bidi stream). May free the call. */
static void local_run(grpc_call_t *c, ProtobufCMessage *msg) {
  if (!c->cancelled && gate_refused(c, msg)) return;
  if (c->cancelled) { /* cancelled before it started: no handler runs */
    grpc_call_finish(c, GRPC_CANCELLED, "context canceled");
    return;
  }
  grpc_list_remove(&c->link); /* listed already if it was held */
  grpc_list_push(&c->srv->locals, &c->link);
  c->nest++;
  c->method->on_message(c, msg);
  enum grpc_method_kind k = c->method->kind;
  if ((k == GRPC_CLIENT_STREAM || k == GRPC_BIDI_STREAM) && !c->handler_done && !c->cancelled &&
      c->method->on_half_close)
    c->method->on_half_close(c);
  c->nest--;
  grpc_call_maybe_free(c);
}

void grpc_local_call_abort(grpc_call_t *c) {
  if (c->dispatched) {
    LOGE("grpc: abort of the started local call %s ignored", c->path);
    return;
  }
  c->handler_done = true;
  grpc_call_maybe_free(c);
}

void grpc_local_call_cancel(grpc_call_t *c) {
  if (c->cancelled || c->handler_done) return;
  c->cancelled = true;
  if (c->held) { /* no handler has seen it */
    grpc_hold_drop(c);
    grpc_call_finish(c, GRPC_CANCELLED, "context canceled");
    return;
  }
  if (!c->dispatched) return;
  grpc_server_t *s = c->srv;
  grpc_list_remove(&c->link); /* shutdown no longer waits for it */
  c->nest++;
  if (c->method->on_cancel) c->method->on_cancel(c);
  c->nest--;
  grpc_server_conn_gone(s);
  grpc_call_maybe_free(c);
}

void grpc_local_cancel_all(grpc_server_t *s) {
  while (!grpc_list_empty(&s->locals))
    grpc_local_call_cancel(GRPC_CONTAINER(s->locals.next, grpc_call_t, link));
}

/* ============================== accessors ============================== */

arena_t *grpc_call_arena(grpc_call_t *c) { return &c->arena; }
void *grpc_call_user(grpc_call_t *c) { return c->user; }
void grpc_call_set_user(grpc_call_t *c, void *user) { c->user = user; }
const grpc_method_t *grpc_call_method(grpc_call_t *c) { return c->method; }

void *grpc_call_ctx(grpc_call_t *c) { return c->method_ctx; }
bool grpc_call_cancelled(grpc_call_t *c) { return c->cancelled; }
uint64_t grpc_call_deadline_ms(grpc_call_t *c) { return c->deadline; }
const char *grpc_call_peer(grpc_call_t *c) { return c->conn ? c->conn->peer : "local"; }

void grpc_call_md_add(grpc_call_t *c, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen) {
  if (c->n_md == c->cap_md) {
    uint32_t cap = c->cap_md ? c->cap_md * 2 : 8;
    grpc_md_t *md = arena_alloc(&c->arena, cap * sizeof(*md));
    if (c->n_md) memcpy(md, c->md, c->n_md * sizeof(*md));
    c->md = md;
    c->cap_md = cap;
  }
  c->md[c->n_md].name = arena_memdup(&c->arena, name, nlen);
  c->md[c->n_md].value = arena_memdup(&c->arena, value, vlen);
  c->n_md++;
}

const char *grpc_call_metadata(grpc_call_t *c, const char *name) {
  for (uint32_t i = 0; i < c->n_md; i++)
    if (!strcasecmp(c->md[i].name, name)) return c->md[i].value;
  return NULL;
}

const char *grpc_call_peer_cn(grpc_call_t *c) {
  char cn[256];
  if (!c->conn || !grpc_conn_peer_cn(c->conn, cn, sizeof(cn)) || !*cn) return NULL;
  return arena_memdup(&c->arena, cn, strlen(cn) + 1);
}

grpc_server_t *grpc_call_server(grpc_call_t *c) { return c->conn ? c->srv : NULL; }
