/* libcetcd KV, txn and maintenance against a real server (cetcd or etcd 3.4). */
#include <pthread.h>

#include "client_test_util.h"

static test_server_t srv;
static cetcd_client_t *cli;

static int setup(void **state) {
  (void)state;
  return tu_start_with_client(&srv, &cli);
}

static int teardown(void **state) {
  (void)state;
  tu_stop_with_client(&srv, cli);
  return 0;
}

static void test_put_get_roundtrip(void **state) {
  (void)state;
  /* binary-safe keys and values */
  const char key[] = {'b', 0, 'i', 'n'};
  const char val[] = {'v', 0, 1, 2};
  cetcd_put_result_t *pr;
  assert_int_equal(cetcd_put(cli, key, sizeof key, val, sizeof val, NULL, &pr), 0);
  assert_true(pr->header.revision > 1);
  assert_null(pr->prev_kv);
  int64_t rev1 = pr->header.revision;
  cetcd_put_result_free(pr);
  cetcd_put_opts_t po = {.prev_kv = true};
  assert_int_equal(cetcd_put(cli, key, sizeof key, "x", 1, &po, &pr), 0);
  assert_non_null(pr->prev_kv);
  assert_int_equal(pr->prev_kv->value_len, sizeof val);
  assert_memory_equal(pr->prev_kv->value, val, sizeof val);
  assert_int_equal(pr->prev_kv->mod_revision, rev1);
  int64_t rev2 = pr->header.revision;
  cetcd_put_result_free(pr);

  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(cli, key, sizeof key, NULL, &g), 0);
  assert_int_equal(g->n_kvs, 1);
  assert_int_equal(g->count, 1);
  assert_false(g->more);
  assert_int_equal(g->kvs[0].key_len, sizeof key);
  assert_memory_equal(g->kvs[0].key, key, sizeof key);
  assert_string_equal(g->kvs[0].value, "x");
  assert_int_equal(g->kvs[0].create_revision, rev1);
  assert_int_equal(g->kvs[0].mod_revision, rev2);
  assert_int_equal(g->kvs[0].version, 2);
  assert_int_equal(g->header.revision, rev2);
  cetcd_get_result_free(g);

  /* an old revision */
  cetcd_get_opts_t go = {.revision = rev1};
  assert_int_equal(cetcd_get(cli, key, sizeof key, &go, &g), 0);
  assert_int_equal(g->n_kvs, 1);
  assert_int_equal(g->kvs[0].value_len, sizeof val);
  cetcd_get_result_free(g);

  /* missing key */
  assert_int_equal(cetcd_get(cli, "nope", 4, NULL, &g), 0);
  assert_int_equal(g->n_kvs, 0);
  assert_int_equal(g->count, 0);
  cetcd_get_result_free(g);

  /* future revision */
  go.revision = rev2 + 1000;
  assert_int_equal(cetcd_get(cli, key, sizeof key, &go, &g), CETCD_EFUTUREREV);
  assert_null(g);
  const cetcd_error_info_t *e = cetcd_client_last_error(cli);
  assert_int_equal(e->code, CETCD_EFUTUREREV);
  assert_int_equal(e->grpc_status, 11);
  assert_string_equal(e->message, "etcdserver: mvcc: required revision is a future revision");
}

