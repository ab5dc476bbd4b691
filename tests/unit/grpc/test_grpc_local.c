/* Local (in-process) calls: the handler API on calls without a connection, as the JSON
 * gateway uses them. Single-threaded: a loop per test, no sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "cetcd/errors.h"
#include "grpc/grpc_int.h"
#include "rpc.pb-c.h"

static uv_loop_t loop;
static grpc_server_t *srv;
static int cancels, half_closes, handler_runs;
static grpc_call_t *held; /* a call the test finishes itself */

/* ---- handlers ---- */

/* Finishes a call from a timer. */
static void later_fire(uv_timer_t *t) {
  grpc_call_t *call = t->data;
  Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
  r.count = 42;
  grpc_call_reply(call, &r.base);
  uv_close((uv_handle_t *)t, NULL);
}
static uv_timer_t later_timer;

/* Range: count = len(key); "tok" counts the token metadata; "later" answers from a
 * timer; "hang" waits for a cancel; "held" is finished by the test; "err" fails. */
static void on_range(grpc_call_t *call, ProtobufCMessage *m) {
  handler_runs++;
  Etcdserverpb__RangeRequest *req = (Etcdserverpb__RangeRequest *)m;
  char key[32] = "";
  snprintf(key, sizeof(key), "%.*s", (int)req->key.len, (const char *)req->key.data);
  Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
  if (!strcmp(key, "tok")) {
    assert_string_equal(grpc_call_peer(call), "local");
    assert_string_equal(grpc_call_metadata(call, "TOKEN"), "secret");
    assert_null(grpc_call_metadata(call, "other"));
    assert_int_equal(grpc_call_deadline_ms(call), 0);
    r.count = (int64_t)strlen(grpc_call_metadata(call, "token"));
    grpc_call_reply(call, &r.base);
  } else if (!strcmp(key, "later")) {
    uv_timer_init(&loop, &later_timer);
    later_timer.data = call;
    uv_timer_start(&later_timer, later_fire, 10, 0);
  } else if (!strcmp(key, "hang")) {
    grpc_call_set_user(call, (void *)1); /* on_cancel finishes it */
  } else if (!strcmp(key, "held")) {
    held = call;
  } else if (!strcmp(key, "err")) {
    grpc_call_finish(call, GRPC_NOT_FOUND, "no such thing");
  } else {
    r.count = (int64_t)req->key.len;
    grpc_call_reply(call, &r.base);
  }
}

/* Counts; finishes the calls that asked for it. */
static void on_cancel(grpc_call_t *call) {
  cancels++;
  assert_true(grpc_call_cancelled(call));
  Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
  assert_int_equal(grpc_call_send(call, &r.base), CETCD_ECANCELED);
  if (grpc_call_user(call)) grpc_call_finish(call, GRPC_CANCELLED, "context canceled");
}

/* Snapshot (server stream): three messages then OK. */
static void on_snapshot(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  for (int i = 0; i < 3; i++) {
    Etcdserverpb__SnapshotResponse r = ETCDSERVERPB__SNAPSHOT_RESPONSE__INIT;
    r.remaining_bytes = (uint64_t)(2 - i);
    assert_int_equal(grpc_call_send(call, &r.base), 0);
  }
  grpc_call_finish(call, GRPC_OK, NULL);
}

/* Watch (bidi): two answers per request; the half-close ends the call. */
static void on_watch(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__WatchRequest *wr = (Etcdserverpb__WatchRequest *)m;
  assert_int_equal(wr->request_union_case, ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST);
  for (int i = 1; i <= 2; i++) {
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.watch_id = i;
    grpc_call_send(call, &r.base);
  }
}
static void on_watch_half_close(grpc_call_t *call) {
  half_closes++;
  grpc_call_finish(call, GRPC_OK, NULL);
}

/* LeaseKeepAlive (bidi, no half-close interest): runs until cancelled. */
static void on_keepalive(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  grpc_call_set_user(call, (void *)1);
  Etcdserverpb__LeaseKeepAliveResponse r = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
  grpc_call_send(call, &r.base);
}

