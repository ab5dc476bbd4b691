/* libFuzzer target: arbitrary bytes fed to a server connection's input path, without a
 * socket (a detached connection whose output is discarded). The first input byte selects
 * whether a valid HTTP/2 preface + SETTINGS frame is prepended (so the fuzzer reaches the
 * frame layer quickly) and the chunk size the rest is fed in. Handlers answer at once,
 * stream, or never (then the connection close cancels them). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/grpc_int.h"
#include "rpc.pb-c.h"

static uv_loop_t loop;
static grpc_server_t *srv;
static grpc_call_t *parked[64];
static int n_parked;

/* Unary: reply, fail, or park the call depending on the key. */
static void on_range(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__RangeRequest *req = (Etcdserverpb__RangeRequest *)m;
  if (req->key.len == 1 && n_parked < 64) {
    parked[n_parked++] = call; /* finished after the connection is gone */
    return;
  }
  if (req->key.len == 2) {
    grpc_call_finish(call, GRPC_NOT_FOUND, "not\nfound");
    return;
  }
  Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
  r.count = (int64_t)req->key.len;
  grpc_call_reply(call, &r.base);
}

/* Bidi: answer every message. */
static void on_watch(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
  grpc_call_send(call, &r.base);
}
static void on_watch_end(grpc_call_t *call) { grpc_call_finish(call, GRPC_OK, NULL); }

/* Plain HTTP (HTTP/1.1, or HTTP/2 without the gRPC content-type): answer at once, stream
 * two chunks, or park the request (answered after the connection is gone). */
static grpc_http_req_t *parked_http[64];
static int n_parked_http;
static void on_http(void *ctx, grpc_http_req_t *req, const char *method, const char *path,
                    const uint8_t *body, size_t len) {
  (void)ctx, (void)method, (void)body;
  size_t n = strlen(path);
  if (n % 3 == 0 && n_parked_http < 64) {
    parked_http[n_parked_http++] = req;
  } else if (n % 3 == 1) {
    grpc_http_respond_chunk(req, (const uint8_t *)"{}", 2);
    grpc_http_respond_chunk(req, (const uint8_t *)path, n);
    grpc_http_respond_end(req);
  } else {
    grpc_http_req_header(req, "authorization");
    grpc_http_respond(req, 200, NULL, body, len);
  }
}

static const grpc_method_t methods[] = {
    {"/etcdserverpb.KV/Range", GRPC_UNARY, &etcdserverpb__range_request__descriptor, on_range, NULL, NULL},
    {"/etcdserverpb.Watch/Watch", GRPC_BIDI_STREAM, &etcdserverpb__watch_request__descriptor, on_watch,
     on_watch_end, on_watch_end},
};

/* Creates the server once per process. */
static void init(void) {
  if (srv) return;
  uv_loop_init(&loop);
  grpc_server_opts_t o = {.max_recv_msg_bytes = 4096, .max_concurrent_streams = 100, .http1 = on_http};
  srv = grpc_server_new(&loop, &o);
  grpc_server_add_methods(srv, methods, 2, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
  init();
  if (size < 1) return 0;
  uint8_t mode = data[0];
  data++, size--;
  grpc_conn_t *c = grpc_conn_new(srv, false, NULL);
  c->refs++; /* ours: the connection may close itself while we feed it */
  if ((mode & 1) && grpc_conn_feed(c, preface, sizeof(preface) - 1) == 0) grpc_conn_flush(c);
  size_t chunk = mode >> 1 ? (size_t)(mode >> 1) * 7 : size;
  for (size_t off = 0; off < size && !c->closing; off += chunk) {
    size_t k = size - off < chunk ? size - off : chunk;
    if (grpc_conn_feed(c, data + off, k) == 0) grpc_conn_flush(c);
  }
  if (!c->closing) grpc_conn_close(c);
  grpc_conn_unref(c);
  for (int i = 0; i < n_parked; i++) grpc_call_finish(parked[i], GRPC_OK, NULL);
  n_parked = 0;
  for (int i = 0; i < n_parked_http; i++)
    grpc_http_respond(parked_http[i], 200, NULL, (const uint8_t *)"late", 4); /* client gone: dropped */
  n_parked_http = 0;
  if (srv->live_reqs != 0) abort();
  if (srv->live_calls != 0) abort(); /* every call must be freed once both sides are done */
  if (srv->n_conns != 0) abort();
  return 0;
}
