/* Loopback tests: a grpc_server on 127.0.0.1 (ephemeral port) running in its own thread,
 * driven by a small blocking nghttp2 client written here. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "grpc/grpc_frame.h"
#include "grpc/grpc_server.h"
#include "grpc/grpc_status.h"
#include "rpc.pb-c.h"

/* ============================== server side ============================== */

static atomic_int g_port;
static atomic_int g_cancels;     /* on_cancel calls */
static atomic_int g_half_closes; /* on_half_close calls */
static atomic_int g_shutdown_done;
static atomic_int g_watch_msgs;
static uv_loop_t g_loop;
static uv_async_t g_stop;
static grpc_server_t *g_srv;
static pthread_t g_thread;
static int64_t g_methods_ctx = 77; /* registered with the method table: handlers read it back */

/* Replies RangeResponse{count = len(key)} after a timer (the asynchronous reply path). */
typedef struct later {
  uv_timer_t t;
  grpc_call_t *call;
} later_t;

/* Builds RangeResponse{count = n, header.revision = 1} in the call's arena and replies. */
static void reply_count(grpc_call_t *call, int64_t n) {
  arena_t *a = grpc_call_arena(call);
  Etcdserverpb__RangeResponse *r = arena_alloc(a, sizeof(*r));
  etcdserverpb__range_response__init(r);
  Etcdserverpb__ResponseHeader *h = arena_alloc(a, sizeof(*h));
  etcdserverpb__response_header__init(h);
  h->revision = 1;
  r->header = h;
  r->count = n;
  grpc_call_reply(call, &r->base);
}

static void later_closed(uv_handle_t *h) { free(h->data); }
static void later_fire(uv_timer_t *t) {
  later_t *l = t->data;
  reply_count(l->call, 5);
  uv_close((uv_handle_t *)t, later_closed);
}

/* KV.Range: count = len(key); special keys select error paths. */
static void on_range(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__RangeRequest *req = (Etcdserverpb__RangeRequest *)m;
  const char *k = (const char *)req->key.data;
  size_t n = req->key.len;
  if (n == 3 && !memcmp(k, "err", 3)) {
    grpc_call_finish(call, GRPC_FAILED_PRECONDITION, "bad things 100%\n");
  } else if (n == 4 && !memcmp(k, "slow", 4)) {
    /* never answers: the deadline or a cancel ends it (on_range_cancel finishes) */
  } else if (n == 5 && !memcmp(k, "async", 5)) {
    later_t *l = calloc(1, sizeof(*l));
    l->call = call;
    uv_timer_init(&g_loop, &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, later_fire, 20, 0);
  } else if (n == 2 && !memcmp(k, "md", 2)) {
    const char *tok = grpc_call_metadata(call, "token");
    reply_count(call, tok ? (int64_t)strlen(tok) : -1);
  } else if (n == 3 && !memcmp(k, "ctx", 3)) {
    reply_count(call, *(const int64_t *)grpc_call_ctx(call));
  } else {
    reply_count(call, (int64_t)n);
  }
}

static void on_range_cancel(grpc_call_t *call) {
  atomic_fetch_add(&g_cancels, 1);
  grpc_call_finish(call, GRPC_CANCELLED, "ignored");
}

/* Watch (bidi): echo each request as a response with watch_id = sequence number. */
static void on_watch(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
  r.watch_id = atomic_fetch_add(&g_watch_msgs, 1) + 1;
  r.created = true;
  assert_int_equal(grpc_call_send(call, &r.base), 0);
}
static void on_watch_half_close(grpc_call_t *call) {
  atomic_fetch_add(&g_half_closes, 1);
  grpc_call_finish(call, GRPC_OK, NULL);
}
static void on_watch_cancel(grpc_call_t *call) {
  atomic_fetch_add(&g_cancels, 1);
  assert_true(grpc_call_cancelled(call));
  Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
  assert_int_equal(grpc_call_send(call, &r.base), -40020); /* CETCD_ECANCELED */
  grpc_call_finish(call, GRPC_OK, NULL);
}