static const grpc_method_t methods[] = {
    {"/etcdserverpb.KV/Range", GRPC_UNARY, &etcdserverpb__range_request__descriptor, on_range, NULL,
     on_cancel},
    {"/etcdserverpb.Maintenance/Snapshot", GRPC_SERVER_STREAM, &etcdserverpb__snapshot_request__descriptor,
     on_snapshot, NULL, NULL},
    {"/etcdserverpb.Watch/Watch", GRPC_BIDI_STREAM, &etcdserverpb__watch_request__descriptor, on_watch,
     on_watch_half_close, on_cancel},
    {"/etcdserverpb.Lease/LeaseKeepAlive", GRPC_BIDI_STREAM,
     &etcdserverpb__lease_keep_alive_request__descriptor, on_keepalive, NULL, on_cancel},
};

/* ---- the caller's side ---- */

typedef struct rec {
  int sends, finishes, status;
  char msg[64];
  int64_t count;
  uint64_t remaining[4];
} rec_t;

static void rec_send(void *ctx, const ProtobufCMessage *m) {
  rec_t *r = ctx;
  if (m->descriptor == &etcdserverpb__range_response__descriptor)
    r->count = ((const Etcdserverpb__RangeResponse *)m)->count;
  if (m->descriptor == &etcdserverpb__snapshot_response__descriptor && r->sends < 4)
    r->remaining[r->sends] = ((const Etcdserverpb__SnapshotResponse *)m)->remaining_bytes;
  if (m->descriptor == &etcdserverpb__watch_response__descriptor)
    r->count = ((const Etcdserverpb__WatchResponse *)m)->watch_id;
  r->sends++;
}
static void rec_finish(void *ctx, int status, const char *message) {
  rec_t *r = ctx;
  r->finishes++;
  r->status = status;
  snprintf(r->msg, sizeof(r->msg), "%s", message ? message : "");
}
static const grpc_local_ops_t ops = {rec_send, rec_finish, NULL};

/* pending_bytes of a local call: what its consumer reports (the gateway's HTTP backlog). */
static size_t rec_pending(void *ctx) { return (size_t)((rec_t *)ctx)->count; }
static const grpc_local_ops_t ops_pending = {rec_send, rec_finish, rec_pending};

/* Starts a local Range for key; returns the call (may be freed already). */
static grpc_call_t *range(rec_t *r, const char *key) {
  grpc_call_t *c = grpc_local_call_new(srv, "/etcdserverpb.KV/Range", &ops, r);
  assert_non_null(c);
  Etcdserverpb__RangeRequest *req = ARENA_NEW(grpc_call_arena(c), Etcdserverpb__RangeRequest);
  etcdserverpb__range_request__init(req);
  req->key.data = arena_memdup(grpc_call_arena(c), key, strlen(key));
  req->key.len = strlen(key);
  grpc_local_call_set_metadata(c, "Token", "secret");
  grpc_local_call_start(c, &req->base);
  return c;
}

static int setup(void **state) {
  (void)state;
  uv_loop_init(&loop);
  srv = grpc_server_new(&loop, NULL);
  grpc_server_add_methods(srv, methods, sizeof(methods) / sizeof(*methods), NULL);
  cancels = half_closes = handler_runs = 0;
  held = NULL;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  assert_int_equal(srv->live_calls, 0);
  grpc_server_free(srv);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  return 0;
}

/* ---- tests ---- */