static void test_range_options(void **state) {
  (void)state;
  char k[16], v[16];
  int64_t first = 0;
  for (int i = 0; i < 5; i++) {
    snprintf(k, sizeof k, "r/%d", i);
    snprintf(v, sizeof v, "%c", 'e' - i); /* values in reverse order */
    int64_t rev = tu_put(cli, k, v);
    if (!first) first = rev;
  }
  tu_put(cli, "r/2", "z"); /* r/2: version 2, newest mod revision */
  tu_put(cli, "s", "outside");
  cetcd_get_result_t *g;

  cetcd_get_opts_t o = {.prefix = true};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), 0);
  assert_int_equal(g->n_kvs, 5);
  assert_string_equal(g->kvs[0].key, "r/0");
  assert_string_equal(g->kvs[4].key, "r/4");
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){.range_end = "r/3", .range_end_len = 3};
  assert_int_equal(cetcd_get(cli, "r/1", 3, &o, &g), 0);
  assert_int_equal(g->n_kvs, 2);
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){.from_key = true};
  assert_int_equal(cetcd_get(cli, "r/3", 3, &o, &g), 0);
  assert_int_equal(g->n_kvs, 3); /* r/3 r/4 s */
  assert_string_equal(g->kvs[2].key, "s");
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){.prefix = true, .limit = 2};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), 0);
  assert_int_equal(g->n_kvs, 2);
  assert_int_equal(g->count, 5);
  assert_true(g->more);
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){.prefix = true, .sort_order = CETCD_SORT_DESCEND, .sort_target = CETCD_SORT_KEY};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), 0);
  assert_string_equal(g->kvs[0].key, "r/4");
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){.prefix = true, .sort_order = CETCD_SORT_ASCEND, .sort_target = CETCD_SORT_VALUE};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), 0);
  assert_string_equal(g->kvs[0].value, "a");
  assert_string_equal(g->kvs[4].value, "z");
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){
      .prefix = true, .sort_order = CETCD_SORT_DESCEND, .sort_target = CETCD_SORT_VERSION, .limit = 1};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), 0);
  assert_string_equal(g->kvs[0].key, "r/2");
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){
      .prefix = true, .sort_order = CETCD_SORT_DESCEND, .sort_target = CETCD_SORT_MOD, .limit = 1};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), 0);
  assert_string_equal(g->kvs[0].key, "r/2");
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){
      .prefix = true, .sort_order = CETCD_SORT_ASCEND, .sort_target = CETCD_SORT_CREATE, .limit = 1};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), 0);
  assert_string_equal(g->kvs[0].key, "r/0");
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){.prefix = true, .keys_only = true, .serializable = true};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), 0);
  assert_int_equal(g->n_kvs, 5);
  assert_int_equal(g->kvs[0].value_len, 0);
  assert_string_equal(g->kvs[0].value, "");
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){.prefix = true, .count_only = true};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), 0);
  assert_int_equal(g->n_kvs, 0);
  assert_int_equal(g->count, 5);
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){.prefix = true, .min_create_revision = first + 1, .max_create_revision = first + 2};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), 0);
  assert_int_equal(g->n_kvs, 2);
  assert_string_equal(g->kvs[0].key, "r/1");
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){.prefix = true, .min_mod_revision = first + 4};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), 0);
  assert_int_equal(g->n_kvs, 2); /* r/4 and the rewritten r/2 */
  cetcd_get_result_free(g);

  o = (cetcd_get_opts_t){.prefix = true, .max_mod_revision = first};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), 0);
  assert_int_equal(g->n_kvs, 1);
  cetcd_get_result_free(g);

  /* invalid combinations are rejected locally */
  o = (cetcd_get_opts_t){.prefix = true, .from_key = true};
  assert_int_equal(cetcd_get(cli, "r/", 2, &o, &g), CETCD_EINVAL);
}

