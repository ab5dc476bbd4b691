/* In-process tests of a server connection without a socket: an nghttp2 client session's
 * bytes are fed to a detached connection and its output is fed back (the fuzzing path).
 * Also the server's gate (grpc_server_opts_t.gate) and grpc_server_abort_calls. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "grpc/grpc_int.h"
#include "rpc.pb-c.h"

static grpc_call_t *parked;

/* Range: count = len(key); key "park" is left for the test to finish later. */
static void on_range(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__RangeRequest *req = (Etcdserverpb__RangeRequest *)m;
  if (req->key.len == 4 && !memcmp(req->key.data, "park", 4)) {
    parked = call;
    return;
  }
  Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
  r.count = (int64_t)req->key.len;
  grpc_call_reply(call, &r.base);
}

static int cancels;
static void on_cancel(grpc_call_t *call) {
  (void)call;
  cancels++;
}

static const grpc_method_t methods[] = {
    {"/etcdserverpb.KV/Range", GRPC_UNARY, &etcdserverpb__range_request__descriptor, on_range, NULL,
     on_cancel},
};

typedef struct rec {
  int grpc_status, http_status;
  bool closed;
  size_t data_len;
  char data[256]; /* the first bytes of DATA */
} rec_t;

static int c_on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                       const uint8_t *value, size_t vl, uint8_t flags, void *user) {
  (void)h2, (void)f, (void)flags;
  if (nl == 11 && !memcmp(name, "grpc-status", 11)) {
    int st = 0;
    for (size_t i = 0; i < vl; i++) st = st * 10 + (value[i] - '0');
    ((rec_t *)user)->grpc_status = st;
  }
  if (nl == 7 && !memcmp(name, ":status", 7)) ((rec_t *)user)->http_status = atoi((const char *)value);
  return 0;
}
static int c_on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *d, size_t n, void *user) {
  (void)h2, (void)flags, (void)id;
  rec_t *r = user;
  for (size_t i = 0; i < n && r->data_len + i < sizeof(r->data) - 1; i++)
    r->data[r->data_len + i] = (char)d[i];
  r->data_len += n;
  return 0;
}
static int c_on_close(nghttp2_session *h2, int32_t id, uint32_t code, void *user) {
  (void)h2, (void)id, (void)code;
  ((rec_t *)user)->closed = true;
  return 0;
}
static ssize_t c_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                      nghttp2_data_source *src, void *user) {
  (void)h2, (void)id, (void)user, (void)len;
  const char *key = src->ptr;
  size_t k = strlen(key);
  uint8_t msg[64] = {0, 0, 0, 0, (uint8_t)(k + 2), 0x0a, (uint8_t)k};
  memcpy(msg + 7, key, k);
  memcpy(buf, msg, k + 7);
  *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)(k + 7);
}

/* A client session recording into rec. */
static nghttp2_session *client(rec_t *rec) {
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
  nghttp2_session *h2;
  nghttp2_session_client_new(&h2, cb, rec);
  nghttp2_session_callbacks_del(cb);
  nghttp2_submit_settings(h2, NGHTTP2_FLAG_NONE, NULL, 0);
  return h2;
}