/* Maintenance.Snapshot (server stream): three chunks then OK. */
static void on_snapshot(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  for (int i = 0; i < 3; i++) {
    uint8_t blob[100];
    memset(blob, 'a' + i, sizeof(blob));
    Etcdserverpb__SnapshotResponse r = ETCDSERVERPB__SNAPSHOT_RESPONSE__INIT;
    r.remaining_bytes = (uint64_t)(2 - i);
    r.blob.data = blob;
    r.blob.len = sizeof(blob);
    grpc_call_send(call, &r.base);
  }
  grpc_call_finish(call, GRPC_OK, NULL);
}

static const grpc_method_t methods[] = {
    {"/etcdserverpb.KV/Range", GRPC_UNARY, &etcdserverpb__range_request__descriptor, on_range, NULL,
     on_range_cancel},
    {"/etcdserverpb.Watch/Watch", GRPC_BIDI_STREAM, &etcdserverpb__watch_request__descriptor, on_watch,
     on_watch_half_close, on_watch_cancel},
    {"/etcdserverpb.Maintenance/Snapshot", GRPC_SERVER_STREAM, &etcdserverpb__snapshot_request__descriptor,
     on_snapshot, NULL, NULL},
};

/* HTTP handler: /health only. */
static void http1(void *ctx, grpc_http_req_t *req, const char *method, const char *path, const uint8_t *b,
                  size_t n) {
  (void)ctx, (void)b, (void)n;
  if (strcmp(path, "/health") || strcmp(method, "GET")) {
    grpc_http_respond(req, 404, NULL, (const uint8_t *)"404 page not found\n", 19);
    return;
  }
  static const char health[] = "{\"health\":\"true\"}";
  grpc_http_respond(req, 200, "application/json", (const uint8_t *)health, sizeof(health) - 1);
}

static void shutdown_done(void *arg) {
  (void)arg;
  atomic_store(&g_shutdown_done, 1);
  uv_close((uv_handle_t *)&g_stop, NULL);
}
static void on_stop(uv_async_t *a) {
  unsigned grace = (unsigned)(uintptr_t)a->data;
  grpc_server_shutdown(g_srv, grace, shutdown_done, NULL);
}

static void *server_main(void *arg) {
  (void)arg;
  uv_loop_init(&g_loop);
  grpc_server_opts_t o = {.max_recv_msg_bytes = 2 * 1024 * 1024, .http1 = http1};
  g_srv = grpc_server_new(&g_loop, &o);
  grpc_server_add_methods(g_srv, methods, sizeof(methods) / sizeof(*methods), &g_methods_ctx);
  assert_int_equal(grpc_server_listen(g_srv, "127.0.0.1", 0, NULL), 0);
  uv_async_init(&g_loop, &g_stop, on_stop);
  atomic_store(&g_port, grpc_server_port(g_srv));
  uv_run(&g_loop, UV_RUN_DEFAULT);
  grpc_server_free(g_srv);
  uv_run(&g_loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&g_loop), 0);
  return NULL;
}

/* ============================== client side ============================== */

typedef struct cstream {
  int32_t id;
  int http_status, grpc_status;
  char grpc_message[512]; /* raw, percent-encoded */
  char content_type[64];
  int n_headers;
  bool trailers_only, closed;
  uint32_t rst_code;
  buf_t data;
  buf_t send;
  size_t send_off;
  bool send_eof;
} cstream_t;

typedef struct client {
  int fd;
  nghttp2_session *h2;
  bool eof, goaway;
  cstream_t *streams[64];
  int n;
} client_t;

/* The client-side record of a stream id. */
static cstream_t *cs_find(client_t *c, int32_t id) {
  for (int i = 0; i < c->n; i++)
    if (c->streams[i]->id == id) return c->streams[i];
  return NULL;
}