static void test_put_options_delete_compact(void **state) {
  (void)state;
  int64_t lease;
  assert_int_equal(cetcd_lease_grant(cli, 60, 0, &lease, NULL), 0);
  cetcd_put_opts_t po = {.lease = lease};
  assert_int_equal(cetcd_put(cli, "p/a", 3, "1", 1, &po, NULL), 0);
  /* ignore_value keeps the value, ignore_lease keeps the lease */
  po = (cetcd_put_opts_t){.ignore_value = true, .lease = lease}; /* lease 0 would detach it */
  assert_int_equal(cetcd_put(cli, "p/a", 3, NULL, 0, &po, NULL), 0);
  po = (cetcd_put_opts_t){.ignore_lease = true};
  assert_int_equal(cetcd_put(cli, "p/a", 3, "2", 1, &po, NULL), 0);
  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(cli, "p/a", 3, NULL, &g), 0);
  assert_string_equal(g->kvs[0].value, "2");
  assert_int_equal(g->kvs[0].lease, lease);
  cetcd_get_result_free(g);
  po = (cetcd_put_opts_t){.ignore_value = true};
  assert_int_equal(cetcd_put(cli, "p/missing", 9, NULL, 0, &po, NULL), CETCD_EKEYNOTFOUND);
  assert_int_equal(cetcd_put(cli, "", 0, "v", 1, NULL, NULL), CETCD_EKEYEMPTY);
  po = (cetcd_put_opts_t){.lease = 0x7eadbeef};
  assert_int_equal(cetcd_put(cli, "p/b", 3, "v", 1, &po, NULL), CETCD_ELEASENOTFOUND);
  assert_int_equal(cetcd_lease_revoke(cli, lease), 0);

  tu_put(cli, "d/1", "a");
  tu_put(cli, "d/2", "b");
  int64_t rev = tu_put(cli, "d/3", "c");
  cetcd_delete_result_t *d;
  assert_int_equal(cetcd_delete(cli, "d/1", 3, NULL, &d), 0);
  assert_int_equal(d->deleted, 1);
  assert_int_equal(d->n_prev_kvs, 0);
  cetcd_delete_result_free(d);
  cetcd_delete_opts_t dop = {.prefix = true, .prev_kv = true};
  assert_int_equal(cetcd_delete(cli, "d/", 2, &dop, &d), 0);
  assert_int_equal(d->deleted, 2);
  assert_int_equal(d->n_prev_kvs, 2);
  assert_string_equal(d->prev_kvs[1].value, "c");
  cetcd_delete_result_free(d);
  assert_int_equal(cetcd_delete(cli, "d/", 2, &dop, NULL), 0);

  /* compaction: old revisions become unreadable */
  int64_t now = tu_put(cli, "c/x", "1");
  assert_int_equal(cetcd_compact(cli, now, true), 0);
  cetcd_get_opts_t go = {.revision = rev};
  assert_int_equal(cetcd_get(cli, "d/3", 3, &go, &g), CETCD_ECOMPACTED);
  assert_int_equal(cetcd_client_last_error(cli)->grpc_status, 11);
  assert_int_equal(cetcd_compact(cli, now, false), CETCD_ECOMPACTED);
}

