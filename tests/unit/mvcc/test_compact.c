/* mvcc: compaction (index and LMDB), reopen after compaction, Hash and HashKV (golden
 * values taken from etcd 3.4.23 running the same requests). */
#include "mvcc_test_util.h"

typedef struct fixture {
  char *dir;
  mvcc_store_t *s;
  arena_t a;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  f->dir = tu_mkdtemp();
  f->s = tu_open(f->dir, NULL);
  arena_init(&f->a);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  mvcc_close(f->s);
  arena_destroy(&f->a);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

static void reopen(fixture_t *f) {
  mvcc_close(f->s);
  f->s = tu_open(f->dir, NULL);
}

static int compact(mvcc_store_t *s, int64_t rev) {
  arena_t a;
  arena_init(&a);
  Etcdserverpb__CompactionRequest req = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
  req.revision = rev;
  Etcdserverpb__CompactionResponse *r = NULL;
  int rc = mvcc_apply_compact(s, &req, &a, &r);
  if (rc == 0) assert_int_equal(r->header->revision, mvcc_rev(s));
  arena_destroy(&a);
  return rc;
}

typedef struct recs {
  int n;
  char list[64][24]; /* "<main>.<sub>[t]" */
} recs_t;

static int rec_cb(void *ctx, const void *k, size_t klen, const void *v, size_t vlen) {
  (void)v, (void)vlen;
  recs_t *r = ctx;
  const uint8_t *p = k;
  uint64_t m = 0, s = 0;
  for (int i = 0; i < 8; i++) m = m << 8 | p[i];
  for (int i = 0; i < 8; i++) s = s << 8 | p[9 + i];
  if (r->n < 64)
    snprintf(r->list[r->n], 24, "%llu.%llu%s", (unsigned long long)m, (unsigned long long)s,
             klen == 18 ? "t" : "");
  r->n++;
  return 0;
}

/* Asserts the `key` bucket holds exactly these records, in order. */
static void assert_records(mvcc_store_t *s, const char *const *want, int n) {
  recs_t r = {0};
  assert_int_equal(mvcc_bucket_foreach(s, "key", rec_cb, &r), 0);
  assert_int_equal(r.n, n);
  for (int i = 0; i < n; i++) assert_string_equal(r.list[i], want[i]);
}

static void test_compact_current_and_errors(void **state) {
  fixture_t *f = *state;
  mvcc_store_t *s = f->s;
  tu_put(s, "a", "1"); /* 2 */
  tu_put(s, "a", "2"); /* 3 */
  tu_put(s, "b", "3"); /* 4 */
  assert_int_equal(compact(s, 5), CETCD_EFUTUREREV);
  assert_int_equal(compact(s, 4), 0);
  assert_int_equal(mvcc_compact_rev(s), 4);
  assert_int_equal(mvcc_rev(s), 4);
  assert_int_equal(compact(s, 4), CETCD_ECOMPACTED);
  assert_int_equal(compact(s, 3), CETCD_ECOMPACTED);
  Etcdserverpb__RangeResponse *r;
  assert_int_equal(tu_range(s, &f->a, "a", NULL, 3, &r), CETCD_ECOMPACTED);
  assert_int_equal(tu_range(s, &f->a, "a", NULL, 4, &r), 0); /* the compacted revision itself is readable */
  tu_assert_kv(r->kvs[0], "a", "2", 2, 3, 2);
  tu_assert_kv(tu_get(s, &f->a, "b", 0), "b", "3", 4, 4, 1);
  const char *want[] = {"3.0", "4.0"};
  assert_records(s, want, 2);
  /* versions and create revisions survive compaction and reopen */
  reopen(f);
  s = f->s;
  assert_int_equal(mvcc_compact_rev(s), 4);
  assert_int_equal(mvcc_rev(s), 4);
  assert_int_equal(tu_range(s, &f->a, "a", NULL, 3, &r), CETCD_ECOMPACTED);
  assert_int_equal(tu_put(s, "a", "3"), 5);
  tu_assert_kv(tu_get(s, &f->a, "a", 0), "a", "3", 2, 5, 3);
  tu_assert_kv(tu_get(s, &f->a, "a", 4), "a", "2", 2, 3, 2);
  assert_int_equal(compact(s, 5), 0);
  const char *want2[] = {"4.0", "5.0"};
  assert_records(s, want2, 2);
}

static void test_compact_tombstones(void **state) {
  fixture_t *f = *state;
  mvcc_store_t *s = f->s;
  tu_put(s, "a", "1");        /* 2 */
  tu_del(s, "a", NULL, NULL); /* 3 */
  tu_put(s, "b", "1");        /* 4 */
  tu_put(s, "c", "1");        /* 5 */
  tu_del(s, "c", NULL, NULL); /* 6 */
  tu_put(s, "c", "2");        /* 7 */
  /* at a tombstone: the key's history up to it disappears */
  assert_int_equal(compact(s, 3), 0);
  const char *want[] = {"4.0", "5.0", "6.0t", "7.0"};
  assert_records(s, want, 4);
  assert_null(tu_get(s, &f->a, "a", 0));
  assert_null(tu_get(s, &f->a, "a", 3));
  /* in the middle of an older generation: it is kept with its tombstone */
  assert_int_equal(compact(s, 5), 0);
  assert_records(s, want, 4);
  tu_assert_kv(tu_get(s, &f->a, "c", 5), "c", "1", 5, 5, 1);
  assert_null(tu_get(s, &f->a, "c", 6));
  /* past the tombstone: the old generation goes */
  assert_int_equal(compact(s, 6), 0);
  const char *want2[] = {"4.0", "7.0"};
  assert_records(s, want2, 2);
  tu_assert_kv(tu_get(s, &f->a, "c", 0), "c", "2", 7, 7, 1);
  assert_int_equal(mvcc_key_count(s), 2);
  reopen(f);
  assert_int_equal(mvcc_key_count(f->s), 2);
  assert_int_equal(mvcc_rev(f->s), 7);
  /* deleting everything then compacting at the head leaves an empty bucket, but the
   * revision survives a reopen through finishedCompactRev */
  tu_del(f->s, "a", "\xff", NULL); /* 8 */
  assert_int_equal(compact(f->s, 8), 0);
  assert_records(f->s, NULL, 0);
  reopen(f);
  assert_int_equal(mvcc_rev(f->s), 8);
  assert_int_equal(mvcc_compact_rev(f->s), 8);
  assert_int_equal(tu_put(f->s, "a", "x"), 9);
}

static void test_compact_resumes_at_open(void **state) {
  fixture_t *f = *state;
  tu_put(f->s, "a", "1");
  tu_put(f->s, "a", "2");
  tu_put(f->s, "a", "3"); /* 4 */
  /* simulate a crash after scheduling a compaction at 3 */
  uint8_t rev[17] = {0};
  rev[7] = 3;
  rev[8] = '_';
  assert_int_equal(mvcc_meta_put(f->s, "scheduledCompactRev", rev, 17), 0);
  reopen(f);
  assert_int_equal(mvcc_compact_rev(f->s), 3);
  const char *want[] = {"3.0", "4.0"};
  assert_records(f->s, want, 2);
  tu_assert_kv(tu_get(f->s, &f->a, "a", 3), "a", "2", 2, 3, 2);
}

/* The request sequence run against etcd 3.4.23 for the golden hashes. */
static void etcd_sequence(mvcc_store_t *s, arena_t *a) {
  tu_put(s, "a", "1");
  tu_put(s, "a", "2");
  tu_put(s, "b", "3");
  tu_del(s, "a", NULL, NULL);
  tu_put(s, "c", "4");
  tu_put(s, "a", "5");
  /* txn: put x 1, put y 2, del b (one revision) */
  Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
  Etcdserverpb__RequestOp o[3];
  Etcdserverpb__PutRequest p1 = ETCDSERVERPB__PUT_REQUEST__INIT, p2 = ETCDSERVERPB__PUT_REQUEST__INIT;
  Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
  p1.key = tu_bin("x");
  p1.value = tu_bin("1");
  p2.key = tu_bin("y");
  p2.value = tu_bin("2");
  d.key = tu_bin("b");
  for (int i = 0; i < 3; i++) etcdserverpb__request_op__init(&o[i]);
  o[0].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
  o[0].request_put = &p1;
  o[1].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
  o[1].request_put = &p2;
  o[2].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
  o[2].request_delete_range = &d;
  Etcdserverpb__RequestOp *ops[3] = {&o[0], &o[1], &o[2]};
  t.n_success = 3;
  t.success = ops;
  Etcdserverpb__TxnResponse *r;
  assert_int_equal(mvcc_apply_txn(s, &t, a, &r), 0);
  assert_int_equal(r->header->revision, 8);
}

static uint32_t hkv(mvcc_store_t *s, int64_t rev, int64_t *crev) {
  uint32_t h = 0;
  int64_t hr = 0;
  assert_int_equal(mvcc_hash_kv(s, rev, &h, crev, &hr), 0);
  assert_int_equal(hr, rev ? rev : mvcc_rev(s));
  return h;
}

static void test_hash_kv_matches_etcd(void **state) {
  fixture_t *f = *state;
  etcd_sequence(f->s, &f->a);
  int64_t crev;
  assert_int_equal(hkv(f->s, 0, &crev), 3662139894u);
  assert_int_equal(crev, -1);
  assert_int_equal(hkv(f->s, 5, &crev), 2759016142u);
  assert_int_equal(hkv(f->s, 8, &crev), 3662139894u);
  assert_int_equal(compact(f->s, 4), 0);
  assert_int_equal(hkv(f->s, 0, &crev), 2751215549u);
  assert_int_equal(crev, 4);
  assert_int_equal(hkv(f->s, 5, &crev), 2221601066u);
  uint32_t h;
  assert_int_equal(mvcc_hash_kv(f->s, 4, &h, &crev, NULL), CETCD_ECOMPACTED);
  assert_int_equal(mvcc_hash_kv(f->s, 9, &h, &crev, NULL), CETCD_EFUTUREREV);
  reopen(f);
  assert_int_equal(hkv(f->s, 5, &crev), 2221601066u);
  /* later writes do not change the hash of an earlier revision */
  tu_put(f->s, "z", "9");
  assert_int_equal(hkv(f->s, 8, &crev), 2751215549u);
  assert_int_not_equal(hkv(f->s, 0, &crev), 2751215549u);
  assert_int_equal(compact(f->s, 8), 0);
  assert_int_equal(mvcc_hash_kv(f->s, 8, &h, &crev, NULL), CETCD_ECOMPACTED);
}

static void test_hash_kv_after_full_compaction(void **state) {
  fixture_t *f = *state;
  etcd_sequence(f->s, &f->a);
  assert_int_equal(compact(f->s, 8), 0);
  int64_t crev;
  assert_int_equal(hkv(f->s, 0, &crev), 1552943079u);
  assert_int_equal(crev, 8);
}

static void test_hash(void **state) {
  fixture_t *f = *state;
  uint32_t h0, h1, h2, h3;
  assert_int_equal(mvcc_hash(f->s, &h0), 0);
  tu_put(f->s, "a", "1");
  assert_int_equal(mvcc_hash(f->s, &h1), 0);
  assert_int_not_equal(h0, h1);
  /* the consistent index is not hashed */
  assert_int_equal(mvcc_batch_begin(f->s), 0);
  assert_int_equal(mvcc_batch_commit(f->s, 12345), 0);
  assert_int_equal(mvcc_hash(f->s, &h2), 0);
  assert_int_equal(h1, h2);
  reopen(f);
  assert_int_equal(mvcc_hash(f->s, &h3), 0);
  assert_int_equal(h2, h3);
  /* a meta or other-bucket write changes it */
  assert_int_equal(mvcc_bucket_put(f->s, "alarm", "k", 1, "v", 1), 0);
  assert_int_equal(mvcc_hash(f->s, &h3), 0);
  assert_int_not_equal(h2, h3);
}

static void test_compact_many(void **state) {
  fixture_t *f = *state;
  char k[16];
  assert_int_equal(mvcc_batch_begin(f->s), 0);
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < 3000; i++) {
      snprintf(k, sizeof(k), "k%05d", i);
      tu_put(f->s, k, round == 2 ? "last" : "old");
    }
  for (int i = 0; i < 3000; i += 2) {
    snprintf(k, sizeof(k), "k%05d", i);
    tu_del(f->s, k, NULL, NULL);
  }
  assert_int_equal(mvcc_batch_commit(f->s, 1), 0);
  int64_t head = mvcc_rev(f->s);
  uint32_t before;
  assert_int_equal(mvcc_hash_kv(f->s, head, &before, NULL, NULL), 0);
  assert_int_equal(compact(f->s, head), 0);
  recs_t r = {0};
  assert_int_equal(mvcc_bucket_foreach(f->s, "key", rec_cb, &r), 0);
  assert_int_equal(r.n, 1500); /* only the live keys' latest puts remain */
  assert_int_equal(mvcc_key_count(f->s), 1500);
  Etcdserverpb__RangeResponse *rr;
  assert_int_equal(tu_range(f->s, &f->a, "k", "l", 0, &rr), 0);
  assert_int_equal(rr->n_kvs, 1500);
  tu_assert_kv(rr->kvs[0], "k00001", "last", 3, 6003, 3);
  reopen(f);
  assert_int_equal(mvcc_key_count(f->s), 1500);
  assert_int_equal(mvcc_rev(f->s), head);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_compact_current_and_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_tombstones, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_resumes_at_open, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hash_kv_matches_etcd, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hash_kv_after_full_compaction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hash, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_many, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