static int c_on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                       const uint8_t *value, size_t vl, uint8_t flags, void *user) {
  (void)h2, (void)flags;
  cstream_t *s = cs_find(user, f->hd.stream_id);
  if (!s) return 0;
  char v[512];
  snprintf(v, sizeof(v), "%.*s", (int)vl, value);
  if (nl == 7 && !memcmp(name, ":status", 7)) s->http_status = atoi(v);
  if (nl == 11 && !memcmp(name, "grpc-status", 11)) s->grpc_status = atoi(v);
  if (nl == 12 && !memcmp(name, "grpc-message", 12))
    snprintf(s->grpc_message, sizeof(s->grpc_message), "%s", v);
  if (nl == 12 && !memcmp(name, "content-type", 12))
    snprintf(s->content_type, sizeof(s->content_type), "%.63s", v);
  return 0;
}
static int c_on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *user) {
  (void)h2;
  client_t *c = user;
  if (f->hd.type == NGHTTP2_GOAWAY) c->goaway = true;
  cstream_t *s = cs_find(c, f->hd.stream_id);
  if (!s || f->hd.type != NGHTTP2_HEADERS) return 0;
  s->n_headers++;
  if (s->n_headers == 1 && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) s->trailers_only = true;
  return 0;
}
static int c_on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *d, size_t n, void *user) {
  (void)h2, (void)flags;
  cstream_t *s = cs_find(user, id);
  if (s) buf_append(&s->data, d, n);
  return 0;
}
static int c_on_close(nghttp2_session *h2, int32_t id, uint32_t code, void *user) {
  (void)h2;
  cstream_t *s = cs_find(user, id);
  if (s) {
    s->closed = true;
    s->rst_code = code;
  }
  return 0;
}
static ssize_t c_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                      nghttp2_data_source *src, void *user) {
  (void)h2, (void)id, (void)user;
  cstream_t *s = src->ptr;
  size_t avail = s->send.len - s->send_off;
  if (avail == 0 && !s->send_eof) return NGHTTP2_ERR_DEFERRED;
  size_t n = avail < len ? avail : len;
  if (n) memcpy(buf, s->send.data + s->send_off, n);
  s->send_off += n;
  if (s->send_off == s->send.len && s->send_eof) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

/* Connects to the test server and sends the preface and SETTINGS. */
static client_t *client_new(void) {
  client_t *c = calloc(1, sizeof(*c));
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atomic_load(&g_port))};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
  nghttp2_session_client_new(&c->h2, cb, c);
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
  nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 1);
  return c;
}

static void client_free(client_t *c) {
  for (int i = 0; i < c->n; i++) {
    buf_free(&c->streams[i]->data);
    buf_free(&c->streams[i]->send);
    free(c->streams[i]);
  }
  nghttp2_session_del(c->h2);
  close(c->fd);
  free(c);
}

/* Writes all pending output, then reads for up to ms milliseconds or until done(c, arg). */
static void pump(client_t *c, int ms, bool (*done)(client_t *, void *), void *arg) {
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    const uint8_t *out;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(c->h2, &out)) > 0) {
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(c->fd, out + off, (size_t)(n - off));
        if (w <= 0) break;
        off += w;
      }
    }
    if (done && done(c, arg)) return;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (el >= ms || c->eof) return;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, (int)(ms - el)) <= 0) continue;
    uint8_t buf[65536];
    ssize_t r = read(c->fd, buf, sizeof(buf));
    if (r <= 0) {
      c->eof = true;
      return;
    }
    assert_true(nghttp2_session_mem_recv(c->h2, buf, (size_t)r) == r);
  }
}

static bool stream_closed(client_t *c, void *arg) {
  (void)c;
  return ((cstream_t *)arg)->closed;
}

