/* mvcc: Put / Range / DeleteRange semantics, revisions, versions, generations, batches,
 * leases hooks, events, meta, reopen. */
#include <sys/stat.h>

#include "mvcc_test_util.h"

typedef struct fixture {
  char *dir;
  mvcc_store_t *s;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  f->dir = tu_mkdtemp();
  f->s = tu_open(f->dir, NULL);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  mvcc_close(f->s);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

static void test_put_revisions_versions(void **state) {
  fixture_t *f = *state;
  mvcc_store_t *s = f->s;
  arena_t a;
  arena_init(&a);
  assert_int_equal(mvcc_rev(s), 1);
  assert_int_equal(mvcc_compact_rev(s), -1);
  assert_int_equal(tu_put(s, "a", "1"), 2);
  tu_assert_kv(tu_get(s, &a, "a", 0), "a", "1", 2, 2, 1);
  assert_int_equal(tu_put(s, "a", "2"), 3);
  tu_assert_kv(tu_get(s, &a, "a", 0), "a", "2", 2, 3, 2);
  assert_int_equal(tu_put(s, "b", ""), 4);
  tu_assert_kv(tu_get(s, &a, "b", 0), "b", "", 4, 4, 1);
  assert_int_equal(mvcc_rev(s), 4);
  assert_int_equal(mvcc_key_count(s), 2);
  /* history */
  tu_assert_kv(tu_get(s, &a, "a", 2), "a", "1", 2, 2, 1);
  tu_assert_kv(tu_get(s, &a, "a", 3), "a", "2", 2, 3, 2);
  assert_null(tu_get(s, &a, "a", 1));
  assert_null(tu_get(s, &a, "b", 3));
  assert_null(tu_get(s, &a, "zz", 0));
  Etcdserverpb__RangeResponse *r;
  assert_int_equal(tu_range(s, &a, "a", NULL, 5, &r), CETCD_EFUTUREREV);
  assert_int_equal(tu_range(s, &a, "a", NULL, 2, &r), 0);
  assert_int_equal(r->header->revision, 4); /* header: current revision */
  arena_destroy(&a);
}

static void test_delete_generations(void **state) {
  fixture_t *f = *state;
  mvcc_store_t *s = f->s;
  arena_t a;
  arena_init(&a);
  tu_put(s, "a", "1");
  tu_put(s, "a", "2");
  int64_t rev;
  assert_int_equal(tu_del(s, "a", NULL, &rev), 1);
  assert_int_equal(rev, 4);
  assert_int_equal(mvcc_key_count(s), 0);
  assert_null(tu_get(s, &a, "a", 0));
  tu_assert_kv(tu_get(s, &a, "a", 3), "a", "2", 2, 3, 2);
  /* a new generation starts at version 1 */
  assert_int_equal(tu_put(s, "a", "3"), 5);
  tu_assert_kv(tu_get(s, &a, "a", 0), "a", "3", 5, 5, 1);
  assert_null(tu_get(s, &a, "a", 4));
  /* deleting nothing consumes no revision */
  assert_int_equal(tu_del(s, "zz", NULL, &rev), 0);
  assert_int_equal(rev, 5);
  assert_int_equal(tu_del(s, "a", NULL, NULL), 1);
  assert_int_equal(tu_del(s, "a", NULL, &rev), 0);
  assert_int_equal(rev, 6);
  assert_int_equal(mvcc_rev(s), 6);
  /* delete a range with prev_kv */
  tu_put(s, "k1", "x");
  tu_put(s, "k2", "y");
  tu_put(s, "k3", "z");
  Etcdserverpb__DeleteRangeRequest req = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
  req.key = tu_bin("k1");
  req.range_end = tu_bin("k3");
  req.prev_kv = true;
  Etcdserverpb__DeleteRangeResponse *dr;
  assert_int_equal(mvcc_apply_delete_range(s, &req, &a, &dr), 0);
  assert_int_equal(dr->deleted, 2);
  assert_int_equal(dr->n_prev_kvs, 2);
  tu_assert_kv(dr->prev_kvs[0], "k1", "x", 7, 7, 1);
  tu_assert_kv(dr->prev_kvs[1], "k2", "y", 8, 8, 1);
  assert_int_equal(dr->header->revision, 10);
  assert_non_null(tu_get(s, &a, "k3", 0));
  /* "\0" deletes everything >= key */
  req.key = tu_bin("a");
  req.range_end.len = 1;
  req.range_end.data = (uint8_t *)"";
  req.prev_kv = false;
  assert_int_equal(mvcc_apply_delete_range(s, &req, &a, &dr), 0);
  assert_int_equal(dr->deleted, 1);
  assert_int_equal(mvcc_key_count(s), 0);
  arena_destroy(&a);
}

/* Range with a full request. */
static Etcdserverpb__RangeResponse *rng(mvcc_store_t *s, arena_t *a, Etcdserverpb__RangeRequest *req) {
  Etcdserverpb__RangeResponse *r = NULL;
  assert_int_equal(mvcc_apply_range(s, req, a, &r), 0);
  return r;
}

/* Asserts the keys of a response, given as a string of one-letter keys. */
static void assert_keys(const Etcdserverpb__RangeResponse *r, const char *keys) {
  assert_int_equal(r->n_kvs, strlen(keys));
  for (size_t i = 0; i < r->n_kvs; i++) {
    assert_int_equal(r->kvs[i]->key.len, 1);
    assert_int_equal(r->kvs[i]->key.data[0], keys[i]);
  }
}

static void test_range_options(void **state) {
  fixture_t *f = *state;
  mvcc_store_t *s = f->s;
  arena_t a;
  arena_init(&a);
  tu_put(s, "a", "5");  /* 2 */
  tu_put(s, "b", "4");  /* 3 */
  tu_put(s, "c", "3");  /* 4 */
  tu_put(s, "d", "2");  /* 5 */
  tu_put(s, "e", "1");  /* 6 */
  tu_put(s, "c", "33"); /* 7 */
  tu_put(s, "a", "55"); /* 8 */
  /* a: c2 m8 v2 | b: c3 m3 v1 | c: c4 m7 v2 | d: c5 m5 v1 | e: c6 m6 v1 */
  Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
  req.key = tu_bin("a");
  req.range_end = tu_bin("f");
  Etcdserverpb__RangeResponse *r = rng(s, &a, &req);
  assert_keys(r, "abcde");
  assert_int_equal(r->count, 5);
  assert_false(r->more);
  assert_int_equal(r->header->revision, 8);
  tu_assert_kv(r->kvs[0], "a", "55", 2, 8, 2);

  req.range_end.len = 1;
  req.range_end.data = (uint8_t *)""; /* "\0": all keys >= key */
  req.key = tu_bin("b");
  assert_keys(rng(s, &a, &req), "bcde");
  req.key = tu_bin("a");
  req.range_end = tu_bin("f");

  req.limit = 2;
  r = rng(s, &a, &req);
  assert_keys(r, "ab");
  assert_true(r->more);
  assert_int_equal(r->count, 5);
  req.limit = 5;
  r = rng(s, &a, &req);
  assert_false(r->more);
  req.limit = 0;

  req.count_only = true;
  r = rng(s, &a, &req);
  assert_int_equal(r->n_kvs, 0);
  assert_int_equal(r->count, 5);
  req.count_only = false;

  req.keys_only = true;
  r = rng(s, &a, &req);
  assert_int_equal(r->n_kvs, 5);
  for (size_t i = 0; i < 5; i++) assert_int_equal(r->kvs[i]->value.len, 0);
  assert_int_equal(r->kvs[2]->mod_revision, 7);
  req.keys_only = false;

  req.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD;
  req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
  req.limit = 2;
  r = rng(s, &a, &req);
  assert_keys(r, "ac");
  assert_true(r->more);
  assert_int_equal(r->count, 5);
  req.limit = 0;

  req.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE;
  req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
  assert_keys(rng(s, &a, &req), "abcde");

  /* a non-KEY target with order NONE sorts ascending; ties stay in key order */
  req.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VERSION;
  req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE;
  assert_keys(rng(s, &a, &req), "bdeac");
  req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
  assert_keys(rng(s, &a, &req), "acbde");

  req.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE;
  req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
  assert_keys(rng(s, &a, &req), "edcba");
  req.keys_only = true;
  req.limit = 1;
  r = rng(s, &a, &req);
  assert_keys(r, "e");
  assert_int_equal(r->kvs[0]->value.len, 0);
  req.keys_only = false;
  req.limit = 0;

  req.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY;
  req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
  req.limit = 3;
  r = rng(s, &a, &req);
  assert_keys(r, "edc");
  assert_true(r->more);
  req.limit = 0;
  req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE;

  /* filters apply after fetching: count is the total before them */
  req.min_mod_revision = 6;
  r = rng(s, &a, &req);
  assert_keys(r, "ace");
  assert_int_equal(r->count, 5);
  req.min_mod_revision = 0;

  /* the Mutex recipe: first-created key below a revision */
  req.max_create_revision = 4;
  req.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE;
  req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
  req.limit = 1;
  r = rng(s, &a, &req);
  assert_keys(r, "c");
  assert_true(r->more);
  assert_int_equal(r->count, 5);
  req.limit = 2; /* exactly the filtered number: no more */
  req.max_create_revision = 3;
  r = rng(s, &a, &req);
  assert_keys(r, "ba");
  assert_false(r->more);
  req.limit = 0;
  req.max_create_revision = 0;
  req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE;
  req.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY;

  req.min_create_revision = 3;
  req.max_mod_revision = 6;
  assert_keys(rng(s, &a, &req), "bde");
  req.min_create_revision = 0;
  req.max_mod_revision = 0;

  /* at an old revision */
  req.revision = 4;
  r = rng(s, &a, &req);
  assert_keys(r, "abc");
  assert_int_equal(r->count, 3);
  assert_int_equal(r->header->revision, 8);
  tu_assert_kv(r->kvs[0], "a", "5", 2, 2, 1);
  tu_assert_kv(r->kvs[2], "c", "3", 4, 4, 1);
  req.revision = -3; /* <= 0: latest */
  assert_keys(rng(s, &a, &req), "abcde");
  req.revision = 9;
  Etcdserverpb__RangeResponse *rr;
  assert_int_equal(mvcc_apply_range(s, &req, &a, &rr), CETCD_EFUTUREREV);
  req.revision = 0;

  /* end <= key: empty; a single missing key: empty */
  req.key = tu_bin("c");
  req.range_end = tu_bin("a");
  r = rng(s, &a, &req);
  assert_int_equal(r->n_kvs, 0);
  assert_int_equal(r->count, 0);
  /* prefix range of multi-byte keys, memcmp order with prefixes first */
  tu_put(s, "pre", "0");
  tu_put(s, "pre/b", "0");
  tu_put(s, "pre/a", "0");
  tu_put(s, "pre0", "0");
  tu_put(s, "prf", "0");
  req.key = tu_bin("pre");
  req.range_end = tu_bin("prf");
  r = rng(s, &a, &req);
  assert_int_equal(r->n_kvs, 4);
  const char *want[] = {"pre", "pre/a", "pre/b", "pre0"};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(r->kvs[i]->key.len, strlen(want[i]));
    assert_memory_equal(r->kvs[i]->key.data, want[i], strlen(want[i]));
  }
  arena_destroy(&a);
}