static void test_txn(void **state) {
  (void)state;
  int64_t rev = tu_put(cli, "t/a", "1");
  cetcd_txn_t *t;
  assert_int_equal(cetcd_txn_new(&t), 0);
  assert_int_equal(cetcd_txn_cmp_value(t, "t/a", 3, CETCD_CMP_EQUAL, "1", 1), 0);
  assert_int_equal(cetcd_txn_cmp_version(t, "t/a", 3, CETCD_CMP_EQUAL, 1), 0);
  assert_int_equal(cetcd_txn_cmp_mod(t, "t/a", 3, CETCD_CMP_EQUAL, rev), 0);
  assert_int_equal(cetcd_txn_cmp_create(t, "t/b", 3, CETCD_CMP_EQUAL, 0), 0);
  assert_int_equal(cetcd_txn_cmp_lease(t, "t/a", 3, CETCD_CMP_EQUAL, 0), 0);
  assert_int_equal(cetcd_txn_then_put(t, "t/b", 3, "2", 1, NULL), 0);
  assert_int_equal(cetcd_txn_then_get(t, "t/", 2, &(cetcd_get_opts_t){.prefix = true}), 0);
  assert_int_equal(cetcd_txn_then_delete(t, "t/a", 3, &(cetcd_delete_opts_t){.prev_kv = true}), 0);
  assert_int_equal(cetcd_txn_else_get(t, "t/a", 3, NULL), 0);
  cetcd_txn_result_t *r;
  assert_int_equal(cetcd_txn_commit(cli, t, &r), 0);
  assert_true(r->succeeded);
  assert_int_equal(r->n_results, 3);
  assert_int_equal(r->results[0].type, CETCD_OP_PUT);
  assert_non_null(r->results[0].put);
  assert_int_equal(r->results[1].type, CETCD_OP_GET);
  assert_int_equal(r->results[1].get->n_kvs, 2);
  assert_int_equal(r->results[2].type, CETCD_OP_DELETE);
  assert_int_equal(r->results[2].del->deleted, 1);
  assert_string_equal(r->results[2].del->prev_kvs[0].value, "1");
  assert_int_equal(r->header.revision, rev + 1); /* one revision for the whole txn */
  cetcd_txn_result_free(r);
  /* the same txn again fails its conditions: else branch */
  assert_int_equal(cetcd_txn_commit(cli, t, &r), 0);
  assert_false(r->succeeded);
  assert_int_equal(r->n_results, 1);
  assert_int_equal(r->results[0].get->n_kvs, 0);
  cetcd_txn_result_free(r);
  cetcd_txn_free(t);

  /* prefix compare, nested txn */
  cetcd_txn_t *sub;
  assert_int_equal(cetcd_txn_new(&sub), 0);
  assert_int_equal(cetcd_txn_then_put(sub, "t/n", 3, "nested", 6, NULL), 0);
  assert_int_equal(cetcd_txn_new(&t), 0);
  assert_int_equal(cetcd_txn_cmp_version(t, "t/", 2, CETCD_CMP_GREATER, 0), 0);
  assert_int_equal(cetcd_txn_cmp_range(t, NULL, 0, true), 0);
  assert_int_equal(cetcd_txn_then_txn(t, sub), 0);
  cetcd_txn_free(sub);
  assert_int_equal(cetcd_txn_commit(cli, t, &r), 0);
  assert_true(r->succeeded);
  assert_int_equal(r->results[0].type, CETCD_OP_TXN);
  assert_true(r->results[0].txn->succeeded);
  assert_int_equal(r->results[0].txn->results[0].type, CETCD_OP_PUT);
  cetcd_txn_result_free(r);
  cetcd_txn_free(t);

  /* duplicate key in one txn */
  assert_int_equal(cetcd_txn_new(&t), 0);
  assert_int_equal(cetcd_txn_then_put(t, "t/d", 3, "1", 1, NULL), 0);
  assert_int_equal(cetcd_txn_then_put(t, "t/d", 3, "2", 1, NULL), 0);
  assert_int_equal(cetcd_txn_commit(cli, t, NULL), CETCD_EDUPKEY);
  cetcd_txn_free(t);

  /* sticky builder errors */
  assert_int_equal(cetcd_txn_new(&t), 0);
  assert_int_equal(cetcd_txn_cmp_range(t, NULL, 0, true), CETCD_EINVAL);
  assert_int_equal(cetcd_txn_then_put(t, "t/e", 3, "1", 1, NULL), 0);
  assert_int_equal(cetcd_txn_commit(cli, t, NULL), CETCD_EINVAL);
  cetcd_txn_free(t);
}

static int write_count(void *ctx, const void *data, size_t len) {
  (void)data;
  *(size_t *)ctx += len;
  return 0;
}

static int write_abort(void *ctx, const void *data, size_t len) {
  (void)data, (void)len, (void)ctx;
  return 1;
}

static void test_maintenance(void **state) {
  (void)state;
  cetcd_status_t *st;
  assert_int_equal(cetcd_status(cli, NULL, &st), 0);
  assert_true(strlen(st->version) > 0);
  assert_true(st->db_size > 0);
  assert_true(st->leader != 0);
  assert_true(st->raft_index > 0);
  assert_true(st->raft_term > 0);
  cetcd_status_free(st);
  char ep[80];
  snprintf(ep, sizeof ep, "http://%s", srv.endpoint);
  assert_int_equal(cetcd_status(cli, ep, &st), 0);
  cetcd_status_free(st);
  assert_int_equal(cetcd_status(cli, "10.9.9.9:1", &st), CETCD_EINVAL);

  cetcd_member_list_t *ml;
  assert_int_equal(cetcd_member_list(cli, &ml), 0);
  assert_int_equal(ml->n_members, 1);
  assert_string_equal(ml->members[0].name, "default");
  assert_int_equal(ml->members[0].n_client_urls, 1);
  cetcd_member_list_free(ml);

  cetcd_alarm_t *al;
  size_t n;
  assert_int_equal(cetcd_alarm_list(cli, &al, &n), 0);
  assert_int_equal(n, 0);
  assert_null(al);
  assert_int_equal(cetcd_alarm_disarm(cli, NULL), 0);

  uint32_t h1, h2;
  int64_t crev;
  cetcd_header_t hdr;
  assert_int_equal(cetcd_hashkv(cli, NULL, 0, &h1, &crev, &hdr), 0);
  assert_int_equal(cetcd_hashkv(cli, srv.endpoint, hdr.revision, &h2, NULL, NULL), 0);
  assert_int_equal(h1, h2);
  assert_int_equal(cetcd_defrag(cli, srv.endpoint), 0);

  size_t total = 0;
  assert_int_equal(cetcd_snapshot(cli, write_count, &total), 0);
  assert_true(total > 4096);
  assert_int_equal(cetcd_snapshot(cli, write_abort, NULL), CETCD_ECANCELED);
}