/* Starts a request; body (may be NULL) is queued, eof half-closes after it. */
static cstream_t *start(client_t *c, const char *path, const void *body, size_t len, bool eof,
                        const nghttp2_nv *extra, size_t n_extra) {
  cstream_t *s = calloc(1, sizeof(*s));
  s->grpc_status = -1;
  buf_append(&s->send, body, len);
  s->send_eof = eof;
  nghttp2_nv nva[12] = {
      {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
      {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
      {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
      {(uint8_t *)":authority", (uint8_t *)"localhost", 10, 9, 0},
      {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
      {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
  };
  size_t n = 6;
  for (size_t i = 0; i < n_extra; i++) nva[n++] = extra[i];
  nghttp2_data_provider prd = {.source.ptr = s, .read_callback = c_read};
  s->id = nghttp2_submit_request(c->h2, NULL, nva, n, &prd, s);
  assert_true(s->id > 0);
  c->streams[c->n++] = s;
  return s;
}

/* Queues more request bytes on a stream (and optionally half-closes). */
static void stream_write(client_t *c, cstream_t *s, const void *p, size_t n, bool eof) {
  buf_append(&s->send, p, n);
  s->send_eof = eof;
  nghttp2_session_resume_data(c->h2, s->id);
}

/* Appends a framed, packed protobuf message to b. */
static void frame_msg(buf_t *b, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  buf_reserve(b, n + 5);
  grpc_frame_prefix(b->data + b->len, (uint32_t)n);
  protobuf_c_message_pack(m, b->data + b->len + 5);
  b->len += n + 5;
}

/* A framed RangeRequest for key. */
static buf_t range_req(const char *key) {
  Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
  r.key.data = (uint8_t *)key;
  r.key.len = strlen(key);
  buf_t b = {0};
  frame_msg(&b, &r.base);
  return b;
}

typedef struct msgs {
  int n;
  ProtobufCMessage *m[16];
  const ProtobufCMessageDescriptor *d;
} msgs_t;
static int collect_msg(void *ctx, const uint8_t *p, size_t n) {
  msgs_t *ms = ctx;
  if (ms->n < 16) ms->m[ms->n] = protobuf_c_message_unpack(ms->d, NULL, n, p);
  ms->n++;
  return 0;
}
/* Splits a stream's received DATA into decoded messages of type d. */
static msgs_t decode_all(cstream_t *s, const ProtobufCMessageDescriptor *d) {
  msgs_t ms = {.d = d};
  grpc_deframer_t df;
  grpc_deframer_init(&df, 0);
  assert_int_equal(grpc_deframer_feed(&df, s->data.data, s->data.len, collect_msg, &ms), 0);
  assert_true(grpc_deframer_idle(&df));
  grpc_deframer_reset(&df);
  return ms;
}
static void msgs_free(msgs_t *ms) {
  for (int i = 0; i < ms->n && i < 16; i++)
    if (ms->m[i]) protobuf_c_message_free_unpacked(ms->m[i], NULL);
}

/* Runs a unary Range with the given key and optional extra headers until the stream closes. */
static cstream_t *unary(client_t *c, const char *key, const nghttp2_nv *extra, size_t n_extra) {
  buf_t b = range_req(key);
  cstream_t *s = start(c, "/etcdserverpb.KV/Range", b.data, b.len, true, extra, n_extra);
  buf_free(&b);
  pump(c, 3000, stream_closed, s);
  assert_true(s->closed);
  return s;
}

/* ============================== tests ============================== */

static void test_unary_ok(void **state) {
  (void)state;
  client_t *c = client_new();
  cstream_t *s = unary(c, "abc", NULL, 0);
  assert_int_equal(s->http_status, 200);
  assert_string_equal(s->content_type, "application/grpc");
  assert_int_equal(s->grpc_status, 0);
  assert_false(s->trailers_only);
  assert_int_equal(s->n_headers, 2);
  msgs_t ms = decode_all(s, &etcdserverpb__range_response__descriptor);
  assert_int_equal(ms.n, 1);
  Etcdserverpb__RangeResponse *r = (Etcdserverpb__RangeResponse *)ms.m[0];
  assert_int_equal(r->count, 3);
  assert_int_equal(r->header->revision, 1);
  msgs_free(&ms);
  /* an asynchronous reply from a timer, and metadata */
  s = unary(c, "async", NULL, 0);
  assert_int_equal(s->grpc_status, 0);
  ms = decode_all(s, &etcdserverpb__range_response__descriptor);
  assert_int_equal(((Etcdserverpb__RangeResponse *)ms.m[0])->count, 5);
  msgs_free(&ms);
  nghttp2_nv md[] = {{(uint8_t *)"token", (uint8_t *)"secret!", 5, 7, 0}};
  s = unary(c, "md", md, 1);
  ms = decode_all(s, &etcdserverpb__range_response__descriptor);
  assert_int_equal(((Etcdserverpb__RangeResponse *)ms.m[0])->count, 7);
  msgs_free(&ms);
  /* the handler gets the context its table was registered with */
  s = unary(c, "ctx", NULL, 0);
  ms = decode_all(s, &etcdserverpb__range_response__descriptor);
  assert_int_equal(((Etcdserverpb__RangeResponse *)ms.m[0])->count, 77);
  msgs_free(&ms);
  client_free(c);
}

static void test_many_concurrent(void **state) {
  (void)state;
  client_t *c = client_new();
  enum { N = 200 };
  cstream_t *ss[N];
  buf_t b = range_req("0123456789");
  /* the client table is small: reuse it by resetting between batches */
  for (int batch = 0; batch < N / 50; batch++) {
    for (int i = 0; i < 50; i++) ss[i] = start(c, "/etcdserverpb.KV/Range", b.data, b.len, true, NULL, 0);
    for (int i = 0; i < 50; i++) pump(c, 3000, stream_closed, ss[i]);
    for (int i = 0; i < 50; i++) {
      assert_true(ss[i]->closed);
      assert_int_equal(ss[i]->grpc_status, 0);
      assert_int_equal(ss[i]->data.len, 5 + 6); /* header{revision:1} + count:10 */
      buf_free(&ss[i]->data);
      buf_free(&ss[i]->send);
      free(ss[i]);
    }
    c->n = 0;
  }
  buf_free(&b);
  client_free(c);
}

static void test_trailers_only_error(void **state) {
  (void)state;
  client_t *c = client_new();
  cstream_t *s = unary(c, "err", NULL, 0);
  assert_true(s->trailers_only);
  assert_int_equal(s->n_headers, 1);
  assert_int_equal(s->http_status, 200);
  assert_string_equal(s->content_type, "application/grpc");
  assert_int_equal(s->grpc_status, GRPC_FAILED_PRECONDITION);
  assert_string_equal(s->grpc_message, "bad things 100%25%0A");
  assert_int_equal(s->data.len, 0);
  client_free(c);
}

static void test_unknown_method(void **state) {
  (void)state;
  client_t *c = client_new();
  buf_t b = range_req("x");
  cstream_t *s = start(c, "/etcdserverpb.KV/Nope", b.data, b.len, true, NULL, 0);
  cstream_t *s2 = start(c, "/foo.Bar/Baz", b.data, b.len, true, NULL, 0);
  cstream_t *s3 = start(c, "nonsense", b.data, b.len, true, NULL, 0);
  pump(c, 3000, stream_closed, s3);
  pump(c, 3000, stream_closed, s2);
  pump(c, 3000, stream_closed, s);
  assert_int_equal(s->grpc_status, GRPC_UNIMPLEMENTED);
  assert_true(s->trailers_only);
  assert_string_equal(s->grpc_message, "unknown method Nope for service etcdserverpb.KV");
  assert_int_equal(s2->grpc_status, GRPC_UNIMPLEMENTED);
  assert_string_equal(s2->grpc_message, "unknown service foo.Bar");
  assert_true(s3->closed); /* nghttp2 itself refuses a path without '/' */
  buf_free(&b);
  client_free(c);
}

static void test_bad_requests(void **state) {
  (void)state;
  client_t *c = client_new();
  /* oversized: only the prefix is needed */
  uint8_t big[5];
  grpc_frame_prefix(big, 3 * 1024 * 1024);
  cstream_t *s = start(c, "/etcdserverpb.KV/Range", big, 5, false, NULL, 0);
  pump(c, 3000, stream_closed, s);
  assert_int_equal(s->grpc_status, GRPC_RESOURCE_EXHAUSTED);
  assert_string_equal(s->grpc_message, "grpc: received message larger than max (3145728 vs. 2097152)");
  /* malformed protobuf: field 1 (bytes) with a length running past the end */
  uint8_t bad[5 + 3] = {0, 0, 0, 0, 3, 0x0a, 0x7f, 'x'};
  s = start(c, "/etcdserverpb.KV/Range", bad, sizeof(bad), true, NULL, 0);
  pump(c, 3000, stream_closed, s);
  assert_int_equal(s->grpc_status, GRPC_INTERNAL);
  assert_true(!strncmp(s->grpc_message, "grpc: error unmarshalling request: ", 35));
  /* compressed flag */
  uint8_t comp[6] = {1, 0, 0, 0, 1, 0};
  s = start(c, "/etcdserverpb.KV/Range", comp, sizeof(comp), true, NULL, 0);
  pump(c, 3000, stream_closed, s);
  assert_int_equal(s->grpc_status, GRPC_UNIMPLEMENTED);
  assert_string_equal(s->grpc_message, "grpc: compressed messages not supported");
  /* grpc-encoding gzip */
  nghttp2_nv gz[] = {{(uint8_t *)"grpc-encoding", (uint8_t *)"gzip", 13, 4, 0}};
  s = unary(c, "x", gz, 1);
  assert_int_equal(s->grpc_status, GRPC_UNIMPLEMENTED);
  /* no message at all */
  s = start(c, "/etcdserverpb.KV/Range", NULL, 0, true, NULL, 0);
  pump(c, 3000, stream_closed, s);
  assert_int_equal(s->grpc_status, GRPC_INTERNAL);
  /* half a message, then END_STREAM */
  s = start(c, "/etcdserverpb.KV/Range", bad, 6, true, NULL, 0);
  pump(c, 3000, stream_closed, s);
  assert_int_equal(s->grpc_status, GRPC_INTERNAL);
  /* the connection is still good */
  s = unary(c, "ok", NULL, 0);
  assert_int_equal(s->grpc_status, 0);
  assert_false(c->eof);
  client_free(c);
}

/* Waits until the stream holds at least want framed messages. */
static int wait_msgs(client_t *c, cstream_t *s, int want) {
  for (int i = 0; i < 100; i++) {
    msgs_t ms = decode_all(s, &etcdserverpb__watch_response__descriptor);
    int n = ms.n;
    msgs_free(&ms);
    if (n >= want) return n;
    pump(c, 30, NULL, NULL);
  }
  return -1;
}

static void test_bidi_stream(void **state) {
  (void)state;
  client_t *c = client_new();
  cstream_t *s = start(c, "/etcdserverpb.Watch/Watch", NULL, 0, false, NULL, 0);
  int before = atomic_load(&g_watch_msgs);
  int half = atomic_load(&g_half_closes);
  for (int i = 1; i <= 3; i++) {
    Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
    buf_t b = {0};
    frame_msg(&b, &wr.base);
    stream_write(c, s, b.data, b.len, false);
    buf_free(&b);
    assert_int_equal(wait_msgs(c, s, i), i); /* each answer arrives before the next request */
  }
  assert_int_equal(atomic_load(&g_watch_msgs) - before, 3);
  assert_false(s->closed);
  stream_write(c, s, NULL, 0, true); /* half-close */
  pump(c, 3000, stream_closed, s);
  assert_true(s->closed);
  assert_int_equal(s->grpc_status, 0);
  assert_int_equal(atomic_load(&g_half_closes) - half, 1);
  msgs_t ms = decode_all(s, &etcdserverpb__watch_response__descriptor);
  assert_int_equal(ms.n, 3);
  assert_int_equal(((Etcdserverpb__WatchResponse *)ms.m[2])->watch_id, before + 3);
  msgs_free(&ms);
  client_free(c);
}

static void test_server_stream(void **state) {
  (void)state;
  client_t *c = client_new();
  Etcdserverpb__SnapshotRequest r = ETCDSERVERPB__SNAPSHOT_REQUEST__INIT;
  buf_t b = {0};
  frame_msg(&b, &r.base);
  cstream_t *s = start(c, "/etcdserverpb.Maintenance/Snapshot", b.data, b.len, true, NULL, 0);
  buf_free(&b);
  pump(c, 3000, stream_closed, s);
  assert_int_equal(s->grpc_status, 0);
  msgs_t ms = decode_all(s, &etcdserverpb__snapshot_response__descriptor);
  assert_int_equal(ms.n, 3);
  for (int i = 0; i < 3; i++) {
    Etcdserverpb__SnapshotResponse *sr = (Etcdserverpb__SnapshotResponse *)ms.m[i];
    assert_int_equal(sr->remaining_bytes, 2 - i);
    assert_int_equal(sr->blob.len, 100);
    assert_int_equal(sr->blob.data[0], 'a' + i);
  }
  msgs_free(&ms);
  client_free(c);
}

/* Waits (pumping the client) until the cancel counter reaches want. */
static bool wait_cancels(client_t *c, int want) {
  for (int i = 0; i < 100 && atomic_load(&g_cancels) < want; i++) pump(c, 20, NULL, NULL);
  return atomic_load(&g_cancels) >= want;
}

static void test_rst_stream_cancels(void **state) {
  (void)state;
  client_t *c = client_new();
  int base = atomic_load(&g_cancels);
  Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
  buf_t b = {0};
  frame_msg(&b, &wr.base);
  cstream_t *s = start(c, "/etcdserverpb.Watch/Watch", b.data, b.len, false, NULL, 0);
  assert_int_equal(wait_msgs(c, s, 1), 1);
  nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
  assert_true(wait_cancels(c, base + 1));
  /* a unary call stuck in its handler is cancelled too */
  cstream_t *u = start(c, "/etcdserverpb.KV/Range", NULL, 0, false, NULL, 0);
  buf_t k = range_req("slow");
  stream_write(c, u, k.data, k.len, true);
  pump(c, 100, NULL, NULL);
  nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, u->id, NGHTTP2_CANCEL);
  assert_true(wait_cancels(c, base + 2));
  /* and so is a stream whose connection goes away */
  cstream_t *s2 = start(c, "/etcdserverpb.Watch/Watch", b.data, b.len, false, NULL, 0);
  assert_int_equal(wait_msgs(c, s2, 1), 1);
  client_free(c);
  for (int i = 0; i < 100 && atomic_load(&g_cancels) < base + 3; i++) usleep(10000);
  assert_int_equal(atomic_load(&g_cancels), base + 3);
  buf_free(&b);
  buf_free(&k);
}

static void test_deadline(void **state) {
  (void)state;
  client_t *c = client_new();
  int base = atomic_load(&g_cancels);
  nghttp2_nv to[] = {{(uint8_t *)"grpc-timeout", (uint8_t *)"50m", 12, 3, 0}};
  cstream_t *s = unary(c, "slow", to, 1);
  assert_int_equal(s->grpc_status, GRPC_DEADLINE_EXCEEDED);
  assert_string_equal(s->grpc_message, "context deadline exceeded");
  assert_int_equal(atomic_load(&g_cancels), base + 1);
  /* a generous deadline does not get in the way */
  nghttp2_nv to2[] = {{(uint8_t *)"grpc-timeout", (uint8_t *)"5S", 12, 2, 0}};
  s = unary(c, "abc", to2, 1);
  assert_int_equal(s->grpc_status, 0);
  client_free(c);
}

/* Reads from a raw socket until EOF or timeout; returns bytes read into buf. */
static size_t read_all(int fd, char *buf, size_t cap, int ms) {
  size_t n = 0;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) return n;
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
  }
  buf[n] = 0;
  return n;
}

/* A raw TCP connection to the server. */
static int raw_connect(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atomic_load(&g_port))};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

static void test_garbage_closes(void **state) {
  (void)state;
  char buf[4096];
  /* garbage right after a valid preface: nghttp2 sends GOAWAY and we close */
  int fd = raw_connect();
  const char *pre = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  assert_int_equal(write(fd, pre, 24), 24);
  uint8_t junk[64];
  for (int i = 0; i < 64; i++) junk[i] = (uint8_t)(i * 37 + 11);
  assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
  size_t n = read_all(fd, buf, sizeof(buf), 2000);
  assert_true(n > 0); /* SETTINGS + GOAWAY, then EOF */
  close(fd);
  /* non-HTTP garbage: a 400 and a close */
  fd = raw_connect();
  assert_int_equal(write(fd, "\x16\x03\x01\x00\xa5garbage\r\n\r\n", 16), 16);
  n = read_all(fd, buf, sizeof(buf), 2000);
  assert_true(n > 12 && !memcmp(buf, "HTTP/1.1 400", 12));
  close(fd);
  /* truncated preface then disconnect */
  fd = raw_connect();
  assert_int_equal(write(fd, pre, 10), 10);
  close(fd);
  /* a client vanishing in the middle of a frame */
  client_t *c = client_new();
  pump(c, 50, NULL, NULL);
  uint8_t partial[] = {0, 0, 100, 0, 0, 0, 0, 0, 1, 'x'};
  assert_int_equal(write(c->fd, partial, sizeof(partial)), (ssize_t)sizeof(partial));
  client_free(c);
  /* the server still serves new connections */
  c = client_new();
  cstream_t *s = unary(c, "abcd", NULL, 0);
  assert_int_equal(s->grpc_status, 0);
  client_free(c);
}

static void test_http1(void **state) {
  (void)state;
  char buf[4096];
  int fd = raw_connect();
  const char *req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  size_t n = read_all(fd, buf, sizeof(buf), 2000);
  assert_true(n > 0);
  assert_true(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
  assert_non_null(strstr(buf, "Content-Type: application/json\r\n"));
  assert_non_null(strstr(buf, "\r\n\r\n{\"health\":\"true\"}"));
  close(fd);
  fd = raw_connect();
  const char *req2 = "GET /nope HTTP/1.1\r\n\r\n";
  assert_int_equal(write(fd, req2, strlen(req2)), (ssize_t)strlen(req2));
  n = read_all(fd, buf, sizeof(buf), 2000);
  assert_true(n > 0 && !strncmp(buf, "HTTP/1.1 404", 12));
  close(fd);
  /* the same handler answers a plain GET made over HTTP/2 */
  client_t *c = client_new();
  cstream_t *s = calloc(1, sizeof(*s));
  s->grpc_status = -1;
  nghttp2_nv nva[] = {{(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
                      {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
                      {(uint8_t *)":path", (uint8_t *)"/health", 5, 7, 0},
                      {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0}};
  s->id = nghttp2_submit_request(c->h2, NULL, nva, 4, NULL, s);
  c->streams[c->n++] = s;
  pump(c, 3000, stream_closed, s);
  assert_int_equal(s->http_status, 200);
  assert_int_equal(s->data.len, 17);
  client_free(c);
}

static void test_shutdown_graceful(void **state) {
  (void)state;
  client_t *c = client_new();
  int base = atomic_load(&g_cancels);
  Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
  buf_t b = {0};
  frame_msg(&b, &wr.base);
  cstream_t *s = start(c, "/etcdserverpb.Watch/Watch", b.data, b.len, false, NULL, 0);
  buf_free(&b);
  assert_int_equal(wait_msgs(c, s, 1), 1);
  g_stop.data = (void *)(uintptr_t)300; /* grace period ms */
  uv_async_send(&g_stop);
  pump(c, 150, NULL, NULL);
  assert_true(c->goaway);
  assert_false(c->eof); /* the in-flight stream keeps the connection open during the grace period */
  pump(c, 3000, NULL, NULL);
  assert_true(c->eof);
  assert_int_equal(atomic_load(&g_cancels), base + 1);
  pthread_join(g_thread, NULL);
  assert_int_equal(atomic_load(&g_shutdown_done), 1);
  client_free(c);
}

static int setup(void **state) {
  (void)state;
  pthread_create(&g_thread, NULL, server_main, NULL);
  for (int i = 0; i < 500 && !atomic_load(&g_port); i++) usleep(2000);
  return atomic_load(&g_port) > 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary_ok),
      cmocka_unit_test(test_many_concurrent),
      cmocka_unit_test(test_trailers_only_error),
      cmocka_unit_test(test_unknown_method),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_bidi_stream),
      cmocka_unit_test(test_server_stream),
      cmocka_unit_test(test_rst_stream_cancels),
      cmocka_unit_test(test_deadline),
      cmocka_unit_test(test_garbage_closes),
      cmocka_unit_test(test_http1),
      cmocka_unit_test(test_shutdown_graceful),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