/* ---- lease hooks and events ---- */

typedef struct hooks {
  int attach, detach;
  int64_t last_attach, last_detach;
  int nev_calls;
  int64_t ev_rev;
  size_t ev_n;
  int ev_types[8];
  int64_t ev_prev_mod[8];
  int64_t ev_mod[8];
} hooks_t;

static bool h_exists(void *ctx, int64_t lease) {
  (void)ctx;
  return lease == 7 || lease == 8;
}
static void h_attach(void *ctx, int64_t lease, const uint8_t *k, size_t n) {
  (void)k, (void)n;
  hooks_t *h = ctx;
  h->attach++;
  h->last_attach = lease;
}
static void h_detach(void *ctx, int64_t lease, const uint8_t *k, size_t n) {
  (void)k, (void)n;
  hooks_t *h = ctx;
  h->detach++;
  h->last_detach = lease;
}
static void h_events(void *ctx, int64_t rev, const Mvccpb__Event *const *evs, size_t n) {
  hooks_t *h = ctx;
  h->nev_calls++;
  h->ev_rev = rev;
  h->ev_n = n;
  for (size_t i = 0; i < n && i < 8; i++) {
    h->ev_types[i] = evs[i]->type;
    h->ev_prev_mod[i] = evs[i]->prev_kv ? evs[i]->prev_kv->mod_revision : 0;
    h->ev_mod[i] = evs[i]->kv->mod_revision;
  }
}