/* ---- asynchronous API ---------------------------------------------------------------- */

typedef struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int pending;     /* callbacks still expected */
  int calls;       /* callbacks run */
  int last_rc;
  int n_ok;
  bool on_caller;  /* some callback ran on the submitting thread (must not) */
  pthread_t caller;
  cetcd_get_result_t *get;
  cetcd_put_result_t *put;
  int chain_left;  /* for chained submissions from the callback */
  cetcd_client_t *c;
  int bad; /* checks failed inside callbacks (cmocka asserts must stay on the test thread) */
} waiter_t;

static void waiter_init(waiter_t *w, int pending) {
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->pending = pending;
  w->caller = pthread_self();
  w->c = cli;
}

static void waiter_wait(waiter_t *w) {
  pthread_mutex_lock(&w->mu);
  while (w->pending > 0) pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  assert_int_equal(w->bad, 0);
}

static void waiter_done(waiter_t *w, int rc) {
  pthread_mutex_lock(&w->mu);
  if (pthread_equal(pthread_self(), w->caller)) w->on_caller = true;
  w->calls++;
  w->last_rc = rc;
  if (!rc) w->n_ok++;
  w->pending--;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

/* Keeps the result: ownership passes to the test, which frees it later on its thread. */
static void keep_get(void *ctx, int rc, cetcd_get_result_t *r) {
  waiter_t *w = ctx;
  if ((rc != 0) != (r == NULL)) w->bad++; /* a result exactly on success */
  pthread_mutex_lock(&w->mu);
  cetcd_get_result_free(w->get);
  w->get = r;
  pthread_mutex_unlock(&w->mu);
  waiter_done(w, rc);
}

static void keep_put(void *ctx, int rc, cetcd_put_result_t *r) {
  waiter_t *w = ctx;
  if ((rc != 0) != (r == NULL)) w->bad++; /* a result exactly on success */
  pthread_mutex_lock(&w->mu);
  cetcd_put_result_free(w->put);
  w->put = r;
  pthread_mutex_unlock(&w->mu);
  waiter_done(w, rc);
}

static void drop_put(void *ctx, int rc, cetcd_put_result_t *r) {
  cetcd_put_result_free(r);
  waiter_done(ctx, rc);
}

static void drop_get(void *ctx, int rc, cetcd_get_result_t *r) {
  cetcd_get_result_free(r);
  waiter_done(ctx, rc);
}

static void test_async_roundtrip(void **state) {
  (void)state;
  waiter_t w;
  cetcd_put_opts_t po = {.prev_kv = true};
  waiter_init(&w, 1);
  assert_int_equal(cetcd_put_async(cli, "async/a", 7, "one", 3, &po, keep_put, &w), 0);
  waiter_wait(&w);
  assert_int_equal(w.last_rc, 0);
  assert_false(w.on_caller);
  int64_t rev1 = w.put->header.revision;
  assert_true(rev1 > 1);
  cetcd_put_result_free(w.put);

  char val[3000]; /* a value larger than the blocking path's stack buffer */
  memset(val, 'z', sizeof val);
  waiter_init(&w, 1);
  assert_int_equal(cetcd_put_async(cli, "async/a", 7, val, sizeof val, &po, keep_put, &w), 0);
  waiter_wait(&w);
  assert_int_equal(w.last_rc, 0);
  assert_non_null(w.put->prev_kv);
  assert_int_equal(w.put->prev_kv->value_len, 3);
  assert_memory_equal(w.put->prev_kv->value, "one", 3);
  assert_int_equal(w.put->prev_kv->mod_revision, rev1);
  int64_t rev2 = w.put->header.revision;
  cetcd_put_result_free(w.put);

  waiter_init(&w, 1);
  assert_int_equal(cetcd_get_async(cli, "async/a", 7, NULL, keep_get, &w), 0);
  waiter_wait(&w);
  assert_int_equal(w.last_rc, 0);
  assert_int_equal(w.get->n_kvs, 1);
  assert_int_equal(w.get->kvs[0].value_len, sizeof val);
  assert_memory_equal(w.get->kvs[0].value, val, sizeof val);
  assert_int_equal(w.get->kvs[0].mod_revision, rev2);
  assert_int_equal(w.get->kvs[0].create_revision, rev1);
  cetcd_get_result_free(w.get);

  /* options are honoured: an old revision, a prefix count */
  cetcd_get_opts_t go = {.revision = rev1};
  waiter_init(&w, 1);
  assert_int_equal(cetcd_get_async(cli, "async/a", 7, &go, keep_get, &w), 0);
  waiter_wait(&w);
  assert_int_equal(w.last_rc, 0);
  assert_string_equal(w.get->kvs[0].value, "one");
  cetcd_get_result_free(w.get);
}

static void test_async_many_in_flight(void **state) {
  (void)state;
  enum { N = 400 };
  waiter_t w;
  waiter_init(&w, 2 * N);
  char key[32];
  for (int i = 0; i < N; i++) {
    int kl = snprintf(key, sizeof key, "async/many/%04d", i);
    assert_int_equal(cetcd_put_async(cli, key, (size_t)kl, key, (size_t)kl, NULL, drop_put, &w), 0);
  }
  /* reads interleaved with the writes in flight: each either sees the key or not */
  for (int i = 0; i < N; i++) assert_int_equal(cetcd_get_async(cli, "async/many/", 11, NULL, drop_get, &w), 0);
  waiter_wait(&w);
  assert_int_equal(w.calls, 2 * N);
  assert_int_equal(w.n_ok, 2 * N);
  cetcd_get_opts_t go = {.prefix = true};
  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(cli, "async/many/", 11, &go, &g), 0);
  assert_int_equal(g->n_kvs, N);
  for (size_t i = 0; i < g->n_kvs; i++) {
    assert_int_equal(g->kvs[i].key_len, g->kvs[i].value_len);
    assert_memory_equal(g->kvs[i].key, g->kvs[i].value, g->kvs[i].key_len);
  }
  cetcd_get_result_free(g);
}