static void test_unary(void **state) {
  (void)state;
  assert_null(grpc_local_call_new(srv, "/etcdserverpb.KV/Nope", &ops, NULL));
  rec_t r = {0};
  range(&r, "hello");
  assert_int_equal(r.sends, 1);
  assert_int_equal(r.finishes, 1);
  assert_int_equal(r.status, GRPC_OK);
  assert_int_equal(r.count, 5);
  assert_int_equal(srv->live_calls, 0);
  /* metadata, peer */
  r = (rec_t){0};
  range(&r, "tok");
  assert_int_equal(r.count, 6);
  /* an error: no message, status and raw text */
  r = (rec_t){0};
  range(&r, "err");
  assert_int_equal(r.sends, 0);
  assert_int_equal(r.finishes, 1);
  assert_int_equal(r.status, GRPC_NOT_FOUND);
  assert_string_equal(r.msg, "no such thing");
  /* answered later from the loop */
  r = (rec_t){0};
  range(&r, "later");
  assert_int_equal(r.finishes, 0);
  assert_int_equal(srv->live_calls, 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(r.finishes, 1);
  assert_int_equal(r.count, 42);
}

static void test_streaming(void **state) {
  (void)state;
  rec_t r = {0};
  grpc_call_t *c = grpc_local_call_new(srv, "/etcdserverpb.Maintenance/Snapshot", &ops, &r);
  Etcdserverpb__SnapshotRequest *sr = ARENA_NEW(grpc_call_arena(c), Etcdserverpb__SnapshotRequest);
  etcdserverpb__snapshot_request__init(sr);
  grpc_local_call_start(c, &sr->base);
  assert_int_equal(r.sends, 3);
  assert_int_equal(r.remaining[0], 2);
  assert_int_equal(r.remaining[2], 0);
  assert_int_equal(r.finishes, 1);
  /* bidi: the message, then the half-close */
  r = (rec_t){0};
  c = grpc_local_call_new(srv, "/etcdserverpb.Watch/Watch", &ops, &r);
  arena_t *a = grpc_call_arena(c);
  Etcdserverpb__WatchRequest *wr = ARENA_NEW(a, Etcdserverpb__WatchRequest);
  etcdserverpb__watch_request__init(wr);
  wr->request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
  wr->create_request = ARENA_NEW(a, Etcdserverpb__WatchCreateRequest);
  etcdserverpb__watch_create_request__init(wr->create_request);
  grpc_local_call_start(c, &wr->base);
  assert_int_equal(r.sends, 2);
  assert_int_equal(r.count, 2);
  assert_int_equal(half_closes, 1);
  assert_int_equal(r.finishes, 1);
  assert_int_equal(r.status, GRPC_OK);
}

static void test_abort(void **state) {
  (void)state;
  rec_t r = {0};
  grpc_call_t *c = grpc_local_call_new(srv, "/etcdserverpb.KV/Range", &ops, &r);
  grpc_local_call_set_metadata(c, "token", "x");
  assert_int_equal(srv->live_calls, 1);
  grpc_local_call_abort(c);
  assert_int_equal(srv->live_calls, 0);
  assert_int_equal(r.finishes + r.sends + handler_runs, 0);
}

static void test_cancel(void **state) {
  (void)state;
  /* on_cancel finishes at once: on_finish inside grpc_local_call_cancel */
  rec_t r = {0};
  grpc_call_t *c = range(&r, "hang");
  assert_int_equal(r.finishes, 0);
  grpc_local_call_cancel(c);
  assert_int_equal(cancels, 1);
  assert_int_equal(r.finishes, 1);
  assert_int_equal(r.status, GRPC_CANCELLED);
  assert_int_equal(srv->live_calls, 0);
  /* on_cancel does not finish: sends are dropped until the handler finishes */
  r = (rec_t){0};
  c = range(&r, "held");
  assert_ptr_equal(held, c);
  grpc_local_call_cancel(c);
  grpc_local_call_cancel(c); /* a no-op */
  assert_int_equal(cancels, 2);
  assert_true(grpc_call_cancelled(held));
  Etcdserverpb__RangeResponse rr = ETCDSERVERPB__RANGE_RESPONSE__INIT;
  assert_int_equal(grpc_call_send(held, &rr.base), CETCD_ECANCELED);
  assert_int_equal(r.sends, 0);
  assert_int_equal(r.finishes, 0);
  grpc_call_finish(held, GRPC_OK, NULL);
  assert_int_equal(r.finishes, 1);
  assert_int_equal(r.status, GRPC_OK);
  /* cancelled before it started: no handler, on_finish(CANCELLED) at start */
  r = (rec_t){0};
  c = grpc_local_call_new(srv, "/etcdserverpb.KV/Range", &ops, &r);
  grpc_local_call_cancel(c);
  assert_int_equal(r.finishes, 0);
  Etcdserverpb__RangeRequest *req = ARENA_NEW(grpc_call_arena(c), Etcdserverpb__RangeRequest);
  etcdserverpb__range_request__init(req);
  handler_runs = 0;
  grpc_local_call_start(c, &req->base);
  assert_int_equal(handler_runs, 0);
  assert_int_equal(r.finishes, 1);
  assert_int_equal(r.status, GRPC_CANCELLED);
  assert_int_equal(cancels, 2);
}

static int done_calls;
static void on_done(void *arg) {
  (void)arg;
  done_calls++;
}

/* Starts a LeaseKeepAlive local call that runs until cancelled. */
static void keepalive(rec_t *r) {
  grpc_call_t *c = grpc_local_call_new(srv, "/etcdserverpb.Lease/LeaseKeepAlive", &ops, r);
  Etcdserverpb__LeaseKeepAliveRequest *kr =
      ARENA_NEW(grpc_call_arena(c), Etcdserverpb__LeaseKeepAliveRequest);
  etcdserverpb__lease_keep_alive_request__init(kr);
  grpc_local_call_start(c, &kr->base);
  assert_int_equal(r->sends, 1);
  assert_int_equal(r->finishes, 0);
}

static void test_shutdown_waits_then_cancels(void **state) {
  (void)state;
  done_calls = 0;
  /* a call that finishes during the grace period delays `done` until it does */
  rec_t r1 = {0}, r2 = {0};
  range(&r1, "later");
  grpc_server_shutdown(srv, 5000, on_done, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(done_calls, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(r1.finishes, 1);
  assert_int_equal(done_calls, 1);
  assert_int_equal(cancels, 0);
  grpc_server_free(srv);
  uv_run(&loop, UV_RUN_DEFAULT);
  /* a stream still running when the grace period ends is cancelled */
  srv = grpc_server_new(&loop, NULL);
  grpc_server_add_methods(srv, methods, sizeof(methods) / sizeof(*methods), NULL);
  keepalive(&r2);
  grpc_server_shutdown(srv, 20, on_done, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(cancels, 1);
  assert_int_equal(r2.finishes, 1);
  assert_int_equal(r2.status, GRPC_CANCELLED);
  assert_int_equal(done_calls, 2);
}

static void test_free_with_running_call(void **state) {
  (void)state;
  /* a call whose handler is not done keeps the server's memory until it finishes */
  rec_t r = {0};
  range(&r, "held");
  grpc_server_free(srv);
  uv_run(&loop, UV_RUN_DEFAULT); /* shutdown cancels it; the handler has not finished */
  assert_int_equal(cancels, 1);
  assert_int_equal(r.finishes, 0);
  grpc_call_finish(held, GRPC_OK, NULL); /* releases the server */
  assert_int_equal(r.finishes, 1);
  srv = grpc_server_new(&loop, NULL); /* for the teardown */
}

static void test_pending_bytes(void **state) {
  (void)state;
  rec_t r = {.count = 12345};
  grpc_call_t *c = grpc_local_call_new(srv, "/etcdserverpb.KV/Range", &ops_pending, &r);
  assert_int_equal(grpc_call_pending_bytes(c), 12345);
  grpc_local_call_abort(c);
  c = grpc_local_call_new(srv, "/etcdserverpb.KV/Range", &ops, &r);
  assert_int_equal(grpc_call_pending_bytes(c), 0);
  grpc_local_call_abort(c);
}

/* opts.hold for the held-call test: holds while `holding` is set. */
static bool holding;
static bool hold_while(grpc_call_t *call) {
  (void)call;
  return holding;
}

static void test_held(void **state) {
  (void)state;
  grpc_server_free(srv);
  uv_run(&loop, UV_RUN_DEFAULT);
  grpc_server_opts_t o = {.hold = hold_while};
  srv = grpc_server_new(&loop, &o);
  grpc_server_add_methods(srv, methods, sizeof(methods) / sizeof(*methods), NULL);
  /* held: no handler runs until a recheck finds the hold lifted */
  holding = true;
  rec_t r1 = {0}, r2 = {0}, r3 = {0};
  range(&r1, "hello");
  grpc_call_t *c2 = range(&r2, "abc");
  assert_int_equal(handler_runs, 0);
  grpc_server_recheck_held(srv);
  assert_int_equal(handler_runs + r1.finishes + r2.finishes, 0);
  /* a held call cancelled: finished with CANCELLED, no handler, no on_cancel */
  grpc_local_call_cancel(c2);
  assert_int_equal(r2.finishes, 1);
  assert_int_equal(r2.status, GRPC_CANCELLED);
  assert_int_equal(cancels + handler_runs, 0);
  holding = false;
  grpc_server_recheck_held(srv);
  assert_int_equal(handler_runs, 1);
  assert_int_equal(r1.finishes, 1);
  assert_int_equal(r1.count, 5);
  /* shutdown cancels a call still held */
  holding = true;
  range(&r3, "xyz");
  done_calls = 0;
  grpc_server_shutdown(srv, 20, on_done, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(r3.finishes, 1);
  assert_int_equal(r3.status, GRPC_CANCELLED);
  assert_int_equal(handler_runs, 1);
  assert_int_equal(done_calls, 1);
}

/* ---- method contexts ---- */

static int64_t gate_saw; /* what the gate read from grpc_call_ctx, -1 for NULL */

/* Replies count = the int64 the call's method table was registered with. */
static void on_ctx_range(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
  r.count = *(const int64_t *)grpc_call_ctx(call);
  grpc_call_reply(call, &r.base);
}

/* Records the context the gate sees and lets the call through. */
static int ctx_gate(grpc_call_t *call, const ProtobufCMessage *msg, const char **message) {
  (void)msg, (void)message;
  const int64_t *c = grpc_call_ctx(call);
  gate_saw = c ? *c : -1;
  return GRPC_OK;
}

static const grpc_method_t table_a[] = {
    {"/t.A/Get", GRPC_UNARY, &etcdserverpb__range_request__descriptor, on_ctx_range, NULL, NULL},
};
static const grpc_method_t table_b[] = {
    {"/t.B/Get", GRPC_UNARY, &etcdserverpb__range_request__descriptor, on_ctx_range, NULL, NULL},
};

/* Runs a local unary call to path; returns the count it answered. */
static int64_t ctx_call(grpc_server_t *s, const char *path) {
  rec_t r = {0};
  grpc_call_t *c = grpc_local_call_new(s, path, &ops, &r);
  assert_non_null(c);
  Etcdserverpb__RangeRequest *req = ARENA_NEW(grpc_call_arena(c), Etcdserverpb__RangeRequest);
  etcdserverpb__range_request__init(req);
  grpc_local_call_start(c, &req->base);
  assert_int_equal(r.finishes, 1);
  assert_int_equal(r.status, GRPC_OK);
  return r.count;
}

static void test_method_ctx(void **state) {
  (void)state;
  static int64_t ctx_a = 1, ctx_b = 2, ctx_c = 3, ctx_many = 4;
  grpc_server_opts_t o = {.gate = ctx_gate};
  grpc_server_t *s = grpc_server_new(&loop, &o);
  grpc_server_add_methods(s, table_a, 1, &ctx_a);
  grpc_server_add_methods(s, table_b, 1, &ctx_b);
  /* two tables, each with its own context, in the handler and in the gate */
  assert_int_equal(ctx_call(s, "/t.A/Get"), 1);
  assert_int_equal(gate_saw, 1);
  assert_int_equal(ctx_call(s, "/t.B/Get"), 2);
  assert_int_equal(gate_saw, 2);
  /* growing the path table keeps each method's context */
  enum { MANY = 100 };
  static grpc_method_t many[MANY];
  static char paths[MANY][16];
  for (int i = 0; i < MANY; i++) {
    snprintf(paths[i], sizeof(paths[i]), "/t.M/M%d", i);
    many[i] = table_a[0];
    many[i].path = paths[i];
  }
  grpc_server_add_methods(s, many, MANY, &ctx_many);
  assert_int_equal(ctx_call(s, "/t.A/Get"), 1);
  assert_int_equal(ctx_call(s, "/t.B/Get"), 2);
  assert_int_equal(ctx_call(s, "/t.M/M57"), 4);
  /* registering a path again replaces its context too */
  grpc_server_add_methods(s, table_a, 1, &ctx_c);
  assert_int_equal(ctx_call(s, "/t.A/Get"), 3);
  assert_int_equal(ctx_call(s, "/t.B/Get"), 2);
  grpc_server_free(s);
  uv_run(&loop, UV_RUN_DEFAULT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_unary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pending_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_streaming, setup, teardown),
      cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_waits_then_cancels, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_with_running_call, setup, teardown),
      cmocka_unit_test_setup_teardown(test_held, setup, teardown),
      cmocka_unit_test_setup_teardown(test_method_ctx, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