static bool h_prev_no(void *ctx) {
  (void)ctx;
  return false;
}

/* prev_wanted false: events carry no prev_kv (nothing read back for them), while a request
 * that asked for prev_kv still gets it; true (or no hook): events carry it. */
static void test_events_prev_wanted(void **state) {
  fixture_t *f = *state;
  mvcc_close(f->s);
  hooks_t h = {0};
  mvcc_opts_t o = {.hook_ctx = &h, .on_events = h_events, .prev_wanted = h_prev_no};
  f->s = tu_open(f->dir, &o);
  mvcc_store_t *s = f->s;
  arena_t a;
  arena_init(&a);
  tu_put(s, "k", "v1"); /* rev 2 */
  tu_put(s, "k", "v2"); /* rev 3: an overwrite */
  assert_int_equal(h.ev_rev, 3);
  assert_int_equal(h.ev_mod[0], 3);
  assert_int_equal(h.ev_prev_mod[0], 0);
  Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
  Etcdserverpb__PutResponse *pr;
  req.key = tu_bin("k");
  req.value = tu_bin("v3");
  req.prev_kv = true;
  assert_int_equal(mvcc_apply_put(s, &req, &a, &pr), 0);
  tu_assert_kv(pr->prev_kv, "k", "v2", 2, 3, 2);
  assert_int_equal(h.ev_prev_mod[0], 0);
  assert_int_equal(tu_del(s, "k", NULL, NULL), 1);
  assert_int_equal(h.ev_types[0], MVCCPB__EVENT__EVENT_TYPE__DELETE);
  assert_int_equal(h.ev_prev_mod[0], 0);
  /* without the hook every event carries prev_kv */
  mvcc_close(s);
  o.prev_wanted = NULL;
  f->s = s = tu_open(f->dir, &o);
  tu_put(s, "k", "v4"); /* rev 6 (5 was the delete) */
  tu_put(s, "k", "v5");
  assert_int_equal(h.ev_prev_mod[0], 6);
  arena_destroy(&a);
}