/* Submits the next request from inside the callback (I/O thread) until the chain ends. */
static void chain_put(void *ctx, int rc, cetcd_put_result_t *r) {
  waiter_t *w = ctx;
  cetcd_put_result_free(r);
  if (rc) w->bad++;
  if (--w->chain_left > 0) {
    char key[32];
    int kl = snprintf(key, sizeof key, "async/chain/%03d", w->chain_left);
    /* a blocking call is refused here; an asynchronous one is fine */
    cetcd_get_result_t *g = NULL;
    if (cetcd_get(w->c, "x", 1, NULL, &g) != CETCD_EINVAL) w->bad++;
    if (cetcd_put_async(w->c, key, (size_t)kl, "v", 1, NULL, chain_put, w) == 0) return;
    w->bad++;
  }
  waiter_done(w, rc);
}

static void test_async_from_callback(void **state) {
  (void)state;
  waiter_t w;
  waiter_init(&w, 1);
  w.chain_left = 50;
  assert_int_equal(cetcd_put_async(cli, "async/chain/start", 17, "v", 1, NULL, chain_put, &w), 0);
  waiter_wait(&w);
  assert_int_equal(w.chain_left, 0);
  cetcd_get_opts_t go = {.prefix = true, .count_only = true};
  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(cli, "async/chain/", 12, &go, &g), 0);
  assert_int_equal(g->count, 50);
  cetcd_get_result_free(g);
}