/* Submits a Range request for key, with metadata "hasleader: true" if asked. */
static void request_md(nghttp2_session *h2, const char *key, bool hasleader) {
  nghttp2_nv nva[] = {{(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
                      {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
                      {(uint8_t *)":path", (uint8_t *)"/etcdserverpb.KV/Range", 5, 22, 0},
                      {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
                      {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
                      {(uint8_t *)"hasleader", (uint8_t *)"true", 9, 4, 0}};
  nghttp2_data_provider prd = {.source.ptr = (void *)key, .read_callback = c_read};
  assert_true(nghttp2_submit_request(h2, NULL, nva, hasleader ? 6 : 5, &prd, NULL) > 0);
}

/* Submits a Range request for key. */
static void request(nghttp2_session *h2, const char *key) { request_md(h2, key, false); }

/* Moves bytes both ways until neither side has anything to say. */
static void exchange(nghttp2_session *h2, grpc_conn_t *c, buf_t *sink) {
  for (int round = 0; round < 20; round++) {
    const uint8_t *out;
    ssize_t n;
    bool any = false;
    while ((n = nghttp2_session_mem_send(h2, &out)) > 0) {
      any = true;
      if (grpc_conn_feed(c, out, (size_t)n)) return;
    }
    grpc_conn_flush(c);
    if (sink->len) {
      any = true;
      assert_int_equal(nghttp2_session_mem_recv(h2, sink->data, sink->len), (ssize_t)sink->len);
      sink->len = 0;
    }
    if (!any) return;
  }
}

static void test_unary_and_cancel(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  grpc_server_t *s = grpc_server_new(&loop, NULL);
  grpc_server_add_methods(s, methods, 1, NULL);
  buf_t sink = {0};
  grpc_conn_t *c = grpc_conn_new(s, false, &sink);
  rec_t rec = {.grpc_status = -1};
  nghttp2_session *h2 = client(&rec);
  request(h2, "hello");
  exchange(h2, c, &sink);
  assert_true(rec.closed);
  assert_int_equal(rec.grpc_status, 0);
  assert_int_equal(rec.data_len, 5 + 2);
  /* a parked call is cancelled when the connection goes, and freed when it finishes */
  rec = (rec_t){.grpc_status = -1};
  request(h2, "park");
  exchange(h2, c, &sink);
  assert_non_null(parked);
  assert_false(rec.closed);
  assert_int_equal(s->live_calls, 1);
  grpc_conn_close(c);
  assert_int_equal(cancels, 1);
  assert_true(grpc_call_cancelled(parked));
  assert_int_equal(s->live_calls, 1);
  grpc_call_finish(parked, GRPC_OK, NULL);
  assert_int_equal(s->live_calls, 0);
  nghttp2_session_del(h2);
  buf_free(&sink);
  grpc_server_free(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* Gate: refuses calls whose metadata has "hasleader" (a stand-in for "no leader now"). */
static int gate_calls;
static int refuse_hasleader(grpc_call_t *call, const ProtobufCMessage *msg, const char **message) {
  (void)msg;
  gate_calls++;
  if (!grpc_call_metadata(call, "hasleader")) return GRPC_OK;
  *message = "etcdserver: no leader";
  return GRPC_UNAVAILABLE;
}

/* abort_calls' filter: every call. */
static bool match_all(grpc_call_t *call, void *arg) {
  (void)call, (void)arg;
  return true;
}

/* The gate ends a call before its handler sees it; abort_calls ends a running call with the
 * given status and runs on_cancel; the handler's finish then only frees it. */
static void test_gate_and_abort(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  grpc_server_opts_t o = {.gate = refuse_hasleader};
  grpc_server_t *s = grpc_server_new(&loop, &o);
  grpc_server_add_methods(s, methods, 1, NULL);
  buf_t sink = {0};
  grpc_conn_t *c = grpc_conn_new(s, false, &sink);
  rec_t rec = {.grpc_status = -1};
  nghttp2_session *h2 = client(&rec);
  parked = NULL;
  request_md(h2, "park", true);
  exchange(h2, c, &sink);
  assert_true(rec.closed);
  assert_int_equal(rec.grpc_status, GRPC_UNAVAILABLE);
  assert_null(parked); /* the handler never ran */
  assert_int_equal(gate_calls, 1);
  rec = (rec_t){.grpc_status = -1};
  request(h2, "park");
  exchange(h2, c, &sink);
  assert_non_null(parked);
  assert_false(rec.closed);
  int before = cancels;
  grpc_server_abort_calls(s, match_all, NULL, GRPC_UNAVAILABLE, "etcdserver: no leader");
  exchange(h2, c, &sink);
  assert_true(rec.closed);
  assert_int_equal(rec.grpc_status, GRPC_UNAVAILABLE);
  assert_int_equal(cancels, before + 1);
  assert_true(grpc_call_cancelled(parked));
  grpc_server_abort_calls(s, match_all, NULL, GRPC_INTERNAL, "again"); /* nothing left to end */
  assert_int_equal(cancels, before + 1);
  grpc_call_finish(parked, GRPC_OK, NULL);
  assert_int_equal(s->live_calls, 0);
  nghttp2_session_del(h2);
  buf_free(&sink);
  grpc_server_free(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_garbage(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  grpc_server_t *s = grpc_server_new(&loop, NULL);
  buf_t sink = {0};
  grpc_conn_t *c = grpc_conn_new(s, false, &sink);
  static const uint8_t pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  assert_int_equal(grpc_conn_feed(c, pre, 24), 0);
  static const uint8_t junk[] = {0, 0, 8, 0xff, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 7, 7};
  c->refs++;
  int rc = 0;
  for (int i = 0; i < 10 && rc == 0; i++) rc = grpc_conn_feed(c, junk, sizeof(junk));
  if (rc == 0) grpc_conn_flush(c);
  assert_true(c->closing || rc == 0);
  if (!c->closing) grpc_conn_close(c);
  grpc_conn_unref(c);
  assert_int_equal(s->n_conns, 0);
  buf_free(&sink);
  grpc_server_free(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- plain HTTP over HTTP/2, answered later ---- */

static grpc_http_req_t *http_parked;
static int http_closes;
static void http_on_close(void *arg) {
  (void)arg;
  http_closes++;
}
/* Parks every request for the test to answer; /auth checks a header first. */
static void http_handler(void *ctx, grpc_http_req_t *req, const char *method, const char *path,
                         const uint8_t *body, size_t len) {
  (void)ctx, (void)body, (void)len;
  assert_string_equal(method, "GET");
  if (!strcmp(path, "/auth")) assert_string_equal(grpc_http_req_header(req, "Authorization"), "tok");
  grpc_http_req_on_close(req, http_on_close, NULL);
  http_parked = req;
}

/* Submits a GET for path (with an authorization header). */
static int32_t http_get(nghttp2_session *h2, const char *path) {
  nghttp2_nv nva[] = {{(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
                      {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
                      {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
                      {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
                      {(uint8_t *)"authorization", (uint8_t *)"tok", 13, 3, 0}};
  int32_t id = nghttp2_submit_request(h2, NULL, nva, 5, NULL, NULL);
  assert_true(id > 0);
  return id;
}

static void test_http2_async(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  grpc_server_opts_t o = {.http1 = http_handler};
  grpc_server_t *s = grpc_server_new(&loop, &o);
  buf_t sink = {0};
  grpc_conn_t *c = grpc_conn_new(s, false, &sink);
  rec_t rec = {.grpc_status = -1};
  nghttp2_session *h2 = client(&rec);
  /* a complete answer given later */
  http_get(h2, "/auth");
  exchange(h2, c, &sink);
  assert_non_null(http_parked);
  assert_false(rec.closed);
  grpc_http_respond(http_parked, 202, "application/json", (const uint8_t *)"{}", 2);
  exchange(h2, c, &sink);
  assert_true(rec.closed);
  assert_int_equal(rec.http_status, 202);
  assert_string_equal(rec.data, "{}");
  /* a streamed answer: each chunk reaches the client before the end */
  rec = (rec_t){.grpc_status = -1};
  http_get(h2, "/stream");
  exchange(h2, c, &sink);
  grpc_http_respond_chunk(http_parked, (const uint8_t *)"{\"a\":1}\n", 8);
  exchange(h2, c, &sink);
  assert_int_equal(rec.http_status, 200);
  assert_string_equal(rec.data, "{\"a\":1}\n");
  assert_false(rec.closed);
  grpc_http_respond_chunk(http_parked, (const uint8_t *)"{\"b\":2}\n", 8);
  grpc_http_respond_end(http_parked);
  exchange(h2, c, &sink);
  assert_true(rec.closed);
  assert_string_equal(rec.data, "{\"a\":1}\n{\"b\":2}\n");
  assert_int_equal(http_closes, 0);
  /* the client resets the stream before the answer: on_close, then a harmless answer */
  rec = (rec_t){.grpc_status = -1};
  int32_t id = http_get(h2, "/hang");
  exchange(h2, c, &sink);
  nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  exchange(h2, c, &sink);
  assert_int_equal(http_closes, 1);
  assert_true(grpc_http_req_gone(http_parked));
  assert_int_equal(s->live_calls, 1);
  grpc_http_respond_chunk(http_parked, (const uint8_t *)"x", 1);
  grpc_http_respond(http_parked, 200, NULL, (const uint8_t *)"late", 4);
  assert_int_equal(s->live_calls, 0);
  assert_int_equal(s->live_reqs, 0);
  /* the connection goes away in the middle of a stream */
  http_get(h2, "/stream");
  exchange(h2, c, &sink);
  grpc_http_respond_chunk(http_parked, (const uint8_t *)"{}", 2);
  exchange(h2, c, &sink);
  grpc_conn_close(c);
  assert_int_equal(http_closes, 2);
  grpc_http_respond_end(http_parked);
  assert_int_equal(s->live_calls, 0);
  assert_int_equal(s->live_reqs, 0);
  nghttp2_session_del(h2);
  buf_free(&sink);
  grpc_server_free(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- a long bidi stream does not grow the call's arena ---- */

enum { N_STREAM_MSGS = 10000, KEY_LEN = 1000 };
static int stream_msgs;
static const void *first_head;

/* Watch: checks each (big) message, and that the call's arena did not gain a chunk. */
static void on_watch(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__WatchRequest *wr = (Etcdserverpb__WatchRequest *)m;
  assert_non_null(wr->create_request);
  assert_int_equal(wr->create_request->key.len, KEY_LEN);
  assert_int_equal(wr->create_request->key.data[KEY_LEN - 1], 'k');
  assert_non_null(call->scratch.head); /* decoded into the per-message arena */
  if (stream_msgs++ == 0) first_head = grpc_call_arena(call)->head;
  assert_ptr_equal(grpc_call_arena(call)->head, first_head);
  if (stream_msgs % 1000 == 0) {
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.watch_id = stream_msgs;
    grpc_call_send(call, &r.base);
  }
}
static void on_watch_end(grpc_call_t *call) {
  assert_null(call->scratch.head); /* reset after every message */
  grpc_call_finish(call, GRPC_OK, NULL);
}
static const grpc_method_t watch_methods[] = {
    {"/etcdserverpb.Watch/Watch", GRPC_BIDI_STREAM, &etcdserverpb__watch_request__descriptor, on_watch,
     on_watch_end, NULL},
};

typedef struct gen {
  buf_t msg;    /* one framed request */
  size_t total; /* bytes to send: N_STREAM_MSGS messages */
  size_t off;
} gen_t;
/* Client data provider: the same framed message N_STREAM_MSGS times, then EOF. */
static ssize_t gen_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *user) {
  (void)h2, (void)id, (void)user;
  gen_t *g = src->ptr;
  size_t n = 0;
  while (n < len && g->off < g->total) {
    size_t in = g->off % g->msg.len, k = g->msg.len - in;
    if (k > len - n) k = len - n;
    if (k > g->total - g->off) k = g->total - g->off;
    memcpy(buf + n, g->msg.data + in, k);
    n += k;
    g->off += k;
  }
  if (g->off == g->total) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static void test_stream_arena_bounded(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  grpc_server_t *s = grpc_server_new(&loop, NULL);
  grpc_server_add_methods(s, watch_methods, 1, NULL);
  buf_t sink = {0};
  grpc_conn_t *c = grpc_conn_new(s, false, &sink);
  rec_t rec = {.grpc_status = -1};
  nghttp2_session *h2 = client(&rec);
  gen_t g = {0};
  uint8_t key[KEY_LEN];
  memset(key, 'k', sizeof(key));
  Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
  cr.key.data = key;
  cr.key.len = sizeof(key);
  Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
  wr.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
  wr.create_request = &cr;
  size_t n = protobuf_c_message_get_packed_size(&wr.base);
  buf_reserve(&g.msg, n + 5);
  g.msg.data[0] = 0;
  g.msg.data[1] = (uint8_t)(n >> 24), g.msg.data[2] = (uint8_t)(n >> 16);
  g.msg.data[3] = (uint8_t)(n >> 8), g.msg.data[4] = (uint8_t)n;
  protobuf_c_message_pack(&wr.base, g.msg.data + 5);
  g.msg.len = n + 5;
  g.total = g.msg.len * N_STREAM_MSGS;
  nghttp2_nv nva[] = {{(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
                      {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
                      {(uint8_t *)":path", (uint8_t *)"/etcdserverpb.Watch/Watch", 5, 25, 0},
                      {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
                      {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0}};
  nghttp2_data_provider prd = {.source.ptr = &g, .read_callback = gen_read};
  assert_true(nghttp2_submit_request(h2, NULL, nva, 5, &prd, NULL) > 0);
  for (int i = 0; i < 100000 && !rec.closed; i++) exchange(h2, c, &sink);
  assert_true(rec.closed);
  assert_int_equal(stream_msgs, N_STREAM_MSGS);
  assert_int_equal(rec.grpc_status, 0);
  assert_int_equal(rec.data_len, 10 * (5 + 3)); /* ten WatchResponse{watch_id} */
  assert_int_equal(s->live_calls, 0);
  buf_free(&g.msg);
  grpc_conn_close(c);
  nghttp2_session_del(h2);
  buf_free(&sink);
  grpc_server_free(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* What a framing test's client saw on the wire: DATA frames and their payload bytes. */
typedef struct wire {
  int data_frames;
  size_t max_frame;
  buf_t bytes; /* every DATA payload, in order */
} wire_t;

static int w_on_frame(nghttp2_session *h2, const nghttp2_frame *f, void *user) {
  (void)h2;
  wire_t *w = user;
  if (f->hd.type == NGHTTP2_DATA && f->hd.length > 0) {
    w->data_frames++;
    if (f->hd.length > w->max_frame) w->max_frame = f->hd.length;
  }
  return 0;
}
static int w_on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *d, size_t n, void *user) {
  (void)h2, (void)flags, (void)id;
  buf_append(&((wire_t *)user)->bytes, d, n);
  return 0;
}

/* A client session recording DATA into w; its stream window is `window` bytes and it
 * only opens it again when the test calls nghttp2_session_consume (a slow reader). */
static nghttp2_session *wire_client(wire_t *w, uint32_t window) {
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, w_on_frame);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, w_on_data);
  nghttp2_option *opt;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session *h2;
  nghttp2_session_client_new2(&h2, cb, w, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window};
  nghttp2_submit_settings(h2, NGHTTP2_FLAG_NONE, &iv, 1);
  return h2;
}

/* Decodes the gRPC messages in w's bytes as RangeResponses and checks that their counts
 * are first, first+1, ...; returns how many there were. */
static int64_t decode_in_order(wire_t *w, int64_t first) {
  size_t off = 0;
  int64_t next = first;
  while (off + 5 <= w->bytes.len) {
    const uint8_t *p = w->bytes.data + off;
    uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    assert_true(off + 5 + len <= w->bytes.len);
    Etcdserverpb__RangeResponse *m = etcdserverpb__range_response__unpack(NULL, len, p + 5);
    assert_non_null(m);
    assert_int_equal(m->count, next);
    next++;
    etcdserverpb__range_response__free_unpacked(m, NULL);
    off += 5 + len;
  }
  assert_int_equal(off, w->bytes.len);
  return next - first;
}

/* Queues a RangeResponse{count} on call with a 40-byte padding key-value pair. */
static void send_count(grpc_call_t *call, int64_t count) {
  static const char pad[] = "0123456789012345678901234567890123456789";
  Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
  Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT, *p = &kv;
  kv.key.data = (uint8_t *)pad;
  kv.key.len = sizeof(pad) - 1;
  r.kvs = &p;
  r.n_kvs = 1;
  r.count = count;
  assert_int_equal(grpc_call_send(call, &r.base), 0);
}

static int64_t refill_next, refill_until;
static int refills;

/* Refill hook of the framing test: queues up to 100 of the messages kept aside. */
static void test_refill(grpc_call_t *call) {
  refills++;
  for (int i = 0; i < 100 && refill_next < refill_until; i++) send_count(call, refill_next++);
}

/* Framing: messages queued together leave in few DATA frames (many per frame, frames up
 * to the peer's 16 KiB) and in one flush; every message decodes, in order. The refill
 * hook runs only when HTTP/2 has taken everything queued and wants more, and what it
 * queues leaves in the same flush. With a slow reader, no more than its window is sent
 * and the rest stays queued (backlogged, no refill) until it opens the window again. */
static void test_framing_and_refill(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  grpc_server_t *s = grpc_server_new(&loop, NULL);
  grpc_server_add_methods(s, methods, 1, NULL);
  buf_t sink = {0};
  grpc_conn_t *c = grpc_conn_new(s, false, &sink);
  wire_t w = {0};
  enum { N = 1000, WINDOW = 4096 };
  nghttp2_session *h2 = wire_client(&w, 1 << 20);
  nghttp2_session_set_local_window_size(h2, NGHTTP2_FLAG_NONE, 0, 64 << 20);
  parked = NULL;
  request(h2, "park");
  exchange(h2, c, &sink);
  assert_non_null(parked);
  grpc_call_t *call = parked;
  /* N messages queued at once: one flush, a few full DATA frames */
  for (int64_t i = 0; i < N; i++) send_count(call, i);
  assert_true(grpc_call_backlogged(call));
  grpc_conn_flush(c);
  assert_false(grpc_call_backlogged(call));
  assert_int_equal(nghttp2_session_mem_recv(h2, sink.data, sink.len), (ssize_t)sink.len);
  sink.len = 0;
  size_t payload = w.bytes.len;
  assert_int_equal(decode_in_order(&w, 0), N);
  assert_int_equal(w.max_frame, 16384);
  assert_int_equal(w.data_frames, (int)((payload + 16383) / 16384));
  /* the refill hook: called once the queue is empty, its messages go out at once */
  w.bytes.len = 0;
  w.data_frames = 0;
  grpc_call_set_refill(call, test_refill);
  refill_next = 0;
  refill_until = 250;
  refills = 0;
  send_count(call, refill_next++);
  grpc_conn_flush(c);
  assert_int_equal(refills, 5); /* 100 + 100 + 49 + nothing for the frame, nothing after it */
  assert_int_equal(nghttp2_session_mem_recv(h2, sink.data, sink.len), (ssize_t)sink.len);
  sink.len = 0;
  assert_int_equal(decode_in_order(&w, 0), 250);
  assert_int_equal(w.data_frames, 1); /* 250 messages of 52 bytes: one frame */
  nghttp2_session_consume_stream(h2, 1, w.bytes.len);
  nghttp2_session_consume_connection(h2, w.bytes.len);
  exchange(h2, c, &sink);
  /* a slow reader: only WINDOW bytes leave; the rest waits, the hook is not asked */
  grpc_call_finish(call, GRPC_OK, NULL);
  nghttp2_session_del(h2);
  grpc_conn_close(c);
  buf_free(&w.bytes);
  w = (wire_t){0};
  sink.len = 0;
  c = grpc_conn_new(s, false, &sink);
  h2 = wire_client(&w, WINDOW);
  parked = NULL;
  request(h2, "park");
  exchange(h2, c, &sink);
  assert_non_null(parked);
  call = parked;
  grpc_call_set_refill(call, test_refill);
  refill_next = refill_until = 0;
  refills = 0;
  for (int64_t i = 0; i < 200; i++) send_count(call, i);
  exchange(h2, c, &sink);
  assert_int_equal(w.bytes.len, WINDOW);
  assert_true(grpc_call_backlogged(call));
  assert_int_equal(refills, 0);
  size_t total = 0;
  for (int round = 0; round < 100 && grpc_call_backlogged(call); round++) {
    size_t got = w.bytes.len - total;
    assert_true(got <= WINDOW);
    total = w.bytes.len;
    nghttp2_session_consume_stream(h2, 1, got);
    nghttp2_session_consume_connection(h2, got);
    exchange(h2, c, &sink);
  }
  assert_false(grpc_call_backlogged(call));
  assert_int_equal(decode_in_order(&w, 0), 200);
  grpc_call_finish(call, GRPC_OK, NULL);
  exchange(h2, c, &sink);
  grpc_conn_close(c);
  nghttp2_session_del(h2);
  buf_free(&w.bytes);
  buf_free(&sink);
  grpc_server_free(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary_and_cancel),     cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_gate_and_abort),       cmocka_unit_test(test_http2_async),
      cmocka_unit_test(test_stream_arena_bounded), cmocka_unit_test(test_framing_and_refill),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