static void test_put_flags_and_leases(void **state) {
  fixture_t *f = *state;
  arena_t a;
  arena_init(&a);
  Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
  Etcdserverpb__PutResponse *pr;
  /* no hooks: any lease is unknown */
  req.key = tu_bin("k");
  req.value = tu_bin("v");
  req.lease = 7;
  assert_int_equal(mvcc_apply_put(f->s, &req, &a, &pr), CETCD_ELEASENOTFOUND);
  assert_int_equal(mvcc_rev(f->s), 1);
  mvcc_close(f->s);

  hooks_t h = {0};
  mvcc_opts_t o = {.hook_ctx = &h,
                   .lease_exists = h_exists,
                   .lease_attach = h_attach,
                   .lease_detach = h_detach,
                   .on_events = h_events};
  f->s = tu_open(f->dir, &o);
  mvcc_store_t *s = f->s;
  req.lease = 9;
  assert_int_equal(mvcc_apply_put(s, &req, &a, &pr), CETCD_ELEASENOTFOUND);
  req.lease = 7;
  assert_int_equal(mvcc_apply_put(s, &req, &a, &pr), 0);
  assert_int_equal(pr->header->revision, 2);
  assert_null(pr->prev_kv);
  assert_int_equal(h.attach, 1);
  assert_int_equal(h.last_attach, 7);
  assert_int_equal(h.nev_calls, 1);
  assert_int_equal(h.ev_rev, 2);
  assert_int_equal(h.ev_types[0], MVCCPB__EVENT__EVENT_TYPE__PUT);
  assert_int_equal(h.ev_prev_mod[0], 0);
  assert_int_equal(tu_get(s, &a, "k", 0)->lease, 7);

  /* ignore_lease keeps the lease, prev_kv returns the old pair */
  req.lease = 0;
  req.value = tu_bin("v2");
  req.ignore_lease = true;
  req.prev_kv = true;
  assert_int_equal(mvcc_apply_put(s, &req, &a, &pr), 0);
  tu_assert_kv(pr->prev_kv, "k", "v", 2, 2, 1);
  assert_int_equal(pr->prev_kv->lease, 7);
  tu_assert_kv(tu_get(s, &a, "k", 0), "k", "v2", 2, 3, 2);
  assert_int_equal(tu_get(s, &a, "k", 0)->lease, 7);
  assert_int_equal(h.detach, 0); /* the same lease: the key stays attached */
  assert_int_equal(h.attach, 1);
  assert_int_equal(h.ev_prev_mod[0], 2);

  /* ignore_value keeps the value, takes the new lease */
  req.ignore_lease = false;
  req.prev_kv = false;
  req.ignore_value = true;
  req.value = tu_bin(NULL);
  req.lease = 8;
  assert_int_equal(mvcc_apply_put(s, &req, &a, &pr), 0);
  Mvccpb__KeyValue *kv = tu_get(s, &a, "k", 0);
  tu_assert_kv(kv, "k", "v2", 2, 4, 3);
  assert_int_equal(kv->lease, 8);
  assert_int_equal(h.detach, 1);
  assert_int_equal(h.last_detach, 7);
  assert_int_equal(h.attach, 2);
  assert_int_equal(h.last_attach, 8);

  /* the ignore flags on a missing key fail without a revision */
  req.key = tu_bin("missing");
  req.lease = 0;
  assert_int_equal(mvcc_apply_put(s, &req, &a, &pr), CETCD_EKEYNOTFOUND);
  req.ignore_value = false;
  req.ignore_lease = true;
  assert_int_equal(mvcc_apply_put(s, &req, &a, &pr), CETCD_EKEYNOTFOUND);
  assert_int_equal(mvcc_rev(s), 4);

  /* delete detaches and emits a DELETE event with prev_kv */
  int det = h.detach;
  assert_int_equal(tu_del(s, "k", NULL, NULL), 1);
  assert_int_equal(h.detach, det + 1);
  assert_int_equal(h.last_detach, 8);
  assert_int_equal(h.ev_rev, 5);
  assert_int_equal(h.ev_types[0], MVCCPB__EVENT__EVENT_TYPE__DELETE);
  assert_int_equal(h.ev_mod[0], 5);
  assert_int_equal(h.ev_prev_mod[0], 4);
  int calls = h.nev_calls;
  assert_int_equal(tu_del(s, "k", NULL, NULL), 0);
  assert_int_equal(h.nev_calls, calls); /* nothing happened, no events */

  /* reopen re-attaches leases of live keys */
  req.key = tu_bin("l1");
  req.value = tu_bin("x");
  req.ignore_lease = false;
  req.lease = 8;
  assert_int_equal(mvcc_apply_put(s, &req, &a, &pr), 0);
  mvcc_close(s);
  memset(&h, 0, sizeof(h));
  f->s = tu_open(f->dir, &o);
  assert_int_equal(h.attach, 1);
  assert_int_equal(h.last_attach, 8);
  arena_destroy(&a);
}