static void test_async_errors(void **state) {
  (void)state;
  waiter_t w;
  /* argument errors are returned at once and no callback runs */
  waiter_init(&w, 0);
  assert_int_equal(cetcd_get_async(NULL, "k", 1, NULL, drop_get, &w), CETCD_EINVAL);
  assert_int_equal(cetcd_get_async(cli, "k", 1, NULL, NULL, &w), CETCD_EINVAL);
  assert_int_equal(cetcd_put_async(cli, NULL, 3, "v", 1, NULL, drop_put, &w), CETCD_EINVAL);
  cetcd_get_opts_t bad = {.prefix = true, .from_key = true};
  assert_int_equal(cetcd_get_async(cli, "k", 1, &bad, drop_get, &w), CETCD_EINVAL);
  waiter_wait(&w);
  assert_int_equal(w.calls, 0);

  /* server errors reach the callback, with no result */
  cetcd_get_opts_t go = {.revision = INT64_MAX / 2};
  waiter_init(&w, 1);
  assert_int_equal(cetcd_get_async(cli, "k", 1, &go, keep_get, &w), 0);
  waiter_wait(&w);
  assert_int_equal(w.last_rc, CETCD_EFUTUREREV);
  assert_null(w.get);
  waiter_init(&w, 1);
  assert_int_equal(cetcd_put_async(cli, "", 0, "v", 1, NULL, keep_put, &w), 0);
  waiter_wait(&w);
  assert_int_equal(w.last_rc, CETCD_EKEYEMPTY);
  assert_null(w.put);
  cetcd_put_opts_t po = {.ignore_value = true};
  waiter_init(&w, 1);
  assert_int_equal(cetcd_put_async(cli, "async/missing", 13, "", 0, &po, keep_put, &w), 0);
  waiter_wait(&w);
  assert_int_equal(w.last_rc, CETCD_EKEYNOTFOUND);
  assert_null(w.put);

  /* an unreachable endpoint: the error comes through the callback */
  const char *eps[] = {"127.0.0.1:1"};
  cetcd_client_opts_t o = {.endpoints = eps, .n_endpoints = 1, .lazy_connect = true, .dial_timeout_ms = 200,
                           .request_timeout_ms = 300};
  cetcd_client_t *c;
  assert_int_equal(cetcd_client_new(&o, &c), 0);
  waiter_init(&w, 1);
  assert_int_equal(cetcd_get_async(c, "k", 1, NULL, keep_get, &w), 0);
  waiter_wait(&w);
  assert_true(w.last_rc == CETCD_EUNAVAILABLE || w.last_rc == CETCD_ETIMEOUT);
  assert_null(w.get);
  cetcd_client_free(c);
}

/* Freeing a client with requests in flight completes each of them exactly once. */
static void test_async_free_in_flight(void **state) {
  (void)state;
  enum { N = 200 };
  const char *eps[] = {srv.endpoint};
  cetcd_client_t *c = tu_client(eps, 1, false);
  assert_non_null(c);
  waiter_t w;
  waiter_init(&w, N);
  for (int i = 0; i < N; i++) assert_int_equal(cetcd_put_async(c, "async/free", 10, "v", 1, NULL, drop_put, &w), 0);
  cetcd_client_free(c);
  assert_int_equal(w.calls, N); /* all callbacks ran before cetcd_client_free returned */
  waiter_wait(&w);
  assert_true(w.last_rc == 0 || w.last_rc == CETCD_ECANCELED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_get_roundtrip),
      cmocka_unit_test(test_range_options),
      cmocka_unit_test(test_put_options_delete_compact),
      cmocka_unit_test(test_txn),
      cmocka_unit_test(test_maintenance),
      cmocka_unit_test(test_async_roundtrip),
      cmocka_unit_test(test_async_many_in_flight),
      cmocka_unit_test(test_async_from_callback),
      cmocka_unit_test(test_async_errors),
      cmocka_unit_test(test_async_free_in_flight),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