static void test_batches_and_reopen(void **state) {
  fixture_t *f = *state;
  mvcc_store_t *s = f->s;
  arena_t a;
  arena_init(&a);
  assert_int_equal(mvcc_batch_begin(s), 0);
  assert_int_equal(mvcc_batch_begin(s), CETCD_EINVAL);
  tu_put(s, "x", "1");
  tu_put(s, "y", "1");
  tu_assert_kv(tu_get(s, &a, "x", 0), "x", "1", 2, 2, 1); /* reads see the batch */
  assert_int_equal(mvcc_batch_commit(s, 42), 0);
  assert_int_equal(mvcc_consistent_index(s), 42);
  /* an aborted batch leaves nothing behind */
  assert_int_equal(mvcc_batch_begin(s), 0);
  tu_put(s, "x", "2");
  tu_put(s, "z", "2");
  assert_int_equal(mvcc_rev(s), 5);
  mvcc_batch_abort(s);
  assert_int_equal(mvcc_rev(s), 3);
  tu_assert_kv(tu_get(s, &a, "x", 0), "x", "1", 2, 2, 1);
  assert_null(tu_get(s, &a, "z", 0));
  assert_int_equal(mvcc_key_count(s), 2);
  /* more history, then reopen */
  tu_put(s, "x", "3");        /* 4 */
  tu_del(s, "y", NULL, NULL); /* 5 */
  tu_put(s, "y", "4");        /* 6 */
  tu_put(s, "w", "5");        /* 7 */
  tu_del(s, "w", NULL, NULL); /* 8 */
  assert_int_equal(mvcc_batch_begin(s), 0);
  assert_int_equal(mvcc_batch_commit(s, 77), 0);
  assert_int_equal(mvcc_sync(s), 0);
  mvcc_close(s);
  f->s = s = tu_open(f->dir, NULL);
  assert_int_equal(mvcc_consistent_index(s), 77);
  assert_int_equal(mvcc_rev(s), 8);
  assert_int_equal(mvcc_key_count(s), 2);
  tu_assert_kv(tu_get(s, &a, "x", 0), "x", "3", 2, 4, 2);
  tu_assert_kv(tu_get(s, &a, "x", 3), "x", "1", 2, 2, 1);
  tu_assert_kv(tu_get(s, &a, "y", 0), "y", "4", 6, 6, 1);
  tu_assert_kv(tu_get(s, &a, "y", 4), "y", "1", 3, 3, 1);
  assert_null(tu_get(s, &a, "y", 5));
  assert_null(tu_get(s, &a, "w", 0));
  tu_assert_kv(tu_get(s, &a, "w", 7), "w", "5", 7, 7, 1);
  /* the next write continues the revision sequence and versions */
  assert_int_equal(tu_put(s, "x", "9"), 9);
  tu_assert_kv(tu_get(s, &a, "x", 0), "x", "9", 2, 9, 3);
  assert_int_equal(tu_put(s, "w", "6"), 10);
  tu_assert_kv(tu_get(s, &a, "w", 0), "w", "6", 10, 10, 1);
  assert_true(mvcc_db_size(s) > 0);
  assert_true(mvcc_db_size_in_use(s) > 0);
  assert_true(mvcc_db_size_in_use(s) <= mvcc_db_size(s));
  arena_destroy(&a);
}

static void test_meta_and_buckets(void **state) {
  fixture_t *f = *state;
  mvcc_store_t *s = f->s;
  char buf[16];
  size_t n = sizeof(buf);
  assert_int_equal(mvcc_meta_get(s, "cetcd_ids", buf, &n), CETCD_EKEYNOTFOUND);
  assert_int_equal(mvcc_meta_put(s, "cetcd_ids", "0123456789abcdef", 16), 0);
  n = sizeof(buf);
  assert_int_equal(mvcc_meta_get(s, "cetcd_ids", buf, &n), 0);
  assert_int_equal(n, 16);
  assert_memory_equal(buf, "0123456789abcdef", 16);
  n = 4;
  assert_int_equal(mvcc_meta_get(s, "cetcd_ids", buf, &n), -ERANGE);
  assert_int_equal(n, 16);
  assert_int_equal(mvcc_bucket_put(s, "lease", "\x01", 1, "L", 1), 0);
  assert_int_equal(mvcc_bucket_put(s, "nosuch", "\x01", 1, "L", 1), CETCD_EINVAL);
  mvcc_close(s);
  f->s = s = tu_open(f->dir, NULL);
  n = sizeof(buf);
  assert_int_equal(mvcc_meta_get(s, "cetcd_ids", buf, &n), 0);
  assert_int_equal(n, 16);
  n = sizeof(buf);
  assert_int_equal(mvcc_bucket_get(s, "lease", "\x01", 1, buf, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(mvcc_bucket_del(s, "lease", "\x01", 1), 0);
  n = sizeof(buf);
  assert_int_equal(mvcc_bucket_get(s, "lease", "\x01", 1, buf, &n), CETCD_EKEYNOTFOUND);
  assert_int_equal(mvcc_rev(s), 1); /* meta writes take no revision */
}

static void test_many_keys_reopen_fast(void **state) {
  fixture_t *f = *state;
  mvcc_store_t *s = f->s;
  enum { N = 100000 };
  char k[32], v[32];
  assert_int_equal(mvcc_batch_begin(s), 0);
  for (int i = 0; i < N; i++) {
    /* pseudo-random key order */
    snprintf(k, sizeof(k), "key/%08u", (unsigned)((uint64_t)i * 2654435761u % 1000000007u));
    snprintf(v, sizeof(v), "value-%d", i);
    tu_put(s, k, v);
  }
  assert_int_equal(mvcc_batch_commit(s, 1), 0);
  assert_int_equal(mvcc_key_count(s), N);
  mvcc_close(s);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  f->s = s = tu_open(f->dir, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("# reopen with %d keys: %.3f s\n", N, secs);
  assert_true(secs < 3.0); /* generous for sanitizer builds; ~0.05 s optimized */
  assert_int_equal(mvcc_key_count(s), N);
  assert_int_equal(mvcc_rev(s), N + 1);
  /* full scan is in key order */
  arena_t a;
  arena_init(&a);
  Etcdserverpb__RangeResponse *r;
  assert_int_equal(tu_range(s, &a, "key/", "key0", 0, &r), 0);
  assert_int_equal(r->n_kvs, N);
  for (size_t i = 1; i < r->n_kvs; i++) {
    const ProtobufCBinaryData *x = &r->kvs[i - 1]->key, *y = &r->kvs[i]->key;
    int c = memcmp(x->data, y->data, x->len < y->len ? x->len : y->len);
    assert_true(c < 0 || (c == 0 && x->len < y->len));
  }
  arena_destroy(&a);
}

/* B-tree range scans from arbitrary bounds agree with a brute-force count. */
static void test_random_ranges(void **state) {
  fixture_t *f = *state;
  enum { N = 5000 };
  static char keys[N][8];
  uint32_t x = 12345;
  assert_int_equal(mvcc_batch_begin(f->s), 0);
  for (int i = 0; i < N; i++) {
    x = x * 1103515245u + 12345u;
    snprintf(keys[i], sizeof(keys[i]), "%06u", (x >> 8) % 1000000u);
    tu_put(f->s, keys[i], "v");
  }
  assert_int_equal(mvcc_batch_commit(f->s, 1), 0);
  size_t live = mvcc_key_count(f->s);
  arena_t a;
  arena_init(&a);
  for (int q = 0; q < 200; q++) {
    char lo[8], hi[8];
    x = x * 1103515245u + 12345u;
    unsigned l = (x >> 8) % 1000000u;
    x = x * 1103515245u + 12345u;
    unsigned h = l + (x >> 8) % 200000u;
    snprintf(lo, sizeof(lo), "%06u", l);
    snprintf(hi, sizeof(hi), "%06u", h > 999999 ? 999999 : h);
    /* distinct keys in [lo, hi) */
    size_t want = 0;
    for (int i = 0; i < N; i++) {
      if (strcmp(keys[i], lo) < 0 || strcmp(keys[i], hi) >= 0) continue;
      bool dup = false;
      for (int j = 0; j < i && !dup; j++) dup = !strcmp(keys[i], keys[j]);
      want += !dup;
    }
    Etcdserverpb__RangeResponse *r;
    assert_int_equal(tu_range(f->s, &a, lo, hi, 0, &r), 0);
    assert_int_equal(r->count, want);
    assert_int_equal(r->n_kvs, want);
    if (want) assert_true(memcmp(r->kvs[0]->key.data, lo, 6) >= 0);
    arena_destroy(&a);
    arena_init(&a);
  }
  Etcdserverpb__RangeResponse *r;
  assert_int_equal(tu_range(f->s, &a, "0", "\xff", 0, &r), 0);
  assert_int_equal(r->count, live);
  arena_destroy(&a);
}

static void test_map_full_grows(void **state) {
  fixture_t *f = *state;
  mvcc_close(f->s);
  mvcc_opts_t o = {.map_size = 1 << 20}; /* 1 MiB: the batch below needs several */
  f->s = tu_open(f->dir, &o);
  char k[32], v[1024];
  memset(v, 'v', sizeof(v) - 1);
  v[sizeof(v) - 1] = 0;
  assert_int_equal(mvcc_batch_begin(f->s), 0);
  for (int i = 0; i < 4000; i++) {
    snprintf(k, sizeof(k), "big/%05d", i);
    tu_put(f->s, k, v);
  }
  assert_int_equal(mvcc_batch_commit(f->s, 9), 0);
  assert_true(mvcc_db_size(f->s) > 4000 * 1000);
  mvcc_close(f->s);
  f->s = tu_open(f->dir, &o);
  assert_int_equal(mvcc_key_count(f->s), 4000);
  assert_int_equal(mvcc_consistent_index(f->s), 9);
  arena_t a;
  arena_init(&a);
  Mvccpb__KeyValue *kv = tu_get(f->s, &a, "big/03999", 0);
  assert_non_null(kv);
  assert_int_equal(kv->value.len, sizeof(v) - 1);
  assert_int_equal(kv->mod_revision, 4001);
  arena_destroy(&a);
  /* more writes after reopening with the small configured size */
  for (int i = 0; i < 1000; i++) {
    snprintf(k, sizeof(k), "more/%05d", i);
    tu_put(f->s, k, v);
  }
  assert_int_equal(mvcc_key_count(f->s), 5000);
}

static void test_txn_events(void **state) {
  fixture_t *f = *state;
  mvcc_close(f->s);
  hooks_t h = {0};
  mvcc_opts_t o = {.hook_ctx = &h, .on_events = h_events};
  f->s = tu_open(f->dir, &o);
  tu_put(f->s, "a", "1"); /* 2 */
  tu_put(f->s, "b", "1"); /* 3 */
  arena_t a;
  arena_init(&a);
  Etcdserverpb__DeleteRangeRequest dr = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
  dr.key = tu_bin("a");
  dr.range_end = tu_bin("c");
  Etcdserverpb__PutRequest pr = ETCDSERVERPB__PUT_REQUEST__INIT;
  pr.key = tu_bin("c");
  pr.value = tu_bin("2");
  Etcdserverpb__RequestOp o1 = ETCDSERVERPB__REQUEST_OP__INIT, o2 = ETCDSERVERPB__REQUEST_OP__INIT;
  o1.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
  o1.request_delete_range = &dr;
  o2.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
  o2.request_put = &pr;
  Etcdserverpb__RequestOp *ops[] = {&o1, &o2};
  Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
  t.n_success = 2;
  t.success = ops;
  Etcdserverpb__TxnResponse *r;
  int calls = h.nev_calls;
  assert_int_equal(mvcc_apply_txn(f->s, &t, &a, &r), 0);
  assert_int_equal(h.nev_calls, calls + 1); /* one call per revision */
  assert_int_equal(h.ev_rev, 4);
  assert_int_equal(h.ev_n, 3);
  assert_int_equal(h.ev_types[0], MVCCPB__EVENT__EVENT_TYPE__DELETE);
  assert_int_equal(h.ev_prev_mod[0], 2);
  assert_int_equal(h.ev_types[1], MVCCPB__EVENT__EVENT_TYPE__DELETE);
  assert_int_equal(h.ev_prev_mod[1], 3);
  assert_int_equal(h.ev_types[2], MVCCPB__EVENT__EVENT_TYPE__PUT);
  assert_int_equal(h.ev_mod[2], 4);
  arena_destroy(&a);
}

/* Bytes of disk actually allocated to data.mdb (it is a sparse file of the map size). */
static uint64_t allocated_bytes(const char *dir) {
  char path[512];
  snprintf(path, sizeof(path), "%s/data.mdb", dir);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (uint64_t)st.st_blocks * 512;
}

/* mvcc_ensure_space allocates blocks past the high-water mark before they are written
 * through the map (4 MiB steps), only when asked for more than is allocated, again after a
 * defragment replaced the file, and writes then land in allocated space. */
static void test_ensure_space_allocates_ahead(void **state) {
  fixture_t *f = *state;
  uint64_t hw = (uint64_t)mvcc_db_size(f->s);
  assert_int_equal(mvcc_ensure_space(f->s, 10 << 20), 0);
  uint64_t a1 = allocated_bytes(f->dir);
  assert_true(a1 >= hw + (10 << 20));
  assert_true(a1 <= hw + (16 << 20)); /* rounded up to a 4 MiB step, not more */
  assert_int_equal(mvcc_ensure_space(f->s, 1 << 20), 0);
  assert_int_equal(allocated_bytes(f->dir), a1); /* already there: nothing new */
  char k[32], v[4096];
  memset(v, 'x', sizeof(v) - 1);
  v[sizeof(v) - 1] = 0;
  assert_int_equal(mvcc_batch_begin(f->s), 0);
  for (int i = 0; i < 500; i++) { /* ~2 MiB: inside the reserved range */
    snprintf(k, sizeof(k), "s/%04d", i);
    tu_put(f->s, k, v);
  }
  assert_int_equal(mvcc_batch_commit(f->s, 3), 0);
  assert_int_equal(allocated_bytes(f->dir), a1);
  assert_int_equal(mvcc_defrag(f->s, NULL, NULL), 0);
  assert_int_equal(mvcc_ensure_space(f->s, 10 << 20), 0);
  assert_true(allocated_bytes(f->dir) >= (uint64_t)mvcc_db_size(f->s) + (10 << 20));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_put_revisions_versions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delete_generations, setup, teardown),
      cmocka_unit_test_setup_teardown(test_range_options, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_flags_and_leases, setup, teardown),
      cmocka_unit_test_setup_teardown(test_events_prev_wanted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batches_and_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_meta_and_buckets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_keys_reopen_fast, setup, teardown),
      cmocka_unit_test_setup_teardown(test_random_ranges, setup, teardown),
      cmocka_unit_test_setup_teardown(test_map_full_grows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_txn_events, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ensure_space_allocates_ahead, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
